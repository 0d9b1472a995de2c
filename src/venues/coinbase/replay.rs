//! Coinbase's replay mock: serves the recorded Advanced Trade connection
//! (`coinbase_advanced_ws.jsonl`) on `/` and the recorded Exchange feed session
//! (`coinbase_snapshot`, `coinbase_l2update`, `coinbase_match`, `coinbase_ticker`) on
//! `/exchange`, like the venue.
//!
//! Advanced Trade: a subscribe (one channel per message) is answered with a `subscriptions`
//! frame listing that message's products; a `level2` subscription is followed by a snapshot
//! of the book as played so far, a `market_trades` one by a snapshot of the (up to 50) most
//! recent trades as played, newest first — so a client reconnecting mid-stream sees the
//! trades it already has again, as from the venue. The recording's own snapshot frames of
//! these two channels give the initial state and are not played; its `subscriptions` frames
//! are not played either. **`sequence_num` counts the messages of each connection** from 0
//! (subscription answers and snapshots included, as from the venue), so a client subscribed
//! to fewer channels than were recorded still sees a contiguous sequence. Frames a client is
//! not subscribed to still move the books, so a resubscribe's snapshot is the venue's book at
//! that moment.
//!
//! Exchange feed: a subscribe (`channels`, `product_ids`) is answered with `subscriptions`;
//! `level2_batch` is followed by a snapshot of the book as played, `matches` by the latest
//! match played as `last_match`.
//!
//! Loops after the first shift dates by `k` days (text arithmetic on the RFC 3339 date),
//! candle starts by `k` days of seconds and trade ids by `k × 10 000 000`; every subscribed
//! book is sent its recorded snapshot again. REST: the products list.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use serde_json::{json, Value};

use super::http::PRODUCTS_PATH;
use crate::book::{OrderBook, Side};
use crate::replay::corpus::{read, CorpusError, Frame};
use crate::replay::{ClientAnswer, ReplayMock};
use crate::venues::json::rfc3339_to_us;

/// The Advanced Trade recording.
pub const ADVANCED_FILE: &str = "coinbase_advanced_ws.jsonl";
/// The products REST answer.
pub const PRODUCTS_FILE: &str = "coinbase_advanced_products_rest.jsonl";
/// The Exchange feed recordings: snapshots (initial books) and the played files.
pub const EXCHANGE_SNAPSHOTS: &str = "coinbase_snapshot.jsonl";
/// Exchange files played, merged by time.
pub const EXCHANGE_FILES: [&str; 3] = [
    "coinbase_l2update.jsonl",
    "coinbase_match.jsonl",
    "coinbase_ticker.jsonl",
];

/// Trades kept for a `market_trades` snapshot.
pub const TRADE_SNAPSHOT: usize = 50;

/// Trade id shift per loop.
pub const TRADE_ID_SHIFT: i64 = 10_000_000;

/// Subscription key of an Advanced Trade channel (`level2`, `market_trades`, `ticker`,
/// `candles`, `heartbeats`) and product (`""` for heartbeats).
pub fn adv_key(channel: &str, product: &str) -> String {
    format!("adv|{channel}|{product}")
}

/// Subscription key of an Exchange channel and product.
pub fn ex_key(channel: &str, product: &str) -> String {
    format!("ex|{channel}|{product}")
}

/// `y-m-d` of a day number since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// An RFC 3339 text moved by `days` whole days (the date rewritten, the rest kept).
pub fn shift_date(text: &str, days: i64) -> Option<String> {
    let us = rfc3339_to_us(text).ok()?;
    let (y, m, d) = civil((us + days * 86_400_000_000).div_euclid(86_400_000_000));
    Some(format!("{y:04}-{m:02}-{d:02}{}", text.get(10..)?))
}

fn shift_str(v: &mut Value, days: i64) {
    if let Some(t) = v.as_str().and_then(|t| shift_date(t, days)) {
        *v = Value::String(t);
    }
}

fn shift_id_text(v: &mut Value, k: i64) {
    if let Some(n) = v.as_str().and_then(|t| t.parse::<i64>().ok()) {
        *v = Value::String((n + k * TRADE_ID_SHIFT).to_string());
    } else if let Some(n) = v.as_i64() {
        *v = json!(n + k * TRADE_ID_SHIFT);
    }
}

