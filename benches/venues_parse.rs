//! Per venue built on the framework, per core, on its recorded messages: parse → normalized →
//! Confluent-framed bytes, and book diffs kept in a book → framed `Level2Delta`, each beside a
//! plain `serde_json` typed parse of the same input measured in the same run (the limit; the
//! ratio is the figure, these machines drift too much for absolutes). Binance spot/USD-M are in
//! `feed_parse` (and compared with the code before the framework by `scripts/bench-feed-ab.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde::Deserialize;
use tickflow::feed::books::BookKeeper;
use tickflow::venues::kraken::websocket::v1;
use tickflow::venues::kraken::{Kraken, WsVersion};
use tickflow::venues::{by_name, SymbolMap, VenueEvent};

#[path = "support/frame.rs"]
mod frame;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn lines(dir: &str, file: &str) -> Vec<String> {
    std::fs::read_to_string(format!("tests/fixtures/{dir}/{file}"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// Kraken v1 trade: `[channelID, [[price, volume, time, side, type, misc], …], "trade", pair]`.
type PlainKrakenTrade<'a> = (i64, Vec<[&'a str; 6]>, &'a str, &'a str);

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainKrakenUpdate<'a> {
    #[serde(borrow, default)]
    a: Vec<Vec<&'a str>>,
    #[serde(borrow, default)]
    b: Vec<Vec<&'a str>>,
    c: Option<&'a str>,
}

/// Kraken v1 book update: `[channelID, {a|b, c}, "book-N", pair]`.
type PlainKrakenBook<'a> = (i64, PlainKrakenUpdate<'a>, &'a str, &'a str);

/// The same with two payloads (asks, then bids and the checksum): one recorded frame.
type PlainKrakenBook2<'a> = (
    i64,
    PlainKrakenUpdate<'a>,
    PlainKrakenUpdate<'a>,
    &'a str,
    &'a str,
);

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainAggTrade<'a> {
    #[serde(rename = "E")]
    e: i64,
    s: &'a str,
    a: i64,
    p: &'a str,
    q: &'a str,
    f: i64,
    l: i64,
    #[serde(rename = "T")]
    t: i64,
    m: bool,
}

#[derive(Deserialize)]
struct Env<'a, T> {
    #[serde(borrow)]
    #[allow(dead_code)]
    stream: &'a str,
    data: T,
}

