//! Per core, on recorded Binance messages (looped): (1) trade JSON → normalized → Confluent-
//! framed bytes, (2) depth diffs with the book kept → framed `Level2Delta`, each beside a plain
//! `serde_json` typed parse of the same input as the limit. Prints msgs/s and ns/msg. Each path
//! also runs through the `serde_json`-only parse (`parse_frame_general`, what the venue's
//! scanner replaced), so the gain is measured in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde::Deserialize;
use std::sync::Arc;
use tickflow::feed::books::BookKeeper;
use tickflow::venues::binance::websocket::parse::parse_frame_general;
use tickflow::venues::binance::Rules;
use tickflow::venues::{binance::Binance, SymbolMap, Venue, VenueEvent};

#[path = "support/frame.rs"]
mod frame;

// The allocator the `tickflow` binary uses, so the figures are the service's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn lines(file: &str) -> Vec<String> {
    std::fs::read_to_string(format!("tests/fixtures/binance/{file}"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainTrade<'a> {
    #[serde(rename = "E")]
    e: i64,
    s: &'a str,
    t: i64,
    p: &'a str,
    q: &'a str,
    #[serde(rename = "T")]
    tt: i64,
    m: bool,
}

#[derive(Deserialize)]
struct Env<'a, T> {
    #[serde(borrow)]
    #[allow(dead_code)]
    stream: &'a str,
    data: T,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainDepth<'a> {
    #[serde(rename = "U")]
    first: i64,
    u: i64,
    #[serde(borrow)]
    b: Vec<[&'a str; 2]>,
    #[serde(borrow)]
    a: Vec<[&'a str; 2]>,
}

fn bench(c: &mut Criterion) {
    let venue = Binance::usdm();
    let trades = lines("binance_futures_trade.jsonl");
    let map = SymbolMap::new([
        ("BTCUSDT".into(), "BTC-USDT-PERP".into()),
        ("ETHUSDT".into(), "ETH-USDT-PERP".into()),
    ]);
    // Every recorded line is one trade record on both paths (checked here, untimed: the timed
    // loops frame whatever a line gave).
    for l in &trades {
        for scanner in [true, false] {
            let mut out = Vec::new();
            if scanner {
                venue.parse(l, 1, &map, &mut out).unwrap();
            } else {
                parse_frame_general("BINANCE_FUTURES", l, 1, &map, &mut out).unwrap();
            }
            assert!(
                matches!(
                    out.as_slice(),
                    [VenueEvent::Encoded(_) | VenueEvent::Record(_)]
                ),
                "not one trade: {out:?}"
            );
        }
    }
    let mut g = c.benchmark_group("trade");
    g.throughput(Throughput::Elements(trades.len() as u64));
    g.bench_function("serde_json_typed_parse_only (limit)", |b| {
        b.iter(|| {
            for l in &trades {
                let t: Env<'_, PlainTrade<'_>> = serde_json::from_str(l).unwrap();
                black_box(t.data.t);
            }
        })
    });
    for (name, scanner) in [
        ("json_to_normalized_to_framed", true),
        (
            "json_to_normalized_to_framed, serde_json parse (before)",
            false,
        ),
    ] {
        g.bench_function(name, |b| {
            let mut out = Vec::with_capacity(4);
            let mut buf = Vec::with_capacity(256);
            b.iter(|| {
                for l in &trades {
                    if scanner {
                        venue.parse(l, 1, &map, &mut out).unwrap();
                    } else {
                        parse_frame_general("BINANCE_FUTURES", l, 1, &map, &mut out).unwrap();
                    }
                    // What the producer does with each: frame it (header + protobuf bytes).
                    frame::events(&mut out, &mut buf);
                }
            })
        });
    }
    g.finish();

    // Depth: one symbol's contiguous recorded diffs, book kept, looped by re-syncing.
    let depth: Vec<String> = lines("binance_futures_depthUpdate.jsonl")
        .into_iter()
        .filter(|l| l.contains("\"SUSHIUSDT\""))
        .collect();
    let snap = lines("binance_futures_depth_snapshot_rest.jsonl").remove(0);
    let snap = venue.parse_snapshot(&snap).unwrap();
    let map = SymbolMap::new([("SUSHIUSDT".into(), "SUSHI-USDT-PERP".into())]);
    let mut g = c.benchmark_group("depth");
    g.throughput(Throughput::Elements(depth.len() as u64));
    g.bench_function("serde_json_typed_parse_only (limit)", |b| {
        b.iter(|| {
            for l in &depth {
                let d: Env<'_, PlainDepth<'_>> = serde_json::from_str(l).unwrap();
                black_box(d.data.u);
            }
        })
    });
    // Steady state: the book is synced in the (untimed) setup; the recorded diffs after the
    // snapshot are then looped LOOPS times with update ids shifted so the `pu` chain stays
    // contiguous (as the replay server does), and each is parsed, applied and framed. Sync cost
    // is per reconnect, not per diff; the book is dropped outside the timed part.
    const LOOPS: i64 = 50;
    let after: Vec<String> = depth
        .iter()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["data"]["u"].as_i64().unwrap() >= snap.last_update_id
        })
        .cloned()
        .collect();
    let ids = |l: &str| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let d = &v["data"];
        (
            d["U"].as_i64().unwrap(),
            d["u"].as_i64().unwrap(),
            d["pu"].as_i64().unwrap(),
        )
    };
    let shift = ids(after.last().unwrap()).1 - ids(&after[0]).2;
    let looped: Vec<String> = (0..LOOPS)
        .flat_map(|k| {
            after.iter().map(move |l| {
                let (first, last, prev) = ids(l);
                let o = k * shift;
                l.replacen(
                    &format!("\"U\":{first},"),
                    &format!("\"U\":{},", first + o),
                    1,
                )
                .replacen(
                    &format!("\"u\":{last},"),
                    &format!("\"u\":{},", last + o),
                    1,
                )
                .replacen(
                    &format!("\"pu\":{prev},"),
                    &format!("\"pu\":{},", prev + o),
                    1,
                )
            })
        })
        .collect();
    let synced_books = || {
        // A full Level2Book every 1 000 deltas, as `config/default.toml` has it: its cost
        // (sorting the book) is part of the steady state.
        let mut books = BookKeeper::new("BINANCE_FUTURES", Arc::new(Rules::UsdM), 1000, None);
        books.on_snapshot("SUSHI-USDT-PERP", &snap, 1).unwrap();
        books
    };
    // The looped chain really is contiguous: every diff applies, none is a gap.
    let mut books = synced_books();
    let mut out = Vec::new();
    let mut applied = 0;
    for l in &looped {
        out.clear();
        venue.parse(l, 1, &map, &mut out).unwrap();
        if let Some(VenueEvent::Diff { symbol, diff }) = out.pop() {
            let o = books.on_diff(&symbol, diff).unwrap();
            assert!(o.gap.is_none(), "looped diffs stay contiguous");
            applied += o.records.len();
        }
    }
    assert!(applied + after.len() >= looped.len() && books.is_synced("SUSHI-USDT-PERP"));
    g.throughput(Throughput::Elements(looped.len() as u64));
    for (name, scanner) in [
        ("json_to_book_to_framed_delta (steady state)", true),
        (
            "json_to_book_to_framed_delta (steady state), serde_json parse (before)",
            false,
        ),
    ] {
        g.bench_function(name, |b| {
            let mut out = Vec::with_capacity(4);
            let mut buf = Vec::with_capacity(1024);
            b.iter_batched_ref(
                synced_books,
                |books| {
                    for l in &looped {
                        out.clear();
                        if scanner {
                            venue.parse(l, 1, &map, &mut out).unwrap();
                        } else {
                            parse_frame_general("BINANCE_FUTURES", l, 1, &map, &mut out).unwrap();
                        }
                        if let Some(VenueEvent::Diff { symbol, diff }) = out.pop() {
                            frame::records(books.on_diff(&symbol, diff).unwrap().records, &mut buf);
                        }
                    }
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
