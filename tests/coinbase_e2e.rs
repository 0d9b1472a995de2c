//! Coinbase end to end: the replay server plays the recorded Advanced Trade connection (and
//! the recorded Exchange feed session on `/exchange`), `Service::start` ingests it over
//! WebSocket, and what reached Kafka is consumed, decoded and compared: books rebuilt here
//! from each `Level2Book` and the deltas after it end equal to the recording's books rebuilt
//! from the fixture's raw JSON; the connection dropped mid-stream is reconnected with no
//! sequence break announced (the mock numbers `sequence_num` per connection), and every
//! recorded trade reaches Kafka exactly once (the reconnect's `market_trades` snapshot repeats
//! trades already produced); tickers, book tickers and candles as typed from the recording.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::Value;
use tickflow::config::{Config, FeedConfig, SymbolSource};
use tickflow::replay::ReplayServerConfig;
use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::v2beta1::trade;
use tickflow::schema::{DataType, Normalized};
use tickflow::venues::Channel;

const DIR: &str = "tests/fixtures/coinbase";

type Side = BTreeMap<Decimal, Decimal>;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap().normalize()
}

fn set(side: &mut Side, p: &str, q: &str) {
    let q = dec(q);
    if q.is_zero() {
        side.remove(&dec(p));
    } else {
        side.insert(dec(p), q);
    }
}