/// Shifts an Advanced Trade frame's times and trade ids for loop `k`.
fn shift_advanced(v: &mut Value, k: i64) {
    shift_str(&mut v["timestamp"], k);
    for e in v["events"].as_array_mut().into_iter().flatten() {
        for u in e["updates"].as_array_mut().into_iter().flatten() {
            shift_str(&mut u["event_time"], k);
        }
        for t in e["trades"].as_array_mut().into_iter().flatten() {
            shift_str(&mut t["time"], k);
            shift_id_text(&mut t["trade_id"], k);
        }
        for c in e["candles"].as_array_mut().into_iter().flatten() {
            if let Some(s) = c["start"].as_str().and_then(|s| s.parse::<i64>().ok()) {
                c["start"] = Value::String((s + k * 86_400).to_string());
            }
        }
    }
}

/// Shifts an Exchange feed frame's time and trade id for loop `k`.
fn shift_exchange(v: &mut Value, k: i64) {
    shift_str(&mut v["time"], k);
    if v.get("trade_id").is_some() {
        shift_id_text(&mut v["trade_id"], k);
    }
}

/// The first product a frame is about.
fn adv_product(v: &Value) -> Option<&str> {
    let e = v["events"].get(0)?;
    e["product_id"].as_str().or_else(|| {
        ["trades", "tickers", "candles"]
            .iter()
            .find_map(|k| e[*k].get(0)?.get("product_id")?.as_str())
    })
}

fn time_ms(text: Option<&str>) -> i64 {
    text.and_then(|t| rfc3339_to_us(t).ok()).unwrap_or(0) / 1000
}

/// What the mock keeps as played.
#[derive(Debug, Default)]
struct State {
    /// The loop being played, per API (`adv`, `ex`: separate connections, separate paces).
    loops: HashMap<&'static str, i64>,
    /// The timeline position last applied, per subscription key (several connections pass
    /// the same frames; each is applied once, in order).
    applied: HashMap<String, i64>,
    /// Advanced Trade books by product.
    adv_books: HashMap<String, OrderBook>,
    /// Advanced Trade recent trades by product, oldest first.
    adv_trades: HashMap<String, VecDeque<Value>>,
    /// Exchange books by product.
    ex_books: HashMap<String, OrderBook>,
    /// Exchange latest match by product.
    ex_last: HashMap<String, Value>,
}

/// Coinbase's replay mock.
#[derive(Debug)]
pub struct CoinbaseMock {
    frames: Vec<Frame>,
    /// Recorded Advanced Trade level2 snapshots (levels as (side, price, size)).
    adv_snapshots: HashMap<String, Vec<(bool, String, String)>>,
    /// Recorded Advanced Trade trade snapshots (newest first).
    adv_trade_snapshots: HashMap<String, Vec<Value>>,
    /// Recorded Exchange snapshots.
    ex_snapshots: HashMap<String, Vec<(bool, String, String)>>,
    products: String,
    state: Mutex<State>,
}

fn book_of(levels: &[(bool, String, String)]) -> OrderBook {
    let mut b = OrderBook::new();
    for (bid, p, q) in levels {
        let side = if *bid { Side::Bid } else { Side::Ask };
        let _ = b.apply(side, p, q);
    }
    b
}

fn read_optional(path: &Path) -> Result<Vec<Value>, CorpusError> {
    if path.exists() {
        read(path)
    } else {
        Ok(Vec::new())
    }
}

