//! Coinbase Advanced Trade, per core, on the recorded connection: `market_trades` frames
//! parsed → normalized → Confluent-framed bytes, and `l2_data` updates parsed and kept in a
//! book, each beside a plain `serde_json` typed parse of the same input in the same run (the
//! limit). The ratio (venue ÷ plain parse time) is printed after the criterion groups: these
//! machines drift too much for absolutes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Instant;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde::Deserialize;
use tickflow::book::{BookSync, Step};
use tickflow::venues::coinbase::Coinbase;
use tickflow::venues::{SymbolMap, Venue, VenueEvent};

#[path = "support/frame.rs"]
mod frame;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn frames(channel: &str, kind: &str) -> Vec<String> {
    std::fs::read_to_string("tests/fixtures/coinbase/coinbase_advanced_ws.jsonl")
        .unwrap()
        .lines()
        .filter(|l| {
            l.contains(&format!("\"channel\":\"{channel}\""))
                && l.contains(&format!("\"type\":\"{kind}\""))
        })
        .map(str::to_string)
        .collect()
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainTrade<'a> {
    product_id: &'a str,
    trade_id: &'a str,
    price: &'a str,
    size: &'a str,
    time: &'a str,
    side: &'a str,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainLevel<'a> {
    side: &'a str,
    event_time: &'a str,
    price_level: &'a str,
    new_quantity: &'a str,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainEvent<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default)]
    product_id: Option<&'a str>,
    #[serde(borrow, default)]
    trades: Vec<PlainTrade<'a>>,
    #[serde(borrow, default)]
    updates: Vec<PlainLevel<'a>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Plain<'a> {
    channel: &'a str,
    timestamp: &'a str,
    sequence_num: u64,
    #[serde(borrow)]
    events: Vec<PlainEvent<'a>>,
}

fn plain(lines: &[String]) -> usize {
    let mut n = 0;
    for l in lines {
        let p: Plain<'_> = serde_json::from_str(l).unwrap();
        n += p
            .events
            .iter()
            .map(|e| e.trades.len() + e.updates.len())
            .sum::<usize>();
    }
    black_box(n)
}

fn map() -> SymbolMap {
    SymbolMap::new(["BTC-USD", "ETH-USD"].map(|s| (s.to_string(), s.to_string())))
}

fn parse_and_frame(venue: &Coinbase, map: &SymbolMap, lines: &[String], buf: &mut Vec<u8>) {
    let mut out = Vec::with_capacity(8);
    for l in lines {
        venue.parse(l, 1, map, &mut out).unwrap();
        frame::events(&mut out, buf);
    }
}

fn synced(venue: &Coinbase, map: &SymbolMap) -> HashMap<String, BookSync> {
    let mut books = HashMap::new();
    let mut out = Vec::new();
    for l in frames("l2_data", "snapshot") {
        venue.parse(&l, 1, map, &mut out).unwrap();
        for ev in out.drain(..) {
            if let VenueEvent::Snapshot { symbol, snapshot } = ev {
                let mut b = BookSync::new(venue.sequencer(0), 16);
                assert_eq!(b.on_snapshot(&snapshot).unwrap(), Step::Synced);
                books.insert(symbol, b);
            }
        }
    }
    books
}

fn apply(
    venue: &Coinbase,
    map: &SymbolMap,
    lines: &[String],
    books: &mut HashMap<String, BookSync>,
) {
    let mut out = Vec::with_capacity(2);
    for l in lines {
        venue.parse(l, 1, map, &mut out).unwrap();
        for ev in out.drain(..) {
            if let VenueEvent::Diff { symbol, diff } = ev {
                let step = books.get_mut(&*symbol).unwrap().on_diff(diff).unwrap();
                assert_eq!(step, Step::Applied);
            }
        }
    }
}

fn ratio(name: &str, limit: impl Fn(), venue: impl Fn()) {
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..50 {
            f();
        }
        start.elapsed().as_secs_f64()
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        a.push(time(&limit));
        b.push(time(&venue));
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    eprintln!(
        "{name}: venue / plain serde_json typed parse = {:.2} (medians of 5 × 50 passes)",
        b[2] / a[2]
    );
}

fn coinbase(c: &mut Criterion) {
    let venue = Coinbase::new();
    let map = map();
    let trades = frames("market_trades", "update");
    let n: usize = plain(&trades);
    let mut g = c.benchmark_group("coinbase_trade");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("serde_json_typed_parse_only (limit)", |b| {
        b.iter(|| plain(&trades))
    });
    g.bench_function("json_to_normalized_to_framed", |b| {
        let mut buf = Vec::with_capacity(256);
        b.iter(|| parse_and_frame(&venue, &map, &trades, &mut buf))
    });
    g.finish();

    let updates = frames("l2_data", "update");
    let levels = plain(&updates);
    let mut g = c.benchmark_group("coinbase_book");
    g.throughput(Throughput::Elements(levels as u64));
    g.sample_size(20);
    g.bench_function("serde_json_typed_parse_only (limit)", |b| {
        b.iter(|| plain(&updates))
    });
    g.bench_function("json_to_book", |b| {
        b.iter_batched_ref(
            || synced(&venue, &map),
            |books| apply(&venue, &map, &updates, books),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();

    ratio(
        "coinbase_trade",
        || {
            plain(&trades);
        },
        || parse_and_frame(&venue, &map, &trades, &mut Vec::with_capacity(256)),
    );
    let mut books = synced(&venue, &map);
    ratio(
        "coinbase_book (parse only, book apply excluded)",
        || {
            plain(&updates);
        },
        || {
            let mut out = Vec::new();
            for l in &updates {
                venue.parse(l, 1, &map, &mut out).unwrap();
                out.clear();
            }
        },
    );
    apply(&venue, &map, &updates, &mut books);
}

criterion_group!(benches, coinbase);
criterion_main!(benches);
