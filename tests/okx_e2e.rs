//! OKX end to end, both book modes, each through a connection dropped mid-stream.
//!
//! In-band (`/inband`, the 2022 recordings as they were): the replay server plays them three
//! times, the service ingests them over WebSocket (books and tickers on `/ws/v5/public`, every
//! trade as `trades-all` on `/ws/v5/business`), and what reached Kafka is consumed, decoded and
//! checked: every book rebuilt here from each `Level2Book` and the deltas after it agrees with
//! OKX's checksum (computed here, independently of the service) on every delta; the dropped
//! connection is reconnected, announced, and no trade is duplicated; trade and ticker values
//! equal the ones typed from the recorded messages by OKX's documented semantics.
//!
//! REST mode (OKX's current one: plain URL): no in-band snapshot, books fetched from
//! `GET /api/v5/market/books` and bridged by `seqId`/`prevSeqId` (numbered by the mock); every
//! `Level2Book` and every book after each `Level2Delta`, rebuilt here, equals the book rebuilt
//! here from the recorded frames alone at the same `seqId`; no gap, the drop resynced over
//! REST and announced, no aggregated trade twice.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "okx/mod.rs"]
mod okx_books;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use okx_books::{okx_crc, set, Side, BOOK_SYMBOLS};
use tickflow::config::{FeedConfig, SymbolSource};
use tickflow::replay::ReplayServerConfig;
use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::v2beta1::trade;
use tickflow::schema::{DataType, Normalized};
use tickflow::venues::Channel;

