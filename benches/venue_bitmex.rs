//! BitMEX on its recorded session, per core: trades and quotes parsed → normalized →
//! Confluent-framed bytes, and `orderBookL2` rows turned into price-level diffs (id → price
//! kept in the session) and kept in a book → framed `Level2Delta`; each beside a plain
//! `serde_json` typed parse of the same input in the same run (the limit). Both rates
//! (messages per second, medians of 15 runs) and their ratio (ours ÷ plain parse, like the
//! README's venue table) are printed at the end of the run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde::Deserialize;
use serde_json::value::RawValue;
use tickflow::feed::books::BookKeeper;
use tickflow::venues::bitmex::{Bitmex, ParseState};
use tickflow::venues::{by_name, SymbolMap, VenueEvent};

#[path = "support/frame.rs"]
mod frame;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SYMBOLS: [(&str, &str); 10] = [
    ("XRPU21", "XRP-BTC-20210924"),
    ("UNIUSDT", "UNI-USDT-PERP"),
    ("XBTUSD", "BTC-USD-PERP"),
    ("ADAUSDT", "ADA-USDT-PERP"),
    ("SOLUSDT", "SOL-USDT-PERP"),
    ("TRXU21", "TRX-BTC-20210924"),
    ("EOSUSDT", "EOS-USDT-PERP"),
    ("TRXUSDT", "TRX-USDT-PERP"),
    ("BCHUSD", "BCH-USD-PERP"),
    ("MATICUSDT", "MATIC-USDT-PERP"),
];

