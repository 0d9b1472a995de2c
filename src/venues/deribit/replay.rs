//! Deribit's replay mock: serves the recorded notifications of `tests/fixtures/deribit`
//! (`deribit_*.jsonl`, not the `_cmp_` test vectors) on `/ws/api/v2` (and `/`) like the
//! venue. JSON-RPC requests are answered by id: `public/subscribe` with the channels it
//! subscribed (channels of instruments the recording does not hold are left out, as Deribit
//! leaves out what it does not know), `public/unsubscribe` likewise, `public/set_heartbeat`
//! with `"ok"` followed by one `test_request`, `public/test` with a version. A `book`
//! subscription is followed by an in-band snapshot of the book as played so far, with the
//! `change_id` of the last change played, after which the recorded changes continue it.
//!
//! The recording's `.raw` channel names are served as the `.100ms` ones subscribed (same
//! payloads). Frames are timed by their `timestamp`; each file's order is kept. Later loops
//! shift times by the recording's span, change ids by the span of its ids and numeric trade
//! ids by 10^9, and every subscribed book is sent its recorded snapshot again (shifted).
//! The mock keeps one book per instrument.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use serde_json::{json, Value};

use super::symbols;
use crate::book::{OrderBook, Side};
use crate::replay::corpus::{read, CorpusError, Frame};
use crate::replay::{ClientAnswer, ReplayMock};

/// The recorded book snapshots (the initial book of each instrument).
pub const SNAPSHOT_FILE: &str = "deribit_book_snapshot.jsonl";

/// How much a numeric trade id grows per loop.
pub const TRADE_ID_SHIFT: i64 = 1_000_000_000;

/// Subscription key of a channel name (`book.BTC-PERPETUAL.100ms` → `book:BTC-PERPETUAL`).
pub fn key(channel: &str) -> Option<String> {
    let mut parts = channel.split('.');
    let prefix = parts.next()?;
    let instrument = parts.next()?;
    matches!(prefix, "book" | "trades" | "ticker" | "quote")
        .then(|| format!("{prefix}:{instrument}"))
}

/// The instrument and latest time (ms) of a notification.
fn instrument_and_time(v: &Value) -> Option<(String, Option<i64>)> {
    let data = &v["params"]["data"];
    if let Some(items) = data.as_array() {
        let first = items.first()?;
        let t = items.iter().filter_map(|t| t["timestamp"].as_i64()).max();
        return Some((first["instrument_name"].as_str()?.to_string(), t));
    }
    Some((
        data["instrument_name"].as_str()?.to_string(),
        data["timestamp"].as_i64(),
    ))
}

/// Number text as JSON writes it.
fn num_text(v: &Value) -> Option<String> {
    v.is_number().then(|| v.to_string())
}

/// Applies a book notification's levels to `book`.
fn apply(book: &mut OrderBook, data: &Value) {
    for (side, k) in [(Side::Bid, "bids"), (Side::Ask, "asks")] {
        for l in data[k].as_array().into_iter().flatten() {
            let (Some(price), Some(amount)) = (num_text(&l[1]), num_text(&l[2])) else {
                continue;
            };
            let qty = if l[0] == "delete" {
                "0".to_string()
            } else {
                amount
            };
            let _ = book.apply(side, &price, &qty);
        }
    }
}

/// A recorded initial book.
#[derive(Debug, Clone)]
struct Recorded {
    book: OrderBook,
    change_id: i64,
    time_ms: i64,
}

/// A book as played so far.
#[derive(Debug, Clone)]
struct Played {
    book: OrderBook,
    change_id: i64,
    time_ms: i64,
    /// Timeline position the book stands at (-1: the recorded snapshot).
    last: i64,
}

#[derive(Debug, Default)]
struct State {
    books: HashMap<String, Played>,
    loop_k: i64,
    seen: Option<i64>,
}

/// The replay mock of Deribit.
#[derive(Debug)]
pub struct DeribitMock {
    frames: Vec<Frame>,
    recorded: HashMap<String, Recorded>,
    instruments: HashSet<String>,
    span_ms: i64,
    id_span: i64,
    state: Mutex<State>,
}