#[actix_rt::test]
async fn okx_books_keep_the_venue_checksum_through_a_dropped_connection() {
    common::init_logs();
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "okx".into(),
        fixtures: "tests/fixtures/okx".into(),
        loops: 3,
        // Mid-stream (second loop): books in sync and updates flowing when it drops.
        drop_after_frames: 500,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = common::test_config("e2eokx");
    cfg.feeds = vec![FeedConfig {
        venue: "okx".into(),
        symbols: BOOK_SYMBOLS.iter().map(|s| s.to_string()).collect(),
        channels: vec![Channel::Depth, Channel::Trade, Channel::Ticker],
        // `/inband`: the recordings' book mode (in-band snapshot + CRC32).
        ws_url: Some(format!("ws://{}/inband", replay.addr)),
        rest_url: Some(format!("http://{}", replay.addr)),
        snapshot_limit: 400,
        book_snapshot_every: 0,
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(300),
        symbol_source: SymbolSource::Pinned,
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let service = common::run_replayed(cfg.clone(), &replay, Duration::from_secs(120)).await;
    common::assert_reconnected_once(&service);

    let mut records: Vec<Normalized> = common::decoded(&cfg, DataType::Level2Book);
    records.extend(common::decoded(&cfg, DataType::Level2Delta));
    records.sort_by_key(|r| match r {
        Normalized::Level2Book(b) => (b.symbol.clone(), b.receipt_time, 0),
        Normalized::Level2Delta(d) => (d.symbol.clone(), d.receipt_time, 1),
        _ => unreachable!(),
    });
    let mut books: HashMap<String, (Side, Side)> = HashMap::new();
    let (mut checked, mut full_books) = (0, HashMap::<String, usize>::new());
    for r in &records {
        match r {
            Normalized::Level2Book(b) => {
                let (mut bids, mut asks) = (Side::new(), Side::new());
                for l in &b.bids {
                    set(&mut bids, &l.price, &l.quantity);
                }
                for l in &b.asks {
                    set(&mut asks, &l.price, &l.quantity);
                }
                let c: u32 = b.checksum.as_deref().unwrap().parse().unwrap();
                assert_eq!(c as i32, okx_crc(&bids, &asks), "{}", b.symbol);
                *full_books.entry(b.symbol.clone()).or_default() += 1;
                books.insert(b.symbol.clone(), (bids, asks));
            }
            Normalized::Level2Delta(d) => {
                let (bids, asks) = books
                    .get_mut(&d.symbol)
                    .unwrap_or_else(|| panic!("a delta of {} before its book", d.symbol));
                for l in &d.bids {
                    set(bids, &l.price, &l.quantity);
                }
                for l in &d.asks {
                    set(asks, &l.price, &l.quantity);
                }
                let venue: u32 = d.checksum.as_deref().unwrap().parse().unwrap();
                assert_eq!(
                    venue as i32,
                    okx_crc(bids, asks),
                    "{} delta {:?}",
                    d.symbol,
                    d
                );
                checked += 1;
            }
            _ => unreachable!(),
        }
    }
    // 287 recorded updates per loop, three loops, less what the drop cost.
    assert!(checked > 500, "deltas flowed: {checked}");
    assert_eq!(full_books.len(), BOOK_SYMBOLS.len(), "{full_books:?}");
    // A book at the start of each loop and one after the reconnect.
    assert!(full_books.values().all(|n| *n >= 3), "{full_books:?}");

    let events: Vec<_> = common::decoded(&cfg, DataType::FeedEvent)
        .into_iter()
        .map(|r| match r {
            Normalized::FeedEvent(e) => e,
            _ => unreachable!(),
        })
        .collect();
    assert!(events
        .iter()
        .any(|e| e.kind == Kind::Reconnect as i32 && e.since.is_some()));
    assert!(
        events
            .iter()
            .all(|e| e.kind != Kind::ChecksumMismatch as i32 && e.kind != Kind::Gap as i32),
        "{events:?}"
    );
    let synced = events
        .iter()
        .filter(|e| e.kind == Kind::Synced as i32)
        .count();
    assert_eq!(synced, full_books.values().sum::<usize>());

    // Trades: each (symbol, trade id) at most once; the first recorded one as OKX documents
    // it: {"instId":"BTC-USD-220527","tradeId":"7849","px":"30218.8","sz":"1","side":"buy",
    // "ts":"1652459199958"} — a taker buy of 1 contract.
    let trades: Vec<_> = common::decoded(&cfg, DataType::Trade)
        .into_iter()
        .map(|r| match r {
            Normalized::Trade(t) => t,
            _ => unreachable!(),
        })
        .collect();
    let mut seen = HashSet::new();
    for t in &trades {
        assert!(
            seen.insert((t.symbol.clone(), t.trade_id.clone())),
            "duplicate {t:?}"
        );
    }
    let t = trades
        .iter()
        .find(|t| t.trade_id == "7849")
        .unwrap_or_else(|| panic!("first trade missing: {trades:?}"));
    assert_eq!(
        (
            t.exchange.as_str(),
            t.symbol.as_str(),
            t.side,
            t.price.as_str(),
            t.amount.as_str(),
            t.timestamp
        ),
        (
            "OKX",
            "BTC-USD-20220527",
            trade::Side::Buy as i32,
            "30218.8",
            "1",
            1_652_459_199_958_000
        )
    );
    // A recorded ticker of the quarterly: volume in BTC (volCcy24h), not contracts.
    let tickers: Vec<_> = common::decoded(&cfg, DataType::Ticker)
        .into_iter()
        .map(|r| match r {
            Normalized::Ticker(t) => t,
            _ => unreachable!(),
        })
        .collect();
    let t = tickers
        .iter()
        .find(|t| t.symbol == "BTC-USD-20220527" && t.timestamp == Some(1_652_459_223_003_000))
        .unwrap_or_else(|| panic!("ticker missing: {tickers:?}"));
    assert_eq!(
        (
            t.bid.as_str(),
            t.ask.as_str(),
            t.last.as_str(),
            t.open.as_str(),
            t.high.as_str(),
            t.low.as_str(),
            t.volume.as_str(),
            t.quote_volume.as_str()
        ),
        ("30210.4", "30220.1", "30218.8", "29571.4", "31003.3", "27930.8", "2620.289", "")
    );
}

/// Every book of the 2022 recording after each recorded update, rebuilt here from the
/// fixtures alone (not the service's code): instId → the book after 0, 1, 2, … of its updates.
fn recorded_books() -> HashMap<String, Vec<(Side, Side)>> {
    let read = |f: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(format!("tests/fixtures/okx/{f}"))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let put = |book: &mut (Side, Side), v: &serde_json::Value| {
        for d in v["data"].as_array().unwrap() {
            for l in d["bids"].as_array().unwrap() {
                set(&mut book.0, l[0].as_str().unwrap(), l[1].as_str().unwrap());
            }
            for l in d["asks"].as_array().unwrap() {
                set(&mut book.1, l[0].as_str().unwrap(), l[1].as_str().unwrap());
            }
        }
    };
    let mut out: HashMap<String, Vec<(Side, Side)>> = HashMap::new();
    for v in read("okx_books_snapshot.jsonl") {
        let mut b = (Side::new(), Side::new());
        put(&mut b, &v);
        out.insert(v["arg"]["instId"].as_str().unwrap().into(), vec![b]);
    }
    for v in read("okx_books_update.jsonl") {
        let states = out.get_mut(v["arg"]["instId"].as_str().unwrap()).unwrap();
        let mut b = states.last().unwrap().clone();
        put(&mut b, &v);
        states.push(b);
    }
    out
}

/// The mock's REST-mode numbering (documented in `src/venues/okx/replay.rs`): the n-th update
/// of an instrument with N updates a loop, in loop k, has `seqId` 1 000 000 + k·(N+1) + n; a
/// loop starts (n = 0) at the recorded snapshot.
const SEQ_BASE: i64 = 1_000_000;

#[actix_rt::test]
async fn okx_rest_mode_books_equal_the_recording_through_a_dropped_connection() {
    common::init_logs();
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "okx".into(),
        fixtures: "tests/fixtures/okx".into(),
        loops: 2,
        // Ten times the recorded pace (36 s a loop → 3.6 s): the snapshots fetched at the
        // start arrive while the loop is young.
        speed: 10.0,
        // One connection (books, aggregated trades, tickers: 389 frames a loop): dropped in
        // the second loop, books in sync and updates flowing.
        drop_after_frames: 540,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = common::test_config("e2eokxrest");
    cfg.feeds = vec![FeedConfig {
        venue: "okx".into(),
        symbols: BOOK_SYMBOLS.iter().map(|s| s.to_string()).collect(),
        channels: vec![Channel::Depth, Channel::AggTrade, Channel::Ticker],
        // No `/inband`: OKX's current book mode (REST snapshot bridged by seqId/prevSeqId).
        ws_url: Some(format!("ws://{}", replay.addr)),
        rest_url: Some(format!("http://{}", replay.addr)),
        snapshot_limit: 400,
        book_snapshot_every: 0,
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(300),
        symbol_source: SymbolSource::Pinned,
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let service = common::run_replayed(cfg.clone(), &replay, Duration::from_secs(120)).await;
    common::assert_reconnected_once(&service);
    // A REST snapshot per book at the start and again after the reconnect.
    assert!(
        replay.rest_requests().len() >= 2 * BOOK_SYMBOLS.len(),
        "{} REST requests",
        replay.rest_requests().len()
    );

    let expected = recorded_books();
    let inst_of = |symbol: &str| match symbol {
        "BTC-USD-20220527" => "BTC-USD-220527",
        "UNI-USD-PERP" => "UNI-USD-SWAP",
        "BTC-USDT" => "BTC-USDT",
        other => panic!("unexpected symbol {other}"),
    };
    let expect_at = |symbol: &str, seq: i64| -> &(Side, Side) {
        let states = &expected[inst_of(symbol)];
        let per_loop = states.len() as i64; // N + 1
        assert!(seq >= SEQ_BASE, "{symbol}: seqId {seq}");
        &states[((seq - SEQ_BASE) % per_loop) as usize]
    };
    let mut records: Vec<Normalized> = common::decoded(&cfg, DataType::Level2Book);
    records.extend(common::decoded(&cfg, DataType::Level2Delta));
    records.sort_by_key(|r| match r {
        Normalized::Level2Book(b) => (b.symbol.clone(), b.receipt_time, 0),
        Normalized::Level2Delta(d) => (d.symbol.clone(), d.receipt_time, 1),
        _ => unreachable!(),
    });
    let mut books: HashMap<String, (Side, Side, i64)> = HashMap::new();
    let (mut compared, mut full_books) = (0, HashMap::<String, Vec<i64>>::new());
    for r in &records {
        match r {
            Normalized::Level2Book(b) => {
                let (mut bids, mut asks) = (Side::new(), Side::new());
                for l in &b.bids {
                    set(&mut bids, &l.price, &l.quantity);
                }
                for l in &b.asks {
                    set(&mut asks, &l.price, &l.quantity);
                }
                let seq = b.last_update_id.expect("a REST book carries its seqId");
                let want = expect_at(&b.symbol, seq);
                assert!(
                    (&bids, &asks) == (&want.0, &want.1),
                    "{} snapshot at seqId {seq} differs from the recording",
                    b.symbol
                );
                full_books.entry(b.symbol.clone()).or_default().push(seq);
                books.insert(b.symbol.clone(), (bids, asks, seq));
            }
            Normalized::Level2Delta(d) => {
                let (bids, asks, last) = books
                    .get_mut(&d.symbol)
                    .unwrap_or_else(|| panic!("a delta of {} before its book", d.symbol));
                for l in &d.bids {
                    set(bids, &l.price, &l.quantity);
                }
                for l in &d.asks {
                    set(asks, &l.price, &l.quantity);
                }
                let seq = d.last_update_id.expect("a REST delta carries its seqId");
                assert_eq!(seq, *last + 1, "{}: deltas continue the chain", d.symbol);
                *last = seq;
                let want = expect_at(&d.symbol, seq);
                assert!(
                    (&*bids, &*asks) == (&want.0, &want.1),
                    "{} at seqId {seq} differs from the recording",
                    d.symbol
                );
                compared += 1;
            }
            _ => unreachable!(),
        }
    }
    // 287 recorded updates a loop, two loops (plus one loop-start update a book), less what
    // the snapshots held (the replay runs as fast as it can: much goes by while the first
    // snapshots are fetched) and the drop cost.
    println!("deltas compared: {compared}; books at seqIds {full_books:?}");
    assert!(compared > 450, "deltas compared: {compared}");
    assert_eq!(full_books.len(), BOOK_SYMBOLS.len(), "{full_books:?}");
    // A book at the start and one after the reconnect, each.
    assert!(full_books.values().all(|v| v.len() >= 2), "{full_books:?}");

    let events: Vec<_> = common::decoded(&cfg, DataType::FeedEvent)
        .into_iter()
        .map(|r| match r {
            Normalized::FeedEvent(e) => e,
            _ => unreachable!(),
        })
        .collect();
    assert!(events
        .iter()
        .any(|e| e.kind == Kind::Reconnect as i32 && e.since.is_some()));
    assert!(
        events
            .iter()
            .all(|e| e.kind != Kind::ChecksumMismatch as i32 && e.kind != Kind::Gap as i32),
        "{events:?}"
    );
    let synced = events
        .iter()
        .filter(|e| e.kind == Kind::Synced as i32)
        .count();
    assert_eq!(synced, full_books.values().map(Vec::len).sum::<usize>());

    // Aggregated trades (`trades`): each (symbol, trade id) at most once among the acked; the
    // recorded ones of both loops (ids shifted by 10⁹ in the second) arrived, less at most the
    // frame the drop lost.
    let trades: Vec<_> = common::decoded(&cfg, DataType::Trade)
        .into_iter()
        .map(|r| match r {
            Normalized::Trade(t) => t,
            _ => unreachable!(),
        })
        .collect();
    let mut seen = HashSet::new();
    for t in &trades {
        assert!(
            seen.insert((t.symbol.clone(), t.trade_id.clone())),
            "duplicate {t:?}"
        );
        assert_eq!(t.trade_type.as_deref(), Some("aggregate"), "{t:?}");
    }
    assert!(trades.len() >= 2 * 74 - 1, "{} trades", trades.len());
    assert!(seen.contains(&("BTC-USD-20220527".to_string(), "7849".to_string())));
    assert!(seen.contains(&("BTC-USD-20220527".to_string(), "1000007849".to_string())));
}