fn session() -> Vec<String> {
    std::fs::read_to_string("tests/fixtures/bitmex/bitmex_session.jsonl")
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn map() -> SymbolMap {
    SymbolMap::new(SYMBOLS.iter().map(|(v, n)| (v.to_string(), n.to_string())))
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainTrade<'a> {
    timestamp: &'a str,
    symbol: &'a str,
    side: Option<&'a str>,
    #[serde(borrow)]
    size: &'a RawValue,
    #[serde(borrow)]
    price: &'a RawValue,
    #[serde(rename = "trdMatchID")]
    id: Option<&'a str>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct PlainQuote<'a> {
    timestamp: &'a str,
    symbol: &'a str,
    #[serde(borrow)]
    bid_size: Option<&'a RawValue>,
    #[serde(borrow)]
    bid_price: Option<&'a RawValue>,
    #[serde(borrow)]
    ask_price: Option<&'a RawValue>,
    #[serde(borrow)]
    ask_size: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainRow<'a> {
    symbol: &'a str,
    id: u64,
    side: &'a str,
    #[serde(borrow, default)]
    size: Option<&'a RawValue>,
    #[serde(borrow, default)]
    price: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainMsg<'a, T> {
    table: &'a str,
    action: &'a str,
    data: Vec<T>,
}

/// Median time of `f` over a few runs.
fn median(mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..15)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[t.len() / 2]
}

fn bitmex(c: &mut Criterion) {
    let venue = Bitmex::new();
    let map = map();
    let all = session();
    let of = |table: &str, action: &str| -> Vec<String> {
        all.iter()
            .filter(|l| {
                l.contains(&format!("\"table\":\"{table}\""))
                    && l.contains(&format!("\"action\":\"{action}\""))
            })
            .cloned()
            .collect()
    };
    let trades = of("trade", "insert");
    let quotes = of("quote", "insert");
    let partials = of("orderBookL2", "partial");
    let rows: Vec<String> = all
        .iter()
        .filter(|l| {
            l.contains("\"table\":\"orderBookL2\"") && !l.contains("\"action\":\"partial\"")
        })
        .cloned()
        .collect();
    let mut ratios = Vec::new();

    for (name, input) in [("bitmex_trade", &trades), ("bitmex_quote", &quotes)] {
        let n: usize = input.iter().map(|l| l.matches("\"symbol\"").count()).sum();
        let limit = |input: &[String]| {
            for l in input {
                if name == "bitmex_trade" {
                    let m: PlainMsg<'_, PlainTrade<'_>> = serde_json::from_str(l).unwrap();
                    black_box(m.data.len());
                } else {
                    let m: PlainMsg<'_, PlainQuote<'_>> = serde_json::from_str(l).unwrap();
                    black_box(m.data.len());
                }
            }
        };
        let ours = |input: &[String], out: &mut Vec<VenueEvent>, buf: &mut Vec<u8>| {
            let mut st = ParseState::new();
            for l in input {
                venue.parse(l, 1, &map, &mut st, out).unwrap();
                frame::events(out, buf);
            }
        };
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("serde_json_typed_parse_only (limit)", |b| {
            b.iter(|| limit(input))
        });
        g.bench_function("json_to_normalized_to_framed", |b| {
            let (mut out, mut buf) = (Vec::with_capacity(8), Vec::with_capacity(256));
            b.iter(|| ours(input, &mut out, &mut buf))
        });
        g.finish();
        let (mut out, mut buf) = (Vec::new(), Vec::new());
        let l = median(|| limit(input));
        let o = median(|| ours(input, &mut out, &mut buf));
        ratios.push((name, input.len(), o, l));
    }

    // Books: every insert/update/delete of the ten books, applied to books synced from the
    // recorded partials (no break in the measured input).
    let seq = by_name("bitmex").unwrap().sequencer(0);
    let synced = || {
        let mut keeper = BookKeeper::new("BITMEX", seq.clone(), 1000, None);
        let mut st = ParseState::new();
        let mut out = Vec::new();
        for p in &partials {
            venue.parse(p, 1, &map, &mut st, &mut out).unwrap();
            for ev in out.drain(..) {
                if let VenueEvent::Snapshot { symbol, snapshot } = ev {
                    assert!(keeper.on_snapshot(&symbol, &snapshot, 1).unwrap().synced);
                }
            }
        }
        (keeper, st)
    };
    let run = |(keeper, st): &mut (BookKeeper, ParseState),
               out: &mut Vec<VenueEvent>,
               buf: &mut Vec<u8>| {
        for l in &rows {
            venue.parse(l, 1, &map, st, out).unwrap();
            for ev in out.drain(..) {
                let VenueEvent::Diff { symbol, diff } = ev else {
                    panic!("not a diff: {ev:?}");
                };
                let o = keeper.on_diff(&symbol, diff).unwrap();
                assert!(o.broken.is_none() && !o.need_snapshot, "{symbol}");
                frame::records(o.records, buf);
            }
        }
    };
    let limit = || {
        for l in &rows {
            let m: PlainMsg<'_, PlainRow<'_>> = serde_json::from_str(l).unwrap();
            black_box(m.data.len());
        }
    };
    let mut g = c.benchmark_group("bitmex_book");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.sample_size(20);
    g.bench_function("serde_json_typed_parse_only (limit)", |b| b.iter(limit));
    g.bench_function("json_to_id_book_to_framed_delta", |b| {
        let (mut out, mut buf) = (Vec::with_capacity(8), Vec::with_capacity(1024));
        b.iter_batched_ref(
            synced,
            |s| run(s, &mut out, &mut buf),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
    let l = median(limit);
    let (mut out, mut buf) = (Vec::new(), Vec::new());
    let mut t: Vec<Duration> = (0..15)
        .map(|_| {
            let mut s = synced();
            let start = Instant::now();
            run(&mut s, &mut out, &mut buf);
            start.elapsed()
        })
        .collect();
    t.sort();
    ratios.push(("bitmex_book", rows.len(), t[7], l));
    for (name, n, ours, limit) in ratios {
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        println!(
            "{name}: {:.0} msgs/s, plain serde_json typed parse {:.0} msgs/s, ratio {:.2}",
            rate(ours),
            rate(limit),
            rate(ours) / rate(limit)
        );
    }
}

criterion_group!(benches, bitmex);
criterion_main!(benches);