fn lines(file: &str) -> Vec<Value> {
    std::fs::read_to_string(format!("{DIR}/{file}"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Books rebuilt from what reached Kafka: each `Level2Book` replaces the symbol's book, the
/// deltas after it apply. Also how many full books each symbol got.
fn books_from_kafka(cfg: &Config) -> (HashMap<String, (Side, Side)>, HashMap<String, usize>) {
    let mut records: Vec<Normalized> = common::decoded(cfg, DataType::Level2Book);
    records.extend(common::decoded(cfg, DataType::Level2Delta));
    records.sort_by_key(|r| match r {
        Normalized::Level2Book(b) => (b.symbol.clone(), b.receipt_time, 0),
        Normalized::Level2Delta(d) => (d.symbol.clone(), d.receipt_time, 1),
        _ => unreachable!(),
    });
    let mut books: HashMap<String, (Side, Side)> = HashMap::new();
    let mut full: HashMap<String, usize> = HashMap::new();
    for r in &records {
        match r {
            Normalized::Level2Book(b) => {
                let mut side = (Side::new(), Side::new());
                for l in &b.bids {
                    set(&mut side.0, &l.price, &l.quantity);
                }
                for l in &b.asks {
                    set(&mut side.1, &l.price, &l.quantity);
                }
                *full.entry(b.symbol.clone()).or_default() += 1;
                books.insert(b.symbol.clone(), side);
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
            }
            _ => unreachable!(),
        }
    }
    (books, full)
}

#[actix_rt::test]
async fn advanced_trade_through_a_dropped_connection() {
    common::init_logs();
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "coinbase".into(),
        fixtures: DIR.into(),
        // Mid-stream: books synced and every channel flowing when the connection drops.
        drop_after_frames: 250,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = common::test_config("e2ecoinbase");
    cfg.feeds = vec![FeedConfig {
        venue: "coinbase".into(),
        symbols: vec!["BTC-USD".into(), "ETH-USD".into()],
        channels: vec![
            Channel::Depth,
            Channel::Trade,
            Channel::Ticker,
            Channel::BookTicker,
            Channel::Candle,
        ],
        // The root of the replay server speaks Advanced Trade.
        ws_url: Some(format!("ws://{}", replay.addr)),
        rest_url: Some(format!("http://{}", replay.addr)),
        book_snapshot_every: 0,
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(300),
        symbol_source: SymbolSource::Pinned,
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let service = common::run_replayed(cfg.clone(), &replay, Duration::from_secs(120)).await;
    common::assert_reconnected_once(&service);

    // The recording's books, rebuilt from the fixture's raw JSON.
    let frames = lines("coinbase_advanced_ws.jsonl");
    let mut truth: HashMap<String, (Side, Side)> = HashMap::new();
    for v in frames.iter().filter(|v| v["channel"] == "l2_data") {
        for e in v["events"].as_array().unwrap() {
            let p = e["product_id"].as_str().unwrap().to_string();
            if e["type"] == "snapshot" {
                truth.insert(p.clone(), Default::default());
            }
            let (bids, asks) = truth.get_mut(&p).unwrap();
            for u in e["updates"].as_array().unwrap() {
                let side = if u["side"] == "bid" {
                    &mut *bids
                } else {
                    &mut *asks
                };
                set(
                    side,
                    u["price_level"].as_str().unwrap(),
                    u["new_quantity"].as_str().unwrap(),
                );
            }
        }
    }
    let (books, full) = books_from_kafka(&cfg);
    for sym in ["BTC-USD", "ETH-USD"] {
        assert_eq!(
            books[sym], truth[sym],
            "{sym}: the final book is the recording's"
        );
    }
    // Both books synced on the first connection and again after the reconnect.
    assert_eq!(full.get("BTC-USD"), Some(&2), "{full:?}");
    assert_eq!(full.get("ETH-USD"), Some(&2), "{full:?}");

    // Announced: the reconnect; no sequence break (the mock numbers per connection).
    let events: Vec<_> = common::decoded(&cfg, DataType::FeedEvent)
        .into_iter()
        .map(|r| match r {
            Normalized::FeedEvent(e) => e,
            _ => unreachable!(),
        })
        .collect();
    assert!(events.iter().any(|e| e.kind == Kind::Reconnect as i32));
    assert!(
        events.iter().all(|e| e.kind != Kind::Gap as i32),
        "{events:?}"
    );

    // Trades: every recorded trade id exactly once, though the reconnect's snapshot repeated
    // some.
    let mut want: Vec<(String, String)> = frames
        .iter()
        .filter(|v| v["channel"] == "market_trades")
        .flat_map(|v| v["events"][0]["trades"].as_array().unwrap().clone())
        .map(|t| {
            (
                t["product_id"].as_str().unwrap().to_string(),
                t["trade_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    want.sort();
    let trades: Vec<_> = common::decoded(&cfg, DataType::Trade)
        .into_iter()
        .map(|r| match r {
            Normalized::Trade(t) => t,
            _ => unreachable!(),
        })
        .collect();
    let mut got: Vec<(String, String)> = trades
        .iter()
        .map(|t| (t.symbol.clone(), t.trade_id.clone()))
        .collect();
    got.sort();
    assert_eq!(got, want);
    // Latency per venue and channel, trades and book diffs (their venue times are months
    // before the replay: the recording is from August).
    let metrics = service.producer.metrics();
    let stored = |t: &tickflow::schema::v2beta1::Trade| {
        (t.event_time.unwrap_or(t.timestamp), t.receipt_time)
    };
    common::assert_latency_observed(
        &metrics,
        "COINBASE",
        "trade",
        &trades.iter().map(stored).collect::<Vec<_>>(),
    );
    let deltas: Vec<(i64, i64)> = common::decoded(&cfg, DataType::Level2Delta)
        .into_iter()
        .map(|r| match r {
            Normalized::Level2Delta(d) => {
                (d.event_time.or(d.timestamp).unwrap_or(0), d.receipt_time)
            }
            _ => unreachable!(),
        })
        .collect();
    assert!(!deltas.is_empty());
    common::assert_latency_observed(&metrics, "COINBASE", "level2_delta", &deltas);
    // seq 9: maker SELL at 65083.67 → taker buy, 0.01034361, 2026-08-09T21:05:48.167634Z.
    let t = trades.iter().find(|t| t.trade_id == "1068572091").unwrap();
    assert_eq!(
        (
            t.exchange.as_str(),
            t.side,
            t.price.as_str(),
            t.amount.as_str(),
            t.timestamp
        ),
        (
            "COINBASE",
            trade::Side::Buy as i32,
            "65083.67",
            "0.01034361",
            1_786_309_548_167_634
        )
    );

    // seq 6: the BTC-USD ticker and book ticker.
    let tickers: Vec<_> = common::decoded(&cfg, DataType::Ticker)
        .into_iter()
        .map(|r| match r {
            Normalized::Ticker(t) => t,
            _ => unreachable!(),
        })
        .collect();
    let t = tickers
        .iter()
        .find(|t| t.symbol == "BTC-USD" && t.last == "65086.18")
        .unwrap_or_else(|| panic!("{tickers:?}"));
    assert_eq!(
        (
            t.bid.as_str(),
            t.ask.as_str(),
            t.high.as_str(),
            t.low.as_str(),
            t.volume.as_str()
        ),
        (
            "65083.66",
            "65083.67",
            "65252.99",
            "64675.22",
            "2867.54532609"
        )
    );
    let tops: Vec<_> = common::decoded(&cfg, DataType::TopOfBook)
        .into_iter()
        .map(|r| match r {
            Normalized::TopOfBook(t) => t,
            _ => unreachable!(),
        })
        .collect();
    assert!(tops.iter().any(|b| b.symbol == "BTC-USD"
        && b.bid_size == "0.20371215"
        && b.ask_size == "0.24290402"));
    // seq 138: the ETH-USD 5-minute candle from 1786309500 s.
    let candles: Vec<_> = common::decoded(&cfg, DataType::Candle)
        .into_iter()
        .map(|r| match r {
            Normalized::Candle(c) => c,
            _ => unreachable!(),
        })
        .collect();
    assert!(candles.iter().any(|c| c.symbol == "ETH-USD"
        && c.start == 1_786_309_500_000_000
        && c.stop == 1_786_309_800_000_000
        && c.interval == "5m"
        && c.close == "1919.41"
        && c.volume == "36.36630914"));
}

#[actix_rt::test]
async fn exchange_feed_books_and_matches() {
    common::init_logs();
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "coinbase".into(),
        fixtures: DIR.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let snaps = lines("coinbase_snapshot.jsonl");
    let products: Vec<String> = snaps
        .iter()
        .map(|v| v["product_id"].as_str().unwrap().to_string())
        .collect();
    let mut cfg = common::test_config("e2ecoinbaseex");
    cfg.feeds = vec![FeedConfig {
        venue: "coinbase".into(),
        symbols: products.clone(),
        channels: vec![Channel::Depth, Channel::Trade],
        // `/exchange` speaks the Exchange feed.
        ws_url: Some(format!("ws://{}/exchange", replay.addr)),
        rest_url: Some(format!("http://{}", replay.addr)),
        book_snapshot_every: 0,
        symbol_source: SymbolSource::Pinned,
        ..Default::default()
    }];
    cfg.validate().unwrap();
    let _service = common::run_replayed(cfg.clone(), &replay, Duration::from_secs(120)).await;
    let mut truth: HashMap<String, (Side, Side)> = HashMap::new();
    for v in snaps.iter().chain(lines("coinbase_l2update.jsonl").iter()) {
        let p = v["product_id"].as_str().unwrap().to_string();
        if v["type"] == "snapshot" {
            let mut b = (Side::new(), Side::new());
            for x in v["bids"].as_array().unwrap() {
                set(&mut b.0, x[0].as_str().unwrap(), x[1].as_str().unwrap());
            }
            for x in v["asks"].as_array().unwrap() {
                set(&mut b.1, x[0].as_str().unwrap(), x[1].as_str().unwrap());
            }
            truth.insert(p, b);
        } else {
            let b = truth.get_mut(&p).unwrap();
            for c in v["changes"].as_array().unwrap() {
                let side = if c[0] == "buy" { &mut b.0 } else { &mut b.1 };
                set(side, c[1].as_str().unwrap(), c[2].as_str().unwrap());
            }
        }
    }
    let (books, _) = books_from_kafka(&cfg);
    for p in &products {
        assert_eq!(books.get(p), truth.get(p), "{p}");
    }
    // Every recorded match of these products once, with the taker's side.
    let mut want: Vec<(String, String, i32)> = lines("coinbase_match.jsonl")
        .iter()
        .filter(|v| products.iter().any(|p| v["product_id"] == p.as_str()))
        .map(|v| {
            let side = if v["side"] == "sell" {
                trade::Side::Buy
            } else {
                trade::Side::Sell
            };
            (
                v["product_id"].as_str().unwrap().to_string(),
                v["trade_id"].as_i64().unwrap().to_string(),
                side as i32,
            )
        })
        .collect();
    want.sort();
    let mut got: Vec<(String, String, i32)> = common::decoded(&cfg, DataType::Trade)
        .into_iter()
        .map(|r| match r {
            Normalized::Trade(t) => (t.symbol, t.trade_id, t.side),
            _ => unreachable!(),
        })
        .collect();
    got.sort();
    assert_eq!(got, want);
}
