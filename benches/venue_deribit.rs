//! Deribit per core, on its recorded messages: trades and tickers parsed → normalized →
//! Confluent-framed bytes, and book changes kept in a book (chain checked) → framed
//! `Level2Delta`, each beside a plain `serde_json` typed parse of the same input in the same
//! run (the limit; the ratio is printed, these machines drift too much for absolutes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde::Deserialize;
use serde_json::value::RawValue;
use tickflow::feed::books::BookKeeper;
use tickflow::venues::deribit::{symbols, Deribit};
use tickflow::venues::{SymbolMap, Venue, VenueEvent};

#[path = "support/frame.rs"]
mod frame;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn lines(file: &str) -> Vec<String> {
    std::fs::read_to_string(format!("tests/fixtures/deribit/{file}"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// Every instrument named in the recording that has a normalized form.
fn map(all: &[String]) -> SymbolMap {
    let mut pairs = Vec::new();
    for l in all {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let d = &v["params"]["data"];
        let names = match d.as_array() {
            Some(a) => a.iter().map(|t| t["instrument_name"].clone()).collect(),
            None => vec![d["instrument_name"].clone()],
        };
        for n in names.iter().filter_map(|n| n.as_str()) {
            if let Some(s) = symbols::normalized(n) {
                pairs.push((n.to_string(), s));
            }
        }
    }
    SymbolMap::new(pairs)
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Env<'a, T> {
    #[serde(borrow)]
    method: &'a str,
    params: Params<T>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Params<T> {
    channel: String,
    data: T,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainTrade<'a> {
    timestamp: i64,
    #[serde(borrow)]
    price: &'a RawValue,
    #[serde(borrow)]
    amount: &'a RawValue,
    #[serde(borrow)]
    direction: &'a str,
    #[serde(borrow)]
    instrument_name: &'a str,
    #[serde(borrow)]
    trade_id: &'a str,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainTicker<'a> {
    timestamp: i64,
    #[serde(borrow)]
    instrument_name: &'a str,
    #[serde(borrow)]
    mark_price: &'a RawValue,
    #[serde(borrow)]
    best_bid_price: Option<&'a RawValue>,
    #[serde(borrow)]
    best_ask_price: Option<&'a RawValue>,
    #[serde(borrow)]
    open_interest: Option<&'a RawValue>,
    #[serde(borrow)]
    funding_8h: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainBook<'a> {
    timestamp: i64,
    #[serde(borrow)]
    instrument_name: &'a str,
    change_id: i64,
    prev_change_id: Option<i64>,
    #[serde(borrow)]
    bids: Vec<(&'a str, &'a RawValue, &'a RawValue)>,
    #[serde(borrow)]
    asks: Vec<(&'a str, &'a RawValue, &'a RawValue)>,
}

/// Mean ns per pass of `f` over a few hundred passes (for the printed ratio).
fn mean_ns(mut f: impl FnMut()) -> f64 {
    for _ in 0..20 {
        f();
    }
    let n = 300;
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn deribit(c: &mut Criterion) {
    let venue = Deribit::new();
    let trades: Vec<String> = lines("deribit_trades.jsonl")
        .into_iter()
        .chain(lines("deribit_cmp_trade.jsonl"))
        .filter(|l| !l.contains("BTC-CS-"))
        .collect();
    let tickers: Vec<String> = lines("deribit_ticker.jsonl")
        .into_iter()
        .chain(lines("deribit_cmp_ticker.jsonl"))
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["params"]["data"]["instrument_name"]
                .as_str()
                .and_then(symbols::normalized)
                .is_some()
                && v["params"]["data"]["estimated_delivery_price"] != "expired"
        })
        .collect();
    let snapshots = lines("deribit_book_snapshot.jsonl");
    let changes = lines("deribit_book_change.jsonl");
    let mut all = trades.clone();
    all.extend(tickers.iter().cloned());
    all.extend(snapshots.iter().cloned());
    let map = map(&all);

    for (name, input) in [("deribit_trades", &trades), ("deribit_ticker", &tickers)] {
        let plain = |l: &str| {
            if name == "deribit_trades" {
                black_box(
                    serde_json::from_str::<Env<'_, Vec<PlainTrade<'_>>>>(l)
                        .unwrap()
                        .params
                        .data
                        .len(),
                );
            } else {
                black_box(
                    serde_json::from_str::<Env<'_, PlainTicker<'_>>>(l)
                        .unwrap()
                        .params
                        .data
                        .timestamp,
                );
            }
        };
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(input.len() as u64));
        g.bench_function("serde_json_typed_parse_only (limit)", |b| {
            b.iter(|| input.iter().for_each(|l| plain(l)))
        });
        let (mut out, mut buf) = (Vec::with_capacity(4), Vec::with_capacity(256));
        let mut ours = || {
            for l in input.iter() {
                venue.parse(l, 1, &map, &mut out).unwrap();
                frame::events(&mut out, &mut buf);
            }
        };
        g.bench_function("json_to_normalized_to_framed", |b| b.iter(&mut ours));
        g.finish();
        let limit = mean_ns(|| input.iter().for_each(|l| plain(l)));
        let ours = mean_ns(ours);
        println!(
            "{name}: normalized+framed / serde_json typed parse = {:.2}",
            ours / limit
        );
    }

    // Books: every recorded change applied onto its snapshot, the chain checked on each.
    let seq = venue.sequencer(0);
    let synced = || {
        let mut keeper = BookKeeper::new("DERIBIT", seq.clone(), 1, None);
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
    let mut keeper = synced();
    let mut out = Vec::new();
    for l in &changes {
        venue.parse(l, 1, &map, &mut out).unwrap();
        for ev in out.drain(..) {
            if let VenueEvent::Diff { symbol, diff } = ev {
                let o = keeper.on_diff(&symbol, diff).unwrap();
                assert!(o.broken.is_none() && !o.need_snapshot, "{symbol}");
            }
        }
    }
    let plain = || {
        for l in &changes {
            black_box(
                serde_json::from_str::<Env<'_, PlainBook<'_>>>(l)
                    .unwrap()
                    .params
                    .data
                    .change_id,
            );
        }
    };
    let ours = |keeper: &mut BookKeeper, out: &mut Vec<VenueEvent>, buf: &mut Vec<u8>| {
        for l in &changes {
            venue.parse(l, 1, &map, out).unwrap();
            for ev in out.drain(..) {
                let VenueEvent::Diff { symbol, diff } = ev else {
                    continue;
                };
                frame::records(keeper.on_diff(&symbol, diff).unwrap().records, buf);
            }
        }
    };
    let mut g = c.benchmark_group("deribit_book");
    g.throughput(Throughput::Elements(changes.len() as u64));
    g.bench_function("serde_json_typed_parse_only (limit)", |b| b.iter(plain));
    let mut buf = Vec::with_capacity(1024);
    g.bench_function("json_to_book_chain_to_framed_delta", |b| {
        b.iter_batched_ref(
            synced,
            |keeper| ours(keeper, &mut out, &mut buf),
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
    let limit = mean_ns(plain);
    let mut total = 0f64;
    for _ in 0..100 {
        let mut k = synced();
        let t = Instant::now();
        ours(&mut k, &mut out, &mut buf);
        total += t.elapsed().as_nanos() as f64;
    }
    println!(
        "deribit_book: book+framed delta / serde_json typed parse = {:.2}",
        total / 100.0 / limit
    );
}

criterion_group!(benches, deribit);
criterion_main!(benches);
