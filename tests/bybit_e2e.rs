//! Bybit end to end: the replay server plays the recorded v5 spot connection (with its
//! instrument list), `Service::start` ingests it over WebSocket, and what reached Kafka is
//! consumed, decoded and compared with the recording read here independently: every
//! `Level2Book` equals the recorded book at its `u`, every `Level2Delta` equals the recorded
//! delta with its `u`, no `u` is produced twice, the connection dropped mid-stream is
//! reconnected, announced and resynced, and trades are each recorded trade at most once with
//! Bybit's documented semantics.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::Value;
use tickflow::config::FeedConfig;
use tickflow::replay::ReplayServerConfig;
use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::v2beta1::level2_book::PriceLevel;
use tickflow::schema::v2beta1::trade;
use tickflow::schema::{DataType, Normalized};
use tickflow::venues::Channel;

const DIR: &str = "tests/fixtures/bybit";

type Side = BTreeMap<Decimal, (String, String)>;
type Levels = Vec<(String, String)>;

/// The recording read here: per normalized symbol, the book after each `u` and each delta's
/// levels (as sent).
#[derive(Default)]
struct Recorded {
    books: HashMap<(String, i64), (Levels, Levels)>,
    deltas: HashMap<(String, i64), (Levels, Levels)>,
    last: HashMap<String, i64>,
    trades: HashMap<String, Value>,
}

fn recorded() -> Recorded {
    let mut r = Recorded::default();
    let mut sides: HashMap<String, (Side, Side)> = HashMap::new();
    let text = std::fs::read_to_string(format!("{DIR}/bybit_v5_spot_ws.jsonl")).unwrap();
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let topic = v["topic"].as_str().unwrap_or("");
        if topic.starts_with("publicTrade.") {
            for t in v["data"].as_array().unwrap() {
                r.trades
                    .insert(t["i"].as_str().unwrap().to_string(), t.clone());
            }
            continue;
        }
        if !topic.starts_with("orderbook.") {
            continue;
        }
        let d = &v["data"];
        let sym = match d["s"].as_str().unwrap() {
            "BTCUSDT" => "BTC-USDT",
            "ETHUSDT" => "ETH-USDT",
            other => panic!("{other}"),
        }
        .to_string();
        let u = d["u"].as_i64().unwrap();
        let e = sides.entry(sym.clone()).or_default();
        if v["type"] == "snapshot" {
            *e = (Side::new(), Side::new());
        }
        let mut sent = (Vec::new(), Vec::new());
        for (k, bids) in [("b", true), ("a", false)] {
            for lv in d[k].as_array().unwrap() {
                let (p, q) = (lv[0].as_str().unwrap(), lv[1].as_str().unwrap());
                let side = if bids { &mut e.0 } else { &mut e.1 };
                let key: Decimal = p.parse().unwrap();
                if q.parse::<Decimal>().unwrap().is_zero() {
                    side.remove(&key);
                } else {
                    side.insert(key, (p.to_string(), q.to_string()));
                }
                let out = if bids { &mut sent.0 } else { &mut sent.1 };
                out.push((p.to_string(), q.to_string()));
            }
        }
        if v["type"] == "delta" {
            r.deltas.insert((sym.clone(), u), sent);
        }
        r.books.insert(
            (sym.clone(), u),
            (
                e.0.values().rev().cloned().collect(),
                e.1.values().cloned().collect(),
            ),
        );
        r.last.insert(sym, u);
    }
    r
}

fn levels(v: &[PriceLevel]) -> Levels {
    v.iter()
        .map(|l| (l.price.clone(), l.quantity.clone()))
        .collect()
}

