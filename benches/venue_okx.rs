//! OKX, per core, on its recorded 2022 messages: trades parse → normalized → Confluent-framed
//! bytes, and `books` updates kept in books (in-band mode, OKX's CRC32 of the top 25 levels
//! verified on every update) → framed `Level2Delta`, each beside a plain `serde_json` typed
//! parse of the same input measured in the same run (the limit). The ratio is the figure
//! (these machines drift too much for absolutes): it is printed at the end of the run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde::Deserialize;
use tickflow::feed::books::BookKeeper;
use tickflow::venues::okx::{BookMode, Okx};
use tickflow::venues::{SymbolMap, Venue, VenueEvent};

#[path = "support/frame.rs"]
mod frame;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn lines(file: &str) -> Vec<String> {
    std::fs::read_to_string(format!("tests/fixtures/okx/{file}"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn map() -> SymbolMap {
    SymbolMap::new([
        ("BTC-USD-220527".to_string(), "BTC-USD-20220527".to_string()),
        ("UNI-USD-SWAP".to_string(), "UNI-USD-PERP".to_string()),
        ("BTC-USDT".to_string(), "BTC-USDT".to_string()),
    ])
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainArg<'a> {
    channel: &'a str,
    #[serde(rename = "instId")]
    inst_id: &'a str,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainTrade<'a> {
    #[serde(rename = "instId")]
    inst_id: &'a str,
    #[serde(rename = "tradeId")]
    trade_id: &'a str,
    px: &'a str,
    sz: &'a str,
    side: &'a str,
    ts: &'a str,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainBook<'a> {
    #[serde(borrow)]
    asks: Vec<Vec<&'a str>>,
    #[serde(borrow)]
    bids: Vec<Vec<&'a str>>,
    ts: &'a str,
    checksum: i64,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Plain<'a, T> {
    #[serde(borrow)]
    arg: PlainArg<'a>,
    #[serde(borrow, default)]
    action: Option<&'a str>,
    data: Vec<T>,
}

fn synced(venue: &Okx, map: &SymbolMap, snapshots: &[String]) -> BookKeeper {
    let mut keeper = BookKeeper::new("OKX", venue.sequencer(400), 1000, None);
    let mut out = Vec::new();
    for s in snapshots {
        venue.parse(s, 1, map, &mut out).unwrap();
        for ev in out.drain(..) {
            if let VenueEvent::Snapshot { symbol, snapshot } = ev {
                assert!(keeper.on_snapshot(&symbol, &snapshot, 1).unwrap().synced);
            }
        }
    }
    keeper
}

fn run_book(venue: &Okx, map: &SymbolMap, keeper: &mut BookKeeper, updates: &[String]) {
    let (mut out, mut buf) = (Vec::with_capacity(4), Vec::with_capacity(1024));
    for l in updates {
        venue.parse(l, 1, map, &mut out).unwrap();
        for ev in out.drain(..) {
            let VenueEvent::Diff { symbol, diff } = ev else {
                continue;
            };
            let o = keeper.on_diff(&symbol, diff).unwrap();
            assert!(o.broken.is_none() && !o.need_snapshot);
            frame::records(o.records, &mut buf);
        }
    }
}

fn plain_books(updates: &[String]) {
    for l in updates {
        let u: Plain<'_, PlainBook<'_>> = serde_json::from_str(l).unwrap();
        black_box(u.data[0].checksum);
    }
}

fn plain_trades(trades: &[String]) {
    for l in trades {
        let t: Plain<'_, PlainTrade<'_>> = serde_json::from_str(l).unwrap();
        black_box(t.data.len());
    }
}

/// Mean time of `f` over `d`.
fn mean(d: Duration, mut f: impl FnMut()) -> f64 {
    let (start, mut n) = (Instant::now(), 0u32);
    while start.elapsed() < d {
        f();
        n += 1;
    }
    start.elapsed().as_secs_f64() / f64::from(n.max(1))
}

fn okx(c: &mut Criterion) {
    let venue = Okx::with_mode(BookMode::InBand);
    let map = map();
    let trades = lines("okx_trades.jsonl");
    let n: usize = trades
        .iter()
        .map(|l| {
            serde_json::from_str::<Plain<'_, PlainTrade<'_>>>(l)
                .unwrap()
                .data
                .len()
        })
        .sum();
    let mut g = c.benchmark_group("okx_trade");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("serde_json_typed_parse_only (limit)", |b| {
        b.iter(|| plain_trades(&trades))
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

    let updates = lines("okx_books_update.jsonl");
    let snapshots = lines("okx_books_snapshot.jsonl");
    // Every update applies with its checksum verified: no break in the measured input.
    run_book(
        &venue,
        &map,
        &mut synced(&venue, &map, &snapshots),
        &updates,
    );
    let mut g = c.benchmark_group("okx_book");
    g.throughput(Throughput::Elements(updates.len() as u64));
    g.sample_size(20);
    g.bench_function("serde_json_typed_parse_only (limit)", |b| {
        b.iter(|| plain_books(&updates))
    });
    g.bench_function("json_to_book_crc32_to_framed_delta", |b| {
        b.iter_batched_ref(
            || synced(&venue, &map, &snapshots),
            |keeper| run_book(&venue, &map, keeper, &updates),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();

    // The ratios, measured again side by side.
    let d = Duration::from_millis(500);
    let limit = mean(d, || plain_trades(&trades));
    let ours = mean(d, || {
        let (mut out, mut buf) = (Vec::with_capacity(4), Vec::with_capacity(256));
        for l in &trades {
            venue.parse(l, 1, &map, &mut out).unwrap();
            frame::events(&mut out, &mut buf);
        }
    });
    println!(
        "okx_trade: {:.0} trades/s framed vs {:.0}/s plain serde_json parse: ratio {:.2}",
        n as f64 / ours,
        n as f64 / limit,
        ours / limit
    );
    let limit = mean(d, || plain_books(&updates));
    let ours = mean(d, || {
        let mut k = synced(&venue, &map, &snapshots);
        run_book(&venue, &map, &mut k, &updates)
    });
    let sync_only = mean(d, || {
        black_box(synced(&venue, &map, &snapshots));
    });
    let ours = (ours - sync_only).max(f64::MIN_POSITIVE);
    println!(
        "okx_book: {:.0} updates/s kept+checked+framed vs {:.0}/s plain serde_json parse: ratio {:.2}",
        updates.len() as f64 / ours,
        updates.len() as f64 / limit,
        ours / limit
    );
}

criterion_group!(benches, okx);
criterion_main!(benches);
