//! Bybit v5, per core, on the recorded spot connection (tests/fixtures/bybit): trades, tickers
//! and `orderbook.200` deltas parsed → normalized → Confluent-framed bytes (deltas kept in a
//! book first), each beside a plain `serde_json` typed parse of the same input in the same run
//! (the limit). The ratio of the two is printed per group (these machines drift too much for
//! absolutes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde::Deserialize;
use tickflow::feed::books::BookKeeper;
use tickflow::venues::bybit::{Bybit, ParseState};
use tickflow::venues::{by_name, SymbolMap, VenueEvent};

#[path = "support/frame.rs"]
mod frame;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn recording() -> Vec<String> {
    std::fs::read_to_string("tests/fixtures/bybit/bybit_v5_spot_ws.jsonl")
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn of_topic(all: &[String], prefix: &str) -> Vec<String> {
    all.iter()
        .filter(|l| l.contains(&format!(r#""topic":"{prefix}"#)))
        .cloned()
        .collect()
}

fn map() -> SymbolMap {
    SymbolMap::new([
        ("BTCUSDT".to_string(), "BTC-USDT".to_string()),
        ("ETHUSDT".to_string(), "ETH-USDT".to_string()),
    ])
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainTrade<'a> {
    #[serde(rename = "T")]
    t: i64,
    s: &'a str,
    #[serde(rename = "S")]
    side: &'a str,
    v: &'a str,
    p: &'a str,
    i: &'a str,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainBook<'a> {
    s: &'a str,
    #[serde(borrow)]
    b: Vec<(&'a str, &'a str)>,
    #[serde(borrow)]
    a: Vec<(&'a str, &'a str)>,
    u: i64,
}

#[derive(Deserialize)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct PlainTicker<'a> {
    symbol: &'a str,
    last_price: Option<&'a str>,
    #[serde(rename = "highPrice24h")]
    high: Option<&'a str>,
    #[serde(rename = "lowPrice24h")]
    low: Option<&'a str>,
    #[serde(rename = "prevPrice24h")]
    prev: Option<&'a str>,
    #[serde(rename = "volume24h")]
    volume: Option<&'a str>,
    #[serde(rename = "turnover24h")]
    turnover: Option<&'a str>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Env<'a, T> {
    topic: &'a str,
    ts: i64,
    #[serde(rename = "type")]
    kind: &'a str,
    data: T,
}

/// Times `f` over `rounds` rounds; seconds.
fn time(rounds: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..rounds {
        f();
    }
    t.elapsed().as_secs_f64()
}

fn ratio(group: &str, limit: f64, ours: f64) {
    eprintln!(
        "{group}: tickflow takes {:.2}x the serde_json typed parse (limit)",
        ours / limit
    );
}

fn bybit(c: &mut Criterion) {
    let venue = Bybit::new();
    let map = map();
    let all = recording();

    // Trades.
    let trades = of_topic(&all, "publicTrade.");
    let n: usize = trades.iter().map(|l| l.matches(r#""i":"#).count()).sum();
    let plain_trades = || {
        for l in &trades {
            let t: Env<'_, Vec<PlainTrade<'_>>> = serde_json::from_str(l).unwrap();
            black_box(t.data.len());
        }
    };
    let (mut out, mut buf) = (Vec::with_capacity(8), Vec::with_capacity(256));
    let mut state = ParseState::new();
    let mut ours_trades = || {
        for l in &trades {
            venue.parse(l, 1, &map, &mut state, &mut out).unwrap();
            frame::events(&mut out, &mut buf);
        }
    };
    ratio(
        "bybit_trade",
        time(2000, plain_trades),
        time(2000, &mut ours_trades),
    );
    let mut g = c.benchmark_group("bybit_trade");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("serde_json_typed_parse_only (limit)", |b| {
        b.iter(plain_trades)
    });
    g.bench_function("json_to_normalized_to_framed", |b| b.iter(&mut ours_trades));
    g.finish();

    // Tickers.
    let tickers = of_topic(&all, "tickers.");
    let plain_tickers = || {
        for l in &tickers {
            let t: Env<'_, PlainTicker<'_>> = serde_json::from_str(l).unwrap();
            black_box(t.data.last_price);
        }
    };
    let mut ours_tickers = || {
        for l in &tickers {
            venue.parse(l, 1, &map, &mut state, &mut out).unwrap();
            frame::events(&mut out, &mut buf);
        }
    };
    ratio(
        "bybit_ticker",
        time(1000, plain_tickers),
        time(1000, &mut ours_tickers),
    );
    let mut g = c.benchmark_group("bybit_ticker");
    g.throughput(Throughput::Elements(tickers.len() as u64));
    g.bench_function("serde_json_typed_parse_only (limit)", |b| {
        b.iter(plain_tickers)
    });
    g.bench_function("json_to_normalized_to_framed", |b| {
        b.iter(&mut ours_tickers)
    });
    g.finish();

    // Books: every recorded delta of both symbols kept in its book (u checked) → framed delta.
    let books = of_topic(&all, "orderbook.");
    let (snapshots, deltas): (Vec<String>, Vec<String>) = books
        .into_iter()
        .partition(|l| l.contains(r#""type":"snapshot""#));
    let seq = by_name("bybit").unwrap().sequencer(200);
    let synced = || {
        let mut keeper = BookKeeper::new("BYBIT", seq.clone(), 1000, None);
        let mut out = Vec::new();
        let mut st = ParseState::new();
        for s in &snapshots {
            venue.parse(s, 1, &map, &mut st, &mut out).unwrap();
            for ev in out.drain(..) {
                if let VenueEvent::Snapshot { symbol, snapshot } = ev {
                    assert!(keeper.on_snapshot(&symbol, &snapshot, 1).unwrap().synced);
                }
            }
        }
        keeper
    };
    let plain_books = || {
        for l in &deltas {
            let b: Env<'_, PlainBook<'_>> = serde_json::from_str(l).unwrap();
            black_box(b.data.u);
        }
    };
    let run_books = |keeper: &mut BookKeeper, out: &mut Vec<VenueEvent>, buf: &mut Vec<u8>| {
        let mut st = ParseState::new();
        for l in &deltas {
            venue.parse(l, 1, &map, &mut st, out).unwrap();
            for ev in out.drain(..) {
                let VenueEvent::Diff { symbol, diff } = ev else {
                    continue;
                };
                let o = keeper.on_diff(&symbol, diff).unwrap();
                assert!(o.gap.is_none() && !o.need_snapshot, "{symbol}");
                frame::records(o.records, buf);
            }
        }
    };
    let limit = time(200, plain_books);
    let mut ours = 0.0;
    for _ in 0..200 {
        let mut keeper = synced();
        let t = Instant::now();
        run_books(&mut keeper, &mut out, &mut buf);
        ours += t.elapsed().as_secs_f64();
    }
    ratio("bybit_book", limit, ours);
    let mut g = c.benchmark_group("bybit_book");
    g.throughput(Throughput::Elements(deltas.len() as u64));
    g.sample_size(20);
    g.bench_function("serde_json_typed_parse_only (limit)", |b| {
        b.iter(plain_books)
    });
    g.bench_function("json_to_book_to_framed_delta", |b| {
        b.iter_batched_ref(
            synced,
            |keeper| run_books(keeper, &mut out, &mut buf),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bybit);
criterion_main!(benches);