impl DeribitMock {
    /// Loads every `deribit_*.jsonl` recording in `dir` (not the `_cmp_` vectors).
    pub fn load(dir: &Path) -> Result<DeribitMock, CorpusError> {
        let io = |source| CorpusError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("deribit_") && n.ends_with(".jsonl") && !n.contains("_cmp_"))
            .collect();
        names.sort();
        let mut recorded = HashMap::new();
        let mut frames = Vec::new();
        let (mut id_min, mut id_max) = (i64::MAX, i64::MIN);
        for name in &names {
            for v in read(&dir.join(name))? {
                let Some(channel) = v["params"]["channel"].as_str() else {
                    continue;
                };
                let Some(k) = key(channel) else { continue };
                let Some((instrument, time)) = instrument_and_time(&v) else {
                    continue;
                };
                if k.starts_with("book:") {
                    for id in [
                        &v["params"]["data"]["change_id"],
                        &v["params"]["data"]["prev_change_id"],
                    ] {
                        if let Some(id) = id.as_i64() {
                            (id_min, id_max) = (id_min.min(id), id_max.max(id));
                        }
                    }
                }
                if name == SNAPSHOT_FILE {
                    let data = &v["params"]["data"];
                    let mut book = OrderBook::new();
                    apply(&mut book, data);
                    recorded.insert(
                        instrument,
                        Recorded {
                            book,
                            change_id: data["change_id"].as_i64().unwrap_or(0),
                            time_ms: time.unwrap_or(0),
                        },
                    );
                    continue;
                }
                frames.push(Frame {
                    key: k,
                    symbol: instrument,
                    value: v,
                    time_ms: time.unwrap_or(0),
                });
            }
        }
        // Merge by time; the sort is stable, so each instrument's changes keep their order.
        frames.sort_by_key(|f| f.time_ms);
        let span_ms = match (frames.first(), frames.last()) {
            (Some(a), Some(b)) => b.time_ms - a.time_ms + 1,
            _ => 1,
        };
        let id_span = if id_min <= id_max {
            id_max - id_min + 1
        } else {
            1
        };
        let mut instruments: HashSet<String> = frames.iter().map(|f| f.symbol.clone()).collect();
        instruments.extend(recorded.keys().cloned());
        Ok(DeribitMock {
            frames,
            recorded,
            instruments,
            span_ms,
            id_span,
            state: Mutex::new(State::default()),
        })
    }

    fn initial(&self, instrument: &str, k: i64) -> Played {
        let last = k * self.frames.len() as i64 - 1;
        match self.recorded.get(instrument) {
            Some(r) => Played {
                book: r.book.clone(),
                change_id: r.change_id + k * self.id_span,
                time_ms: r.time_ms + k * self.span_ms,
                last,
            },
            None => Played {
                book: OrderBook::new(),
                change_id: k * self.id_span,
                time_ms: 0,
                last,
            },
        }
    }

    /// Brings `instrument`'s book to timeline position `upto` (changes played or skipped).
    fn advance(&self, state: &mut State, instrument: &str, upto: i64) {
        let len = self.frames.len() as i64;
        let mut played = state
            .books
            .remove(instrument)
            .unwrap_or_else(|| self.initial(instrument, 0));
        let mut p = played.last + 1;
        while len > 0 && p <= upto {
            let (k, idx) = (p / len, (p % len) as usize);
            if idx == 0 && p > 0 {
                played = self.initial(instrument, k);
            }
            if let Some(f) = self.frames.get(idx) {
                if f.symbol == instrument && f.key.starts_with("book:") {
                    let data = &f.value["params"]["data"];
                    apply(&mut played.book, data);
                    if let Some(id) = data["change_id"].as_i64() {
                        played.change_id = id + k * self.id_span;
                    }
                    played.time_ms = f.time_ms + k * self.span_ms;
                }
            }
            played.last = p;
            p += 1;
        }
        state.books.insert(instrument.to_string(), played);
    }

    /// The in-band snapshot notification of `instrument`'s book as it stands.
    fn snapshot_frame(&self, instrument: &str, played: Option<&Played>) -> String {
        let empty = OrderBook::new();
        let (book, change_id, time) = match played {
            Some(p) => (&p.book, p.change_id, p.time_ms),
            None => (&empty, 0, 0),
        };
        let (bids, asks) = book.levels(None);
        let side = |levels: &[crate::schema::v2beta1::level2_book::PriceLevel]| -> String {
            let items: Vec<String> = levels
                .iter()
                .map(|l| format!("[\"new\",{},{}]", l.price, l.quantity))
                .collect();
            format!("[{}]", items.join(","))
        };
        format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"subscription\",\"params\":{{\"channel\":\"book.{instrument}.100ms\",\"data\":{{\"type\":\"snapshot\",\"timestamp\":{time},\"instrument_name\":\"{instrument}\",\"change_id\":{change_id},\"bids\":{},\"asks\":{}}}}}}}",
            side(&bids),
            side(&asks)
        )
    }

    fn index_of(&self, frame: &Frame) -> Option<usize> {
        crate::replay::corpus::index_in(&self.frames, frame)
    }
}