fn kraken(c: &mut Criterion) {
    let venue = Kraken::with_version(WsVersion::V1);
    let pairs = [
        "ADA-BTC",
        "BTC-CHF",
        "OMG-USD",
        "OCEAN-BTC",
        "ETH-CHF",
        "SC-EUR",
        "GRT-ETH",
        "KSM-BTC",
        "XMR-USD",
        "WAVES-EUR",
    ];
    let map = SymbolMap::new(pairs.iter().map(|n| {
        let (b, q) = n.split_once('-').unwrap();
        let v = |a: &str| {
            if a == "BTC" {
                "XBT".to_string()
            } else {
                a.to_string()
            }
        };
        (format!("{}/{}", v(b), v(q)), n.to_string())
    }));

    let trades = lines("kraken", "kraken_trade.jsonl");
    let n: usize = trades
        .iter()
        .map(|l| {
            serde_json::from_str::<PlainKrakenTrade<'_>>(l)
                .unwrap()
                .1
                .len()
        })
        .sum();
    let mut g = c.benchmark_group("kraken_trade");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("serde_json_typed_parse_only (limit)", |b| {
        b.iter(|| {
            for l in &trades {
                let t: PlainKrakenTrade<'_> = serde_json::from_str(l).unwrap();
                black_box(t.1.len());
            }
        })
    });
    g.bench_function("json_to_normalized_to_framed", |b| {
        let (mut out, mut buf) = (Vec::with_capacity(4), Vec::with_capacity(256));
        b.iter(|| {
            for l in &trades {
                venue.parse(l, 1, &map, &mut out).unwrap();
                frame::events(&mut out, &mut buf);
            }
        })
    });
    g.finish();

    // Books: every recorded update of the ten pairs, the book kept with its depth window and
    // checksum verified on each.
    let updates = lines("kraken", "kraken_book_update.jsonl");
    let snapshots = lines("kraken", "kraken_book_snapshot.jsonl");
    let seq = by_name("kraken").unwrap().sequencer(1000);
    let synced = || {
        let mut keeper = BookKeeper::new("KRAKEN", seq.clone(), 1000, None);
        let mut out = Vec::new();
        for s in &snapshots {
            venue.parse(s, 1, &map, &mut out).unwrap();
            for ev in out.drain(..) {
                if let VenueEvent::Snapshot { symbol, snapshot } = ev {
                    assert!(keeper.on_snapshot(&symbol, &snapshot, 1).unwrap().synced);
                }
            }
        }
        keeper
    };
    // Every update applies with its checksum verified: no break in the measured input.
    let mut keeper = synced();
    let mut out = Vec::new();
    for l in &updates {
        venue.parse(l, 1, &map, &mut out).unwrap();
        for ev in out.drain(..) {
            if let VenueEvent::Diff { symbol, diff } = ev {
                let o = keeper.on_diff(&symbol, diff).unwrap();
                assert!(o.broken.is_none() && !o.need_snapshot, "{symbol}");
            }
        }
    }
    let mut g = c.benchmark_group("kraken_book");
    g.throughput(Throughput::Elements(updates.len() as u64));
    g.sample_size(20);
    g.bench_function("serde_json_typed_parse_only (limit)", |b| {
        b.iter(|| {
            for l in &updates {
                match serde_json::from_str::<PlainKrakenBook<'_>>(l) {
                    Ok(u) => black_box(u.1.c),
                    Err(_) => {
                        black_box(serde_json::from_str::<PlainKrakenBook2<'_>>(l).unwrap().2.c)
                    }
                };
            }
        })
    });
    // The scanner path (what the feed runs), then the `serde_json`-only path it falls back to,
    // in the same run.
    type Parse<'a> = &'a dyn Fn(&str, &SymbolMap, &mut Vec<VenueEvent>);
    let scanner: Parse<'_> = &|l, map, out| {
        venue.parse(l, 1, map, out).unwrap();
    };
    let general: Parse<'_> = &|l, map, out| {
        v1::parse_frame_general(l, 1, map, out).unwrap();
    };
    for (name, parse) in [
        ("json_to_book_checksum_to_framed_delta", scanner),
        ("serde_json_path_to_book_checksum_to_framed_delta", general),
    ] {
        g.bench_function(name, |b| {
            let (mut out, mut buf) = (Vec::with_capacity(4), Vec::with_capacity(1024));
            b.iter_batched_ref(
                synced,
                |keeper| {
                    for l in &updates {
                        parse(l, &map, &mut out);
                        for ev in out.drain(..) {
                            let VenueEvent::Diff { symbol, diff } = ev else {
                                continue;
                            };
                            frame::records(
                                keeper.on_diff(&symbol, diff).unwrap().records,
                                &mut buf,
                            );
                        }
                    }
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn coinm(c: &mut Criterion) {
    let venue = tickflow::venues::binance_coinm::coinm();
    let trades = lines("binance_coinm", "binance_coinm_aggTrade.jsonl");
    let map = SymbolMap::new([
        ("BTCUSD_210625".to_string(), "BTC-USD-20210625".to_string()),
        ("BTCUSD_PERP".to_string(), "BTC-USD-PERP".to_string()),
    ]);
    let mut g = c.benchmark_group("coinm_agg_trade");
    g.throughput(Throughput::Elements(trades.len() as u64));
    g.bench_function("serde_json_typed_parse_only (limit)", |b| {
        b.iter(|| {
            for l in &trades {
                let t: Env<'_, PlainAggTrade<'_>> = serde_json::from_str(l).unwrap();
                black_box(t.data.a);
            }
        })
    });
    g.bench_function("json_to_normalized_to_framed", |b| {
        let (mut out, mut buf) = (Vec::with_capacity(4), Vec::with_capacity(256));
        b.iter(|| {
            for l in &trades {
                venue.parse(l, 1, &map, &mut out).unwrap();
                frame::events(&mut out, &mut buf);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, kraken, coinm);
criterion_main!(benches);
