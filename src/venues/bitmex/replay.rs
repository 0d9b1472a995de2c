//! BitMEX's replay mock: serves the recorded session of `tests/fixtures/bitmex`
//! (`bitmex_session*.jsonl`: the table messages of one live connection, in order) on
//! `/realtime` like the venue. `{"op":"subscribe","args":[topics]}` is answered per topic with
//! `{"success":true,"subscribe":topic,…}`; an `orderBookL2:SYMBOL` subscription is followed
//! by a `partial` of the book **as played so far** (the mock applies every recorded
//! `insert`/`update`/`delete` it plays, and the ones a client skipped while unsubscribed), so a
//! client resubscribing or reconnecting mid-stream gets a book the following rows continue.
//! The recorded `orderBookL2` partials are the initial books (not played as frames). The text
//! `ping` is answered `pong`. When a loop starts, subscribed books get the recorded partial
//! again; later loops shift row times by the recording's span and suffix trade match ids with
//! `-L<loop>` (so that loops are new trades).
//!
//! Pacing: frames are timed by their latest row `timestamp`; book rows of the 2021 API carry
//! none and take the time of the frame before. REST: `/api/v1/orderBook/L2?symbol=` (the book
//! as played) and `/api/v1/instrument/active`, synthesized from the recorded symbols by the
//! pinned symbol rules.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use serde_json::{json, Map, Value};

use super::symbols::{normalized_symbol, venue_asset};
use crate::replay::corpus::{read, CorpusError, Frame};
use crate::replay::{ClientAnswer, ReplayMock};
use crate::venues::json::rfc3339_to_us;
use crate::venues::{Instrument, InstrumentKind};

/// Prefix of the recorded session files the mock plays.
pub const SESSION_PREFIX: &str = "bitmex_session";

/// Tables the mock serves.
pub const TABLES: &[&str] = &[
    "orderBookL2",
    "trade",
    "quote",
    "instrument",
    "liquidation",
    "tradeBin1m",
];

/// Book rows: (id, side) → (price, size) literals.
type Rows = BTreeMap<(u64, String), (Value, Value)>;

/// The subscription key of a table message (`table:SYMBOL` of its first row).
fn key_of(v: &Value) -> Option<(String, String)> {
    let table = v["table"].as_str()?;
    let symbol = v["data"].as_array()?.first()?["symbol"].as_str()?;
    Some((format!("{table}:{symbol}"), symbol.to_string()))
}

/// The latest row time of a frame, µs.
fn frame_time(v: &Value) -> Option<i64> {
    v["data"]
        .as_array()?
        .iter()
        .filter_map(|r| r["timestamp"].as_str().and_then(|t| rfc3339_to_us(t).ok()))
        .max()
}

