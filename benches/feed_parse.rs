//! Per core, on recorded Binance messages (looped): (1) trade JSON → normalized → Confluent-
//! framed bytes, (2) depth diffs with the book kept → framed `Level2Delta`, each beside a plain
//! `serde_json` typed parse of the same input as the limit. Prints msgs/s and ns/msg.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde::Deserialize;
use tickflow::book::Rules;
use tickflow::feed::books::BookKeeper;
use tickflow::schema::wire;
use tickflow::venues::{binance::Binance, SymbolMap, Venue, VenueEvent};

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
    g.bench_function("json_to_normalized_to_framed", |b| {
        let mut out = Vec::with_capacity(4);
        let mut buf = Vec::with_capacity(256);
        b.iter(|| {
            for l in &trades {
                out.clear();
                venue.parse(l, 1, &map, &mut out).unwrap();
                if let Some(VenueEvent::Record(r)) = out.pop() {
                    buf.clear();
                    wire::write_header(&mut buf, 1, &[0]);
                    r.encode_into(&mut buf);
                    black_box(buf.len());
                }
            }
        })
    });
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
    // Steady state: the book is synced in the (untimed) setup; every recorded diff after the
    // snapshot is then parsed, applied and framed. Sync cost is per reconnect, not per diff.
    let after: Vec<String> = depth
        .iter()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["data"]["u"].as_i64().unwrap() >= snap.last_update_id
        })
        .cloned()
        .collect();
    g.throughput(Throughput::Elements(after.len() as u64));
    g.bench_function("json_to_book_to_framed_delta (steady state)", |b| {
        let mut out = Vec::with_capacity(4);
        let mut buf = Vec::with_capacity(1024);
        b.iter_batched(
            || {
                let mut books = BookKeeper::new("BINANCE_FUTURES", Rules::UsdM, 0, None);
                books.on_snapshot("SUSHI-USDT-PERP", &snap, 1).unwrap();
                books
            },
            |mut books| {
                for l in &after {
                    out.clear();
                    venue.parse(l, 1, &map, &mut out).unwrap();
                    if let Some(VenueEvent::Diff { symbol, diff }) = out.pop() {
                        for r in books.on_diff(&symbol, diff).unwrap().records {
                            buf.clear();
                            wire::write_header(&mut buf, 1, &[0]);
                            r.encode_into(&mut buf);
                            black_box(buf.len());
                        }
                    }
                }
                assert!(books.is_synced("SUSHI-USDT-PERP"));
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