#[actix_rt::test]
async fn bybit_books_trades_and_tickers_reach_kafka_through_a_dropped_connection() {
    common::init_logs();
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "bybit".into(),
        fixtures: DIR.into(),
        // Mid-stream: books in sync and deltas flowing when the connection drops.
        drop_after_frames: 300,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = common::test_config("e2ebybit");
    cfg.feeds = vec![FeedConfig {
        venue: "bybit".into(),
        symbols: vec!["BTC-USDT".into(), "ETH-USDT".into()],
        channels: vec![
            Channel::Depth,
            Channel::Trade,
            Channel::Ticker,
            Channel::Candle,
        ],
        ws_url: Some(format!("ws://{}", replay.addr)),
        // The symbols are looked up in the replayed instrument lists.
        rest_url: Some(format!("http://{}", replay.addr)),
        snapshot_limit: 200,
        book_snapshot_every: 0,
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(300),
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let service = common::run_replayed(cfg.clone(), &replay, Duration::from_secs(90)).await;
    common::assert_reconnected_once(&service);

    let rec = recorded();
    // Every full book is the recorded book at its `u`.
    let mut full_books: HashMap<String, Vec<i64>> = HashMap::new();
    for r in common::decoded(&cfg, DataType::Level2Book) {
        let Normalized::Level2Book(b) = r else {
            unreachable!()
        };
        assert_eq!(b.exchange, "BYBIT");
        let u = b.last_update_id.expect("Bybit books carry u");
        let want = rec
            .books
            .get(&(b.symbol.clone(), u))
            .unwrap_or_else(|| panic!("{} book at u {u} not recorded", b.symbol));
        assert_eq!(
            (levels(&b.bids), levels(&b.asks)),
            *want,
            "{} u {u}",
            b.symbol
        );
        full_books.entry(b.symbol.clone()).or_default().push(u);
    }
    // Every delta is the recorded delta with its `u`, each at most once; after the last full
    // book of a symbol, every later `u` arrived (the book ends as the recording ends).
    let mut seen: HashSet<(String, i64)> = HashSet::new();
    for r in common::decoded(&cfg, DataType::Level2Delta) {
        let Normalized::Level2Delta(d) = r else {
            unreachable!()
        };
        let u = d.last_update_id.expect("u");
        assert_eq!(d.first_update_id, Some(u));
        assert!(
            seen.insert((d.symbol.clone(), u)),
            "{} u {u} twice",
            d.symbol
        );
        let want = rec
            .deltas
            .get(&(d.symbol.clone(), u))
            .unwrap_or_else(|| panic!("{} delta u {u} not recorded", d.symbol));
        let dl = |v: &[tickflow::schema::v2beta1::level2_delta::PriceLevel]| -> Levels {
            v.iter()
                .map(|l| (l.price.clone(), l.quantity.clone()))
                .collect()
        };
        assert_eq!((dl(&d.bids), dl(&d.asks)), *want);
    }
    assert_eq!(full_books.len(), 2, "{full_books:?}");
    // The reconnect resynced the books streaming then: a second full book.
    assert!(full_books.values().any(|v| v.len() >= 2), "{full_books:?}");
    for (sym, us) in &full_books {
        let from = *us.iter().max().unwrap();
        for u in from + 1..=rec.last[sym] {
            assert!(seen.contains(&(sym.clone(), u)), "{sym} u {u} missing");
        }
        // Before the drop, the first book's deltas were contiguous too.
        let first = *us.iter().min().unwrap();
        let before: Vec<i64> = seen
            .iter()
            .filter(|(s, u)| s == sym && *u > first && *u < from)
            .map(|(_, u)| *u)
            .collect();
        assert!(!before.is_empty(), "{sym}: deltas before the resync");
    }

    // The drop is announced; every full book came with a SYNCED event; nothing broke.
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
        events.iter().all(|e| e.kind != Kind::Gap as i32
            && e.kind != Kind::CrossedBook as i32
            && e.kind != Kind::ChecksumMismatch as i32),
        "{events:?}"
    );
    let synced = events
        .iter()
        .filter(|e| e.kind == Kind::Synced as i32)
        .count();
    assert_eq!(synced, full_books.values().map(Vec::len).sum::<usize>());

    // Trades: each recorded trade at most once (compared by id), as Bybit documents them.
    let trades: Vec<_> = common::decoded(&cfg, DataType::Trade)
        .into_iter()
        .map(|r| match r {
            Normalized::Trade(t) => t,
            _ => unreachable!(),
        })
        .collect();
    let mut ids = HashSet::new();
    for t in &trades {
        assert!(ids.insert(t.trade_id.clone()), "duplicate {t:?}");
        let r = rec
            .trades
            .get(&t.trade_id)
            .unwrap_or_else(|| panic!("not recorded: {t:?}"));
        assert_eq!(t.price, r["p"].as_str().unwrap());
        assert_eq!(t.amount, r["v"].as_str().unwrap());
        assert_eq!(t.timestamp, r["T"].as_i64().unwrap() * 1000);
    }
    // At most one frame's trades lost with the dropped frame.
    assert!(
        trades.len() + 3 >= rec.trades.len(),
        "{} of {}",
        trades.len(),
        rec.trades.len()
    );
    // {"i":"2280000001739247417","T":1786310821917,"p":"1923.28","v":"0.04537","S":"Sell",
    // "s":"ETHUSDT"}: a taker sell of 0.04537 ETH.
    if let Some(t) = trades.iter().find(|t| t.trade_id == "2280000001739247417") {
        assert_eq!(
            (t.symbol.as_str(), t.side, t.maker, t.timestamp),
            (
                "ETH-USDT",
                trade::Side::Sell as i32,
                Some(true),
                1_786_310_821_917_000
            )
        );
    }

    // The first BTCUSDT ticker: lastPrice 65140.5, prevPrice24h 65045.3, volume24h 2953.835931.
    let tickers: Vec<_> = common::decoded(&cfg, DataType::Ticker)
        .into_iter()
        .map(|r| match r {
            Normalized::Ticker(t) => t,
            _ => unreachable!(),
        })
        .collect();
    let t = tickers
        .iter()
        .find(|t| t.timestamp == Some(1_786_310_819_126_000))
        .unwrap_or_else(|| panic!("first BTC ticker missing: {tickers:?}"));
    assert_eq!(
        (
            t.symbol.as_str(),
            t.last.as_str(),
            t.open.as_str(),
            t.high.as_str(),
            t.low.as_str(),
            t.volume.as_str(),
            t.quote_volume.as_str()
        ),
        (
            "BTC-USDT",
            "65140.5",
            "65045.3",
            "65305.6",
            "64727.9",
            "2953.835931",
            "191907024.69597728"
        )
    );
    let candles = common::decoded(&cfg, DataType::Candle);
    assert!(candles.iter().any(
        |c| matches!(c, Normalized::Candle(c) if c.symbol == "BTC-USDT" && c.interval == "1m")
    ));
}

/// One feed naming a spot and a linear symbol opens one connection per category (Bybit serves
/// each on its own URL): the spot connection carries the recorded spot trades, the linear one is
/// answered on `/v5/public/linear` (where nothing was recorded, so nothing plays) and no spot
/// frame is taken for the perpetual.
#[actix_rt::test]
async fn one_feed_of_two_categories_opens_a_connection_per_category() {
    common::init_logs();
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "bybit".into(),
        fixtures: DIR.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = common::test_config("e2ebybitcat");
    cfg.feeds = vec![FeedConfig {
        venue: "bybit".into(),
        symbols: vec!["BTC-USDT".into(), "BTC-USDT-PERP".into()],
        channels: vec![Channel::Trade],
        ws_url: Some(format!("ws://{}", replay.addr)),
        rest_url: Some(format!("http://{}", replay.addr)),
        // The replayed instrument list is spot's only: the perpetual is named by the pinned rule.
        symbol_source: tickflow::config::SymbolSource::Pinned,
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let service = common::run_replayed(cfg.clone(), &replay, Duration::from_secs(90)).await;
    let names: HashSet<&str> = service.feeds.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        HashSet::from(["bybit/spot[BTC-USDT]", "bybit/linear[BTC-USDT-PERP]"])
    );
    for f in &service.feeds {
        let frames = f.stats.frames.load(std::sync::atomic::Ordering::Relaxed);
        let errors = f.stats.errors.load(std::sync::atomic::Ordering::Relaxed);
        // The linear connection's frame is its subscription answer.
        assert!(frames >= 1, "{}: no frame", f.name);
        assert_eq!(errors, 0, "{}", f.name);
    }
    // Every recorded BTCUSDT spot trade, once, as BTC-USDT; none as the perpetual.
    let rec = recorded();
    let want: HashSet<String> = rec
        .trades
        .iter()
        .filter(|(_, t)| t["s"] == "BTCUSDT")
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!want.is_empty());
    let mut got = HashSet::new();
    for r in common::decoded(&cfg, DataType::Trade) {
        let Normalized::Trade(t) = r else {
            unreachable!()
        };
        assert_eq!(t.symbol, "BTC-USDT", "{t:?}");
        assert!(got.insert(t.trade_id.clone()), "twice: {t:?}");
    }
    assert_eq!(got, want);
}