/// Civil date of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// µs since the epoch → BitMEX's RFC 3339 with milliseconds (`2021-07-22T22:36:10.014Z`).
pub fn us_to_rfc3339(us: i64) -> String {
    let ms = us.div_euclid(1000);
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Applies a book message's rows to `rows`.
fn apply(rows: &mut Rows, v: &Value) {
    let action = v["action"].as_str().unwrap_or_default();
    for r in v["data"].as_array().into_iter().flatten() {
        let (Some(id), Some(side)) = (r["id"].as_u64(), r["side"].as_str()) else {
            continue;
        };
        let k = (id, side.to_string());
        match action {
            "partial" | "insert" => {
                rows.insert(k, (r["price"].clone(), r["size"].clone()));
            }
            "update" => {
                if let Some(row) = rows.get_mut(&k) {
                    if !r["price"].is_null() {
                        row.0 = r["price"].clone();
                    }
                    if !r["size"].is_null() {
                        row.1 = r["size"].clone();
                    }
                }
            }
            "delete" => {
                rows.remove(&k);
            }
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Played {
    rows: Rows,
    /// Timeline position the book stands at (-1: the recorded partial of loop 0).
    last: i64,
}

#[derive(Debug, Default)]
struct State {
    books: HashMap<String, Played>,
    loop_k: i64,
    seen: Option<i64>,
}

/// The replay mock of BitMEX.
#[derive(Debug)]
pub struct BitmexMock {
    frames: Vec<Frame>,
    recorded: HashMap<String, Rows>,
    span_us: i64,
    state: Mutex<State>,
}

impl BitmexMock {
    /// Loads every `bitmex_session*.jsonl` in `dir`, in name order.
    pub fn load(dir: &Path) -> Result<BitmexMock, CorpusError> {
        let io = |source| CorpusError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(SESSION_PREFIX) && n.ends_with(".jsonl"))
            .collect();
        names.sort();
        let mut frames = Vec::new();
        let mut recorded: HashMap<String, Rows> = HashMap::new();
        let mut last = None;
        for name in &names {
            for v in read(&dir.join(name))? {
                let Some((key, symbol)) = key_of(&v) else {
                    continue;
                };
                if v["table"] == "orderBookL2" && v["action"] == "partial" {
                    apply(recorded.entry(symbol).or_default(), &v);
                    continue;
                }
                let t = frame_time(&v).or(last);
                last = t;
                frames.push(Frame {
                    key,
                    symbol,
                    value: v,
                    time_ms: t.unwrap_or(0) / 1000,
                });
            }
        }
        // Untimed frames before the first timed one take its time.
        let first = frames
            .iter()
            .map(|f| f.time_ms)
            .find(|t| *t > 0)
            .unwrap_or(0);
        for f in frames.iter_mut() {
            if f.time_ms == 0 {
                f.time_ms = first;
            }
        }
        let span_us = match (frames.first(), frames.last()) {
            (Some(a), Some(b)) => (b.time_ms - a.time_ms + 1) * 1000,
            _ => 1000,
        };
        Ok(BitmexMock {
            frames,
            recorded,
            span_us,
            state: Mutex::new(State::default()),
        })
    }

    fn initial(&self, symbol: &str, k: i64) -> Played {
        Played {
            rows: self.recorded.get(symbol).cloned().unwrap_or_default(),
            last: k * self.frames.len() as i64 - 1,
        }
    }

    /// Brings `symbol`'s book to timeline position `upto` (played or skipped frames alike).
    fn advance(&self, state: &mut State, symbol: &str, upto: i64) {
        let len = self.frames.len() as i64;
        let mut played = state
            .books
            .remove(symbol)
            .unwrap_or_else(|| self.initial(symbol, 0));
        let mut p = played.last + 1;
        while len > 0 && p <= upto {
            let (k, idx) = (p / len, (p % len) as usize);
            if idx == 0 && p > 0 {
                played = self.initial(symbol, k);
            }
            if let Some(f) = self.frames.get(idx) {
                if f.symbol == symbol && f.key.starts_with("orderBookL2:") {
                    apply(&mut played.rows, &f.value);
                }
            }
            played.last = p;
            p += 1;
        }
        state.books.insert(symbol.to_string(), played);
    }

    /// The rows of a book as JSON objects (REST and partial form).
    fn rows_json(symbol: &str, rows: Option<&Played>) -> Vec<Value> {
        rows.map(|p| {
            p.rows
                .iter()
                .map(|((id, side), (price, size))| {
                    json!({"symbol": symbol, "id": id, "side": side, "size": size, "price": price})
                })
                .collect()
        })
        .unwrap_or_default()
    }

    fn partial_frame(symbol: &str, rows: Option<&Played>) -> String {
        json!({
            "table": "orderBookL2",
            "action": "partial",
            "keys": ["symbol", "id", "side"],
            "types": {"symbol": "symbol", "id": "long", "side": "symbol", "size": "long", "price": "float"},
            "filter": {"symbol": symbol},
            "data": Self::rows_json(symbol, rows),
        })
        .to_string()
    }

    fn index_of(&self, frame: &Frame) -> Option<usize> {
        crate::replay::corpus::index_in(&self.frames, frame)
    }

    fn symbols(&self) -> Vec<String> {
        let mut s: Vec<String> = self.frames.iter().map(|f| f.symbol.clone()).collect();
        s.extend(self.recorded.keys().cloned());
        s.sort();
        s.dedup();
        s
    }
}

impl ReplayMock for BitmexMock {
    fn frames(&self) -> &[Frame] {
        &self.frames
    }

    fn ws_paths(&self) -> &'static [&'static str] {
        &["/realtime"]
    }

    fn on_client(&self, text: &str) -> ClientAnswer {
        let mut answer = ClientAnswer::default();
        if text.trim() == "ping" {
            answer.replies.push("pong".into());
            return answer;
        }
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let op = v["op"].as_str().unwrap_or_default();
        let topics: Vec<String> = match &v["args"] {
            Value::Array(a) => a
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
            Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        };
        if op != "subscribe" && op != "unsubscribe" {
            answer.replies.push(
                json!({"status": 400, "error": "Unknown or missing op", "meta": {}, "request": v})
                    .to_string(),
            );
            return answer;
        }
        for topic in topics {
            let table = topic.split(':').next().unwrap_or_default();
            if !TABLES.contains(&table) {
                answer.replies.push(
                    json!({"status": 400, "error": format!("Unknown table: {table}"), "meta": {}, "request": {"op": op, "args": [topic]}})
                        .to_string(),
                );
                continue;
            }
            answer.replies.push(
                json!({"success": true, op: topic, "request": {"op": op, "args": [topic]}})
                    .to_string(),
            );
            if op == "subscribe" {
                answer.subscribe.push(topic);
            } else {
                answer.unsubscribe.push(topic);
            }
        }
        answer
    }

    fn on_subscribed(&self, key: &str) -> Vec<String> {
        let Some(symbol) = key.strip_prefix("orderBookL2:") else {
            return Vec::new();
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let upto = state.seen.unwrap_or(-1);
        self.advance(&mut state, symbol, upto);
        vec![Self::partial_frame(symbol, state.books.get(symbol))]
    }

    fn on_loop(&self, k: i64, subs: &HashSet<String>) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if k > state.loop_k {
            state.loop_k = k;
            for s in self.recorded.keys() {
                state.books.insert(s.clone(), self.initial(s, k));
            }
        }
        let mut symbols: Vec<&str> = subs
            .iter()
            .filter_map(|s| s.strip_prefix("orderBookL2:"))
            .collect();
        symbols.sort_unstable();
        symbols
            .into_iter()
            .map(|s| Self::partial_frame(s, state.books.get(s)))
            .collect()
    }

    fn render(&self, frame: &Frame, k: i64) -> Option<Value> {
        let mut v = frame.value.clone();
        if k > 0 {
            for r in v["data"].as_array_mut().into_iter().flatten() {
                if let Some(t) = r["timestamp"].as_str().and_then(|t| rfc3339_to_us(t).ok()) {
                    r["timestamp"] = Value::String(us_to_rfc3339(t + k * self.span_us));
                }
                if let Some(id) = r["trdMatchID"].as_str() {
                    r["trdMatchID"] = Value::String(format!("{id}-L{k}"));
                }
            }
        }
        Some(v)
    }

    /// Positions only: a frame passed moves the venue's book like one played.
    fn passed(&self, frame: &Frame, k: i64) {
        self.played(frame, &Value::Null, k);
    }

    fn played(&self, frame: &Frame, _value: &Value, k: i64) {
        let Some(idx) = self.index_of(frame) else {
            return;
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let pos = k * self.frames.len() as i64 + idx as i64;
        state.seen = Some(state.seen.map_or(pos, |s| s.max(pos)));
        if frame.key.starts_with("orderBookL2:") {
            self.advance(&mut state, &frame.symbol, pos);
        }
    }

    fn rest(&self, path: &str, query: &HashMap<String, String>) -> Option<(u16, String)> {
        match path {
            "/api/v1/orderBook/L2" => {
                let symbol = query.get("symbol")?;
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                let upto = state.seen.unwrap_or(-1);
                self.advance(&mut state, symbol, upto);
                let rows = Self::rows_json(symbol, state.books.get(symbol.as_str()));
                Some((200, Value::Array(rows).to_string()))
            }
            "/api/v1/instrument/active" => {
                let list: Vec<Value> = self
                    .symbols()
                    .into_iter()
                    .filter_map(|s| {
                        let n = normalized_symbol(&s)?;
                        let i = Instrument::parse(&n).ok()?;
                        let typ = match i.kind {
                            InstrumentKind::Perpetual => "FFWCSX",
                            InstrumentKind::Future => "FFCCSX",
                            InstrumentKind::Spot => "IFXXXP",
                            InstrumentKind::Option => return None,
                        };
                        let mut m = Map::new();
                        m.insert("symbol".into(), json!(s));
                        m.insert("typ".into(), json!(typ));
                        m.insert("state".into(), json!("Open"));
                        m.insert("underlying".into(), json!(venue_asset(&i.base)));
                        m.insert("quoteCurrency".into(), json!(venue_asset(&i.quote)));
                        let expiry = i.expiry.as_ref().map(|e| {
                            format!("{}-{}-{}T12:00:00.000Z", &e[0..4], &e[4..6], &e[6..8])
                        });
                        m.insert("expiry".into(), json!(expiry));
                        Some(Value::Object(m))
                    })
                    .collect();
                Some((200, Value::Array(list).to_string()))
            }
            _ => None,
        }
    }
}

/// The BitMEX replay mock serving the recordings in `fixtures` (the registry's constructor).
pub fn mock(fixtures: &Path) -> Result<Box<dyn ReplayMock>, CorpusError> {
    Ok(Box::new(BitmexMock::load(fixtures)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times_round_trip() {
        // 2021-07-22T22:36:10.014Z = 1626993370.014 s (date -u -d @1626993370).
        assert_eq!(
            us_to_rfc3339(1_626_993_370_014_000),
            "2021-07-22T22:36:10.014Z"
        );
        assert_eq!(
            rfc3339_to_us("2021-07-22T22:36:10.014Z").unwrap(),
            1_626_993_370_014_000
        );
        assert_eq!(
            us_to_rfc3339(951_782_400_000_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
