//! BitMEX end to end: the replay server plays the recorded session (`orderBookL2`, `quote`,
//! `trade` of ten symbols), `Service::start` ingests it over WebSocket, and what reached Kafka
//! is consumed, decoded and compared: every book rebuilt here from its `Level2Book` and the
//! deltas after it equals the book rebuilt independently from the recorded rows; the
//! connection dropped mid-stream is re-established once, announced, every book resyncs from a
//! fresh `partial`, and no trade or quote is duplicated in what was acked.
#![cfg(feature = "integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod books;
mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use books::{set, Side};
use rust_decimal::Decimal;
use serde_json::Value;
use tickflow::config::{FeedConfig, SymbolSource};
use tickflow::replay::ReplayServerConfig;
use tickflow::schema::v2beta1::feed_event::Kind;
use tickflow::schema::v2beta1::trade;
use tickflow::schema::{DataType, Normalized};
use tickflow::venues::Channel;

const FIX: &str = "tests/fixtures/bitmex";

/// Venue symbol → normalized, typed by hand (XBT is BTC; U21 = September 2021, last Friday
/// the 24th; XRPU21 and TRXU21 are quoted in XBT).
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

/// Exact price → exact quantity.
fn exact(side: &Side) -> BTreeMap<Decimal, Decimal> {
    side.iter()
        .map(|(k, (_, q))| (*k, q.parse().unwrap()))
        .collect()
}

/// The recorded books at the end, from the raw rows (documented semantics: partial, insert,
/// update sets the size, delete), without the venue's code. Prices as literals (some are
/// written `1e-8`: `Decimal` reads them).
fn recorded_books() -> HashMap<String, (Side, Side)> {
    let text = std::fs::read_to_string(format!("{FIX}/bitmex_session.jsonl")).unwrap();
    let mut rows: Rows = HashMap::new();
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        if v["table"] != "orderBookL2" {
            continue;
        }
        let action = v["action"].as_str().unwrap();
        for r in v["data"].as_array().unwrap() {
            let sym = r["symbol"].as_str().unwrap().to_string();
            let k = (
                r["id"].as_u64().unwrap(),
                r["side"].as_str().unwrap().to_string(),
            );
            let book = rows.entry(sym).or_default();
            match action {
                "partial" | "insert" => {
                    book.insert(k, (r["price"].to_string(), r["size"].to_string()));
                }
                "update" => book.get_mut(&k).unwrap().1 = r["size"].to_string(),
                "delete" => {
                    book.remove(&k).unwrap();
                }
                a => panic!("{a}"),
            }
        }
    }
    rows.into_iter()
        .map(|(s, r)| {
            let (mut bids, mut asks) = (Side::new(), Side::new());
            for ((_, side), (p, q)) in r {
                let p: Decimal = p
                    .parse()
                    .unwrap_or_else(|_| Decimal::from_scientific(&p).unwrap());
                let p = p.normalize().to_string();
                if side == "Buy" {
                    set(&mut bids, &p, &q);
                } else {
                    set(&mut asks, &p, &q);
                }
            }
            (s, (bids, asks))
        })
        .collect()
}

/// Rows by (id, side) → (price, size) literals, per symbol.
type Rows = HashMap<String, BTreeMap<(u64, String), (String, String)>>;

/// Every recorded trade match id.
fn recorded_trade_ids() -> HashSet<String> {
    let text = std::fs::read_to_string(format!("{FIX}/bitmex_session.jsonl")).unwrap();
    let mut ids = HashSet::new();
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        if v["table"] == "trade" && v["action"] == "insert" {
            for r in v["data"].as_array().unwrap() {
                ids.insert(r["trdMatchID"].as_str().unwrap().to_string());
            }
        }
    }
    ids
}