impl CoinbaseMock {
    /// Loads the recordings of `dir`.
    pub fn load(dir: &Path) -> Result<CoinbaseMock, CorpusError> {
        let mut frames = Vec::new();
        let mut adv_snapshots: HashMap<String, Vec<(bool, String, String)>> = HashMap::new();
        let mut adv_trade_snapshots = HashMap::new();
        for v in read_optional(&dir.join(ADVANCED_FILE))? {
            let channel = v["channel"].as_str().unwrap_or_default().to_string();
            let kind = v["events"][0]["type"].as_str().unwrap_or_default();
            let product = adv_product(&v).unwrap_or_default().to_string();
            match (channel.as_str(), kind) {
                ("subscriptions", _) => continue,
                ("l2_data", "snapshot") => {
                    let levels = v["events"][0]["updates"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|u| {
                            (
                                u["side"] == "bid",
                                u["price_level"].as_str().unwrap_or_default().to_string(),
                                u["new_quantity"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect();
                    adv_snapshots.insert(product, levels);
                    continue;
                }
                ("market_trades", "snapshot") => {
                    let trades = v["events"][0]["trades"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    adv_trade_snapshots.insert(product, trades);
                    continue;
                }
                _ => {}
            }
            let sub = match channel.as_str() {
                "l2_data" => "level2",
                "heartbeats" => "heartbeats",
                other => other,
            };
            let product = if sub == "heartbeats" {
                String::new()
            } else {
                product
            };
            frames.push(Frame {
                key: adv_key(sub, &product),
                symbol: product,
                time_ms: time_ms(v["timestamp"].as_str()),
                value: v,
            });
        }
        let mut ex_snapshots = HashMap::new();
        for v in read_optional(&dir.join(EXCHANGE_SNAPSHOTS))? {
            let product = v["product_id"].as_str().unwrap_or_default().to_string();
            let mut levels = Vec::new();
            for (k, bid) in [("bids", true), ("asks", false)] {
                for l in v[k].as_array().into_iter().flatten() {
                    levels.push((
                        bid,
                        l[0].as_str().unwrap_or_default().to_string(),
                        l[1].as_str().unwrap_or_default().to_string(),
                    ));
                }
            }
            ex_snapshots.insert(product, levels);
        }
        let mut ex_frames = Vec::new();
        for file in EXCHANGE_FILES {
            for v in read_optional(&dir.join(file))? {
                let product = v["product_id"].as_str().unwrap_or_default().to_string();
                let channel = match v["type"].as_str() {
                    Some("l2update") => "level2_batch",
                    Some("match") => "matches",
                    Some("ticker") => "ticker",
                    _ => continue,
                };
                // The recording's snapshots cover its books only.
                if channel == "level2_batch" && !ex_snapshots.contains_key(&product) {
                    continue;
                }
                ex_frames.push(Frame {
                    key: ex_key(channel, &product),
                    symbol: product,
                    time_ms: time_ms(v["time"].as_str()),
                    value: v,
                });
            }
        }
        // The files were split by type: merged back by time (stable: each file's order kept).
        ex_frames.sort_by_key(|f| f.time_ms);
        // Frames without a time (none expected) would sort first; they are kept.
        frames.extend(ex_frames);
        let products = read_optional(&dir.join(PRODUCTS_FILE))?
            .first()
            .map(Value::to_string)
            .unwrap_or_else(|| r#"{"products":[]}"#.to_string());
        let mut state = State::default();
        for (p, levels) in &adv_snapshots {
            state.adv_books.insert(p.clone(), book_of(levels));
        }
        for (p, trades) in &adv_trade_snapshots {
            state
                .adv_trades
                .insert(p.clone(), trades.iter().rev().cloned().collect());
        }
        for (p, levels) in &ex_snapshots {
            state.ex_books.insert(p.clone(), book_of(levels));
        }
        Ok(CoinbaseMock {
            frames,
            adv_snapshots,
            adv_trade_snapshots,
            ex_snapshots,
            products,
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Index of `frame` in the recording, when it is one of its frames.
    fn index_of(&self, frame: &Frame) -> Option<usize> {
        crate::replay::corpus::index_in(&self.frames, frame)
    }

    fn now() -> String {
        // The mock's own frames carry a fixed, recognizable time.
        "2026-08-09T21:05:48.000000000Z".to_string()
    }

    fn adv_book_frame(&self, product: &str, book: &OrderBook) -> Value {
        let (bids, asks) = book.levels(None);
        let mut updates = Vec::with_capacity(bids.len() + asks.len());
        for (side, levels) in [("bid", bids), ("offer", asks)] {
            for l in levels {
                updates.push(json!({"side": side, "event_time": Self::now(),
                    "price_level": l.price, "new_quantity": l.quantity}));
            }
        }
        json!({"channel": "l2_data", "timestamp": Self::now(), "sequence_num": 0,
            "events": [{"type": "snapshot", "product_id": product, "updates": updates}]})
    }

    fn on_advanced(&self, v: &Value) -> ClientAnswer {
        let kind = v["type"].as_str().unwrap_or_default();
        let channel = v["channel"].as_str().unwrap_or_default();
        let products: Vec<String> = v["product_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        let mut answer = ClientAnswer::default();
        let keys: Vec<String> = if channel == "heartbeats" {
            vec![adv_key("heartbeats", "")]
        } else {
            products.iter().map(|p| adv_key(channel, p)).collect()
        };
        let listed = if channel == "heartbeats" {
            vec!["heartbeats".to_string()]
        } else {
            products.clone()
        };
        let subs = if kind == "subscribe" {
            json!({ channel: listed })
        } else {
            json!({})
        };
        answer.replies.push(
            json!({"channel": "subscriptions",
            "timestamp": Self::now(), "sequence_num": 0,
            "events": [{"subscriptions": subs}]})
            .to_string(),
        );
        match kind {
            "subscribe" => answer.subscribe = keys,
            "unsubscribe" => answer.unsubscribe = keys,
            _ => {}
        }
        answer
    }

    fn on_exchange(&self, v: &Value) -> ClientAnswer {
        let kind = v["type"].as_str().unwrap_or_default();
        let products: Vec<String> = v["product_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        let channels: Vec<String> = v["channels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        let mut answer = ClientAnswer::default();
        let keys: Vec<String> = channels
            .iter()
            .flat_map(|c| products.iter().map(move |p| ex_key(c, p)))
            .collect();
        let listed: Vec<Value> = if kind == "subscribe" {
            channels
                .iter()
                .map(|c| json!({"name": c, "product_ids": products}))
                .collect()
        } else {
            Vec::new()
        };
        answer
            .replies
            .push(json!({"type": "subscriptions", "channels": listed}).to_string());
        match kind {
            "subscribe" => answer.subscribe = keys,
            "unsubscribe" => answer.unsubscribe = keys,
            _ => {}
        }
        answer
    }
}

impl ReplayMock for CoinbaseMock {
    fn frames(&self) -> &[Frame] {
        &self.frames
    }

    fn ws_paths(&self) -> &'static [&'static str] {
        &["/", "/exchange"]
    }

    /// Advanced Trade streams on `/`, the Exchange feed's on `/exchange`.
    fn serves(&self, path: &str, key: &str) -> bool {
        path.ends_with("/exchange") == key.starts_with("ex|")
    }

    fn on_client(&self, text: &str) -> ClientAnswer {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return ClientAnswer {
                replies: vec![json!({"type": "error", "message": "failure to parse"}).to_string()],
                ..Default::default()
            };
        };
        if v.get("channels").is_some() {
            self.on_exchange(&v)
        } else {
            self.on_advanced(&v)
        }
    }

    fn on_subscribed(&self, key: &str) -> Vec<String> {
        let mut parts = key.splitn(3, '|');
        let (api, channel, product) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        match (api, channel) {
            ("adv", "level2") => {
                let frame = {
                    let s = self.state();
                    s.adv_books
                        .get(product)
                        .map(|b| self.adv_book_frame(product, b))
                };
                frame.map(|f| f.to_string()).into_iter().collect()
            }
            ("adv", "market_trades") => {
                let trades: Vec<Value> = {
                    let s = self.state();
                    s.adv_trades
                        .get(product)
                        .map(|t| t.iter().rev().cloned().collect())
                        .unwrap_or_default()
                };
                vec![json!({"channel": "market_trades",
                    "timestamp": Self::now(), "sequence_num": 0,
                    "events": [{"type": "snapshot", "trades": trades}]})
                .to_string()]
            }
            ("ex", "level2_batch") => {
                let s = self.state();
                s.ex_books
                    .get(product)
                    .map(|b| {
                        let (bids, asks) = b.levels(None);
                        let side = |l: Vec<crate::schema::v2beta1::level2_book::PriceLevel>| -> Vec<Value> {
                            l.into_iter().map(|l| json!([l.price, l.quantity])).collect()
                        };
                        json!({"type": "snapshot", "product_id": product,
                            "bids": side(bids), "asks": side(asks)})
                        .to_string()
                    })
                    .into_iter()
                    .collect()
            }
            ("ex", "matches") => {
                let s = self.state();
                s.ex_last
                    .get(product)
                    .map(|m| {
                        let mut m = m.clone();
                        m["type"] = json!("last_match");
                        m.to_string()
                    })
                    .into_iter()
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    fn on_loop(&self, k: i64, subs: &HashSet<String>) -> Vec<String> {
        {
            let mut s = self.state();
            // The first connection of an API to reach loop `k` resets that API's state.
            let api = if subs.iter().any(|key| key.starts_with("ex|")) {
                "ex"
            } else {
                "adv"
            };
            let at = s.loops.entry(api).or_insert(0);
            if k > *at {
                *at = k;
                if api == "adv" {
                    for (p, levels) in &self.adv_snapshots {
                        s.adv_books.insert(p.clone(), book_of(levels));
                    }
                    for (p, trades) in &self.adv_trade_snapshots {
                        let mut t: VecDeque<Value> = trades.iter().rev().cloned().collect();
                        for v in t.iter_mut() {
                            shift_id_text(&mut v["trade_id"], k);
                        }
                        s.adv_trades.insert(p.clone(), t);
                    }
                } else {
                    for (p, levels) in &self.ex_snapshots {
                        s.ex_books.insert(p.clone(), book_of(levels));
                    }
                }
            }
        }
        let mut keys: Vec<&String> = subs.iter().collect();
        keys.sort();
        keys.into_iter()
            .filter(|key| key.starts_with("adv|level2|") || key.starts_with("ex|level2_batch|"))
            .flat_map(|key| self.on_subscribed(key))
            .collect()
    }

    fn render(&self, frame: &Frame, k: i64) -> Option<Value> {
        let mut v = frame.value.clone();
        if frame.key.starts_with("adv|") {
            if k > 0 {
                shift_advanced(&mut v, k);
            }
        } else if k > 0 {
            shift_exchange(&mut v, k);
        }
        Some(v)
    }

    fn passed(&self, frame: &Frame, k: i64) {
        if let Some(v) = self.render(frame, k) {
            self.played(frame, &v, k);
        }
    }

    /// Advanced Trade numbers every message of a connection, subscription answers and
    /// snapshots included.
    fn sequence(&self, text: String, n: u64) -> String {
        if !text.contains("\"sequence_num\"") {
            return text;
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(mut v) if v.get("sequence_num").is_some() => {
                v["sequence_num"] = json!(n);
                v.to_string()
            }
            _ => text,
        }
    }

    fn played(&self, frame: &Frame, value: &Value, k: i64) {
        let mut s = self.state();
        if let Some(idx) = self.index_of(frame) {
            let pos = k * self.frames.len() as i64 + idx as i64;
            let last = s.applied.entry(frame.key.clone()).or_insert(-1);
            if pos <= *last {
                return;
            }
            *last = pos;
        }
        if frame.key.starts_with("adv|level2|") {
            if let Some(book) = s.adv_books.get_mut(&frame.symbol) {
                for e in value["events"].as_array().into_iter().flatten() {
                    for u in e["updates"].as_array().into_iter().flatten() {
                        let side = if u["side"] == "bid" {
                            Side::Bid
                        } else {
                            Side::Ask
                        };
                        let (p, q) = (
                            u["price_level"].as_str().unwrap_or_default(),
                            u["new_quantity"].as_str().unwrap_or_default(),
                        );
                        let _ = book.apply(side, p, q);
                    }
                }
            }
        } else if frame.key.starts_with("adv|market_trades|") {
            let list = s.adv_trades.entry(frame.symbol.clone()).or_default();
            for e in value["events"].as_array().into_iter().flatten() {
                for t in e["trades"].as_array().into_iter().flatten() {
                    list.push_back(t.clone());
                    if list.len() > TRADE_SNAPSHOT {
                        list.pop_front();
                    }
                }
            }
        } else if frame.key.starts_with("ex|level2_batch|") {
            if let Some(book) = s.ex_books.get_mut(&frame.symbol) {
                for c in value["changes"].as_array().into_iter().flatten() {
                    let side = if c[0] == "buy" { Side::Bid } else { Side::Ask };
                    let _ = book.apply(
                        side,
                        c[1].as_str().unwrap_or_default(),
                        c[2].as_str().unwrap_or_default(),
                    );
                }
            }
        } else if frame.key.starts_with("ex|matches|") {
            s.ex_last.insert(frame.symbol.clone(), value.clone());
        }
    }

    fn rest(&self, path: &str, _query: &HashMap<String, String>) -> Option<(u16, String)> {
        (path == PRODUCTS_PATH).then(|| (200, self.products.clone()))
    }
}

/// The registry's replay constructor.
pub fn mock(fixtures: &Path) -> Result<Box<dyn ReplayMock>, CorpusError> {
    Ok(Box::new(CoinbaseMock::load(fixtures)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_shift_by_whole_days() {
        assert_eq!(
            shift_date("2026-08-09T21:05:48.228568804Z", 1).as_deref(),
            Some("2026-08-10T21:05:48.228568804Z")
        );
        assert_eq!(
            shift_date("2021-02-28T23:59:59.5Z", 1).as_deref(),
            Some("2021-03-01T23:59:59.5Z")
        );
        assert_eq!(
            shift_date("2024-12-31T00:00:00Z", 1).as_deref(),
            Some("2025-01-01T00:00:00Z")
        );
        assert_eq!(shift_date("nope", 1), None);
    }
}