fn shift_time(v: &mut Value, by_ms: i64) {
    if let Some(t) = v.get("timestamp").and_then(Value::as_i64) {
        v["timestamp"] = json!(t + by_ms);
    }
}

impl ReplayMock for DeribitMock {
    fn frames(&self) -> &[Frame] {
        &self.frames
    }

    fn ws_paths(&self) -> &'static [&'static str] {
        &["/", "/ws/api/v2"]
    }

    fn on_client(&self, text: &str) -> ClientAnswer {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let id = v.get("id").cloned().unwrap_or(Value::Null);
        let answer_with =
            |result: Value| json!({ "jsonrpc": "2.0", "id": id, "result": result }).to_string();
        let mut answer = ClientAnswer::default();
        let method = v["method"].as_str().unwrap_or_default();
        match method {
            "public/set_heartbeat" => {
                answer.replies.push(answer_with(json!("ok")));
                answer.replies.push(
                    json!({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}})
                        .to_string(),
                );
            }
            "public/test" => answer.replies.push(answer_with(json!({ "version": "1.2.26" }))),
            "public/subscribe" | "public/unsubscribe" => {
                let mut done = Vec::new();
                for channel in v["params"]["channels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    let Some(k) = key(channel) else { continue };
                    let known = k
                        .split_once(':')
                        .is_some_and(|(_, i)| self.instruments.contains(i));
                    if !known {
                        continue;
                    }
                    done.push(channel.to_string());
                    if method == "public/subscribe" {
                        answer.subscribe.push(k);
                    } else {
                        answer.unsubscribe.push(k);
                    }
                }
                answer.replies.push(answer_with(json!(done)));
            }
            _ => answer.replies.push(
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}})
                    .to_string(),
            ),
        }
        answer
    }

    fn on_subscribed(&self, k: &str) -> Vec<String> {
        let Some(instrument) = k.strip_prefix("book:") else {
            return Vec::new();
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let upto = state.seen.unwrap_or(-1);
        self.advance(&mut state, instrument, upto);
        vec![self.snapshot_frame(instrument, state.books.get(instrument))]
    }

    fn on_loop(&self, k: i64, subs: &HashSet<String>) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if k > state.loop_k {
            state.loop_k = k;
            for i in self.recorded.keys() {
                state.books.insert(i.clone(), self.initial(i, k));
            }
        }
        let mut books: Vec<&str> = subs
            .iter()
            .filter_map(|s| s.strip_prefix("book:"))
            .collect();
        books.sort_unstable();
        books
            .into_iter()
            .map(|i| self.snapshot_frame(i, state.books.get(i)))
            .collect()
    }

    fn render(&self, frame: &Frame, k: i64) -> Option<Value> {
        let mut v = frame.value.clone();
        if let Some(ch) = v["params"]["channel"].as_str() {
            if let Some(base) = ch.strip_suffix(".raw") {
                v["params"]["channel"] = json!(format!("{base}.100ms"));
            }
        }
        if k > 0 {
            let data = &mut v["params"]["data"];
            if let Some(items) = data.as_array_mut() {
                for t in items {
                    shift_time(t, k * self.span_ms);
                    if let Some(id) = t["trade_id"].as_str().and_then(|s| s.parse::<i64>().ok()) {
                        t["trade_id"] = json!((id + k * TRADE_ID_SHIFT).to_string());
                    }
                }
            } else {
                shift_time(data, k * self.span_ms);
                for f in ["change_id", "prev_change_id"] {
                    if let Some(id) = data.get(f).and_then(Value::as_i64) {
                        data[f] = json!(id + k * self.id_span);
                    }
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
        if frame.key.starts_with("book:") {
            self.advance(&mut state, &frame.symbol, pos);
        }
    }

    /// `public/get_instruments`, synthesized from the recorded instruments.
    fn rest(&self, path: &str, _query: &HashMap<String, String>) -> Option<(u16, String)> {
        if path != "/api/v2/public/get_instruments" {
            return None;
        }
        let mut names: Vec<&String> = self
            .instruments
            .iter()
            .filter(|i| symbols::normalized(i).is_some())
            .collect();
        names.sort();
        let result: Vec<Value> = names
            .into_iter()
            .map(|n| json!({ "instrument_name": n, "is_active": true }))
            .collect();
        Some((
            200,
            json!({ "jsonrpc": "2.0", "result": result }).to_string(),
        ))
    }
}

/// The Deribit replay mock serving the recordings in `fixtures` (the registry's constructor).
pub fn mock(fixtures: &Path) -> Result<Box<dyn ReplayMock>, CorpusError> {
    Ok(Box::new(DeribitMock::load(fixtures)?))
}