#[actix_rt::test]
async fn bitmex_books_survive_a_dropped_connection_and_nothing_is_duplicated() {
    common::init_logs();
    let replay = tickflow::venues::replay_server(ReplayServerConfig {
        venue: "bitmex".into(),
        fixtures: FIX.into(),
        // Mid-stream: books in sync, rows flowing when the connection drops.
        drop_after_frames: 900,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = common::test_config("e2ebitmex");
    cfg.feeds = vec![FeedConfig {
        venue: "bitmex".into(),
        symbols: SYMBOLS.iter().map(|(_, n)| n.to_string()).collect(),
        channels: vec![Channel::Depth, Channel::Trade, Channel::BookTicker],
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

    // Books: the last Level2Book of each symbol and the deltas after it, in Kafka order.
    let mut records = common::decoded(&cfg, DataType::Level2Book);
    records.extend(common::decoded(&cfg, DataType::Level2Delta));
    records.sort_by_key(|r| match r {
        Normalized::Level2Book(b) => (b.symbol.clone(), b.receipt_time, 0),
        Normalized::Level2Delta(d) => (d.symbol.clone(), d.receipt_time, 1),
        _ => unreachable!(),
    });
    let mut got: HashMap<String, (Side, Side)> = HashMap::new();
    let mut full_books: HashMap<String, usize> = HashMap::new();
    let mut deltas = 0;
    for r in &records {
        match r {
            Normalized::Level2Book(b) => {
                assert_eq!(b.exchange, "BITMEX");
                assert_eq!(
                    (b.sequence, b.last_update_id, b.checksum.as_deref()),
                    (None, None, None)
                );
                let (mut bids, mut asks) = (Side::new(), Side::new());
                for l in &b.bids {
                    set(&mut bids, &l.price, &l.quantity);
                }
                for l in &b.asks {
                    set(&mut asks, &l.price, &l.quantity);
                }
                *full_books.entry(b.symbol.clone()).or_default() += 1;
                got.insert(b.symbol.clone(), (bids, asks));
            }
            Normalized::Level2Delta(d) => {
                let (bids, asks) = got
                    .get_mut(&d.symbol)
                    .unwrap_or_else(|| panic!("a delta of {} before its book", d.symbol));
                for l in &d.bids {
                    set(bids, &l.price, &l.quantity);
                }
                for l in &d.asks {
                    set(asks, &l.price, &l.quantity);
                }
                deltas += 1;
            }
            _ => unreachable!(),
        }
    }
    assert!(deltas > 1_000, "deltas flowed: {deltas}");
    assert_eq!(full_books.len(), SYMBOLS.len(), "{full_books:?}");
    assert!(
        full_books.values().all(|n| *n >= 2),
        "every book resynced after the drop: {full_books:?}"
    );
    let want = recorded_books();
    for (venue, normalized) in SYMBOLS {
        let (wb, wa) = &want[venue];
        let (gb, ga) = &got[normalized];
        assert_eq!(exact(gb), exact(wb), "{normalized} bids");
        assert_eq!(exact(ga), exact(wa), "{normalized} asks");
    }

    // The drop is announced; no book broke.
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
        events.iter().all(|e| e.kind != Kind::Gap as i32),
        "{events:?}"
    );

    // Trades: each at most once, every one a recorded match id.
    let trades: Vec<_> = common::decoded(&cfg, DataType::Trade)
        .into_iter()
        .map(|r| match r {
            Normalized::Trade(t) => t,
            _ => unreachable!(),
        })
        .collect();
    let ids = recorded_trade_ids();
    let mut seen = HashSet::new();
    for t in &trades {
        assert!(ids.contains(&t.trade_id), "{t:?}");
        assert!(seen.insert(t.trade_id.clone()), "duplicate {t:?}");
    }
    assert!(!trades.is_empty());
    // {"timestamp":"2021-07-22T22:36:11.685Z","symbol":"XBTUSD","side":"Buy","size":100,
    // "price":32180.5,"trdMatchID":"6e70bebe-235e-08a6-d11b-e1042bf1f2ed",…}: the taker bought
    // 100 contracts (100 USD); 2021-07-22T22:36:11 = 1626993371 s.
    if let Some(t) = trades
        .iter()
        .find(|t| t.trade_id == "6e70bebe-235e-08a6-d11b-e1042bf1f2ed")
    {
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
                "BITMEX",
                "BTC-USD-PERP",
                trade::Side::Buy as i32,
                "32180.5",
                "100",
                1_626_993_371_685_000
            )
        );
    }

    // Quotes: no (symbol, time, bid, ask) twice.
    let quotes = common::decoded(&cfg, DataType::TopOfBook);
    assert!(!quotes.is_empty());
    let mut seen = HashSet::new();
    for q in &quotes {
        let Normalized::TopOfBook(q) = q else {
            unreachable!()
        };
        assert!(
            seen.insert((
                q.symbol.clone(),
                q.timestamp,
                q.bid_price.clone(),
                q.bid_size.clone(),
                q.ask_price.clone(),
                q.ask_size.clone()
            )),
            "duplicate {q:?}"
        );
    }
}
