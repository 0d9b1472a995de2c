//! Bybit's replay mock: serves the recorded v5 spot connection of `tests/fixtures/bybit`
//! (`bybit_v5_spot_ws.jsonl`: every frame in arrival order) on `/v5/public/{category}`
//! (only spot was recorded; the other categories' paths accept subscriptions and play
//! nothing). A subscribe request is answered `{"success":true,"ret_msg":"subscribe",…}` with
//! its `req_id`; a book subscription is followed by an in-band snapshot of the book as played
//! so far (the recorded snapshot plus every recorded delta of that symbol up to the last frame
//! played), carrying the last played `u`, so the deltas that follow continue it. A book
//! subscription of a depth other than the recorded one (`orderbook.200`) is refused the way
//! Bybit refuses an unknown topic (`success: false`). `{"op":"ping"}` is answered with a pong.
//!
//! Loops: when a loop starts, every subscribed book is sent the recorded snapshot again (with
//! its recorded, lower `u`): exactly Bybit's resent snapshot, which replaces the book. Later
//! loops shift every time by the recording's span; ids are as recorded.
//!
//! Recorded book snapshots are the initial books, not frames. Frames are paced by their `ts`
//! (kept non-decreasing in arrival order). REST: `/v5/market/instruments-info`: the recorded
//! spot answer for `category=spot`, an empty list for the other categories.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use serde_json::{json, Value};

use crate::book::{OrderBook, Side};
use crate::replay::corpus::{read, CorpusError, Frame};
use crate::replay::{ClientAnswer, ReplayMock};

/// The recorded WebSocket frames.
pub const WS_FILE: &str = "bybit_v5_spot_ws.jsonl";

/// The recorded spot instrument list.
pub const INSTRUMENTS_FILE: &str = "bybit_v5_spot_instruments_rest.jsonl";

/// A recorded snapshot: the message as sent.
#[derive(Debug, Clone)]
struct Recorded {
    value: Value,
    depth: String,
}

#[derive(Debug, Default)]
struct State {
    loop_k: i64,
    /// Last frame index played in the current loop.
    seen: Option<usize>,
}

/// The Bybit replay mock.
#[derive(Debug)]
pub struct BybitMock {
    frames: Vec<Frame>,
    /// Venue symbol → its recorded book snapshot.
    recorded: HashMap<String, Recorded>,
    instruments: Option<String>,
    span_ms: i64,
    state: Mutex<State>,
}

fn shift(v: &mut Value, key: &str, by: i64) {
    if let Some(t) = v.get(key).and_then(Value::as_i64) {
        v[key] = json!(t + by);
    }
}

fn levels_json(levels: &[crate::schema::v2beta1::level2_book::PriceLevel]) -> Vec<Value> {
    levels
        .iter()
        .map(|l| json!([l.price, l.quantity]))
        .collect()
}

fn apply(book: &mut OrderBook, data: &Value) {
    for (k, side) in [("b", Side::Bid), ("a", Side::Ask)] {
        for l in data[k].as_array().into_iter().flatten() {
            if let (Some(p), Some(q)) = (l[0].as_str(), l[1].as_str()) {
                let _ = book.apply(side, p, q);
            }
        }
    }
}

impl BybitMock {
    /// Loads the recording in `dir`.
    pub fn load(dir: &Path) -> Result<BybitMock, CorpusError> {
        let values = read(&dir.join(WS_FILE))?;
        let mut frames = Vec::new();
        let mut recorded = HashMap::new();
        let mut time = 0i64;
        for v in values {
            let Some(topic) = v["topic"].as_str().map(str::to_string) else {
                continue; // subscription answers
            };
            let symbol = topic.rsplit('.').next().unwrap_or_default().to_string();
            if topic.starts_with("orderbook.") && v["type"] == "snapshot" {
                let depth = topic.split('.').nth(1).unwrap_or_default().to_string();
                if depth != "1" {
                    recorded.insert(symbol, Recorded { value: v, depth });
                    continue;
                }
            }
            time = time.max(v["ts"].as_i64().unwrap_or(time));
            frames.push(Frame {
                key: topic,
                symbol,
                value: v,
                time_ms: time,
            });
        }
        let span_ms = match (frames.first(), frames.last()) {
            (Some(a), Some(b)) => b.time_ms - a.time_ms + 1,
            _ => 1,
        };
        let instruments = std::fs::read_to_string(dir.join(INSTRUMENTS_FILE))
            .ok()
            .and_then(|t| t.lines().find(|l| !l.trim().is_empty()).map(str::to_string));
        Ok(BybitMock {
            frames,
            recorded,
            instruments,
            span_ms,
            state: Mutex::new(State::default()),
        })
    }

    /// The recorded book depth of `venue_symbol`.
    pub fn depth(&self, venue_symbol: &str) -> Option<&str> {
        self.recorded.get(venue_symbol).map(|r| r.depth.as_str())
    }

    /// The in-band snapshot of `symbol`'s book after frames `..=upto` of a loop (the recorded
    /// snapshot when nothing was played), shifted to loop `k`.
    fn snapshot_frame(&self, symbol: &str, upto: Option<usize>, k: i64) -> Option<String> {
        let r = self.recorded.get(symbol)?;
        let mut v = r.value.clone();
        if let Some(upto) = upto {
            let mut book = OrderBook::new();
            apply(&mut book, &v["data"]);
            let topic = format!("orderbook.{}.{symbol}", r.depth);
            for f in self.frames.iter().take(upto + 1) {
                if f.key == topic && f.value["type"] == "delta" {
                    apply(&mut book, &f.value["data"]);
                    for key in ["u", "seq"] {
                        v["data"][key] = f.value["data"][key].clone();
                    }
                    v["ts"] = f.value["ts"].clone();
                    v["cts"] = f.value["cts"].clone();
                }
            }
            let (bids, asks) = book.levels(None);
            v["data"]["b"] = json!(levels_json(&bids));
            v["data"]["a"] = json!(levels_json(&asks));
        }
        if k > 0 {
            let by = k * self.span_ms;
            shift(&mut v, "ts", by);
            shift(&mut v, "cts", by);
        }
        Some(v.to_string())
    }

    /// Index of `frame` in the recording, when it is one of its frames.
    fn index_of(&self, frame: &Frame) -> Option<usize> {
        crate::replay::corpus::index_in(&self.frames, frame)
    }

    fn book_symbol<'a>(&self, key: &'a str) -> Option<&'a str> {
        let rest = key.strip_prefix("orderbook.")?;
        let (depth, symbol) = rest.split_once('.')?;
        (self.recorded.get(symbol)?.depth == depth).then_some(symbol)
    }
}

impl ReplayMock for BybitMock {
    fn frames(&self) -> &[Frame] {
        &self.frames
    }

    fn ws_paths(&self) -> &'static [&'static str] {
        &[
            "/v5/public/spot",
            "/v5/public/linear",
            "/v5/public/inverse",
            "/v5/public/option",
        ]
    }

    /// Only spot was recorded: the other categories' paths acknowledge and play nothing (a
    /// linear `BTCUSDT` is another instrument than the spot `BTCUSDT` recorded).
    fn serves(&self, path: &str, key: &str) -> bool {
        let _ = key;
        path.ends_with("/spot")
    }

    fn on_client(&self, text: &str) -> ClientAnswer {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let req_id = v["req_id"].as_str().unwrap_or_default().to_string();
        let op = v["op"].as_str().unwrap_or_default();
        let answer_of = |success: bool, msg: &str, op: &str| {
            json!({"success": success, "ret_msg": msg, "conn_id": "replay", "req_id": req_id, "op": op})
                .to_string()
        };
        let mut answer = ClientAnswer::default();
        match op {
            "ping" => answer.replies.push(answer_of(true, "pong", "ping")),
            "subscribe" | "unsubscribe" => {
                let args: Vec<String> = v["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
                // A book of a depth that was not recorded: refused like an unknown topic.
                let bad: Vec<&String> = args
                    .iter()
                    .filter(|t| {
                        t.strip_prefix("orderbook.")
                            .and_then(|r| r.split_once('.'))
                            .is_some_and(|(d, s)| {
                                d != "1" && self.recorded.get(s).is_some_and(|r| r.depth != d)
                            })
                    })
                    .collect();
                if op == "subscribe" && !bad.is_empty() {
                    let names: Vec<&str> = bad.iter().map(|s| s.as_str()).collect();
                    answer.replies.push(answer_of(
                        false,
                        &format!("Invalid symbol :[{}]", names.join(",")),
                        op,
                    ));
                    return answer;
                }
                answer.replies.push(answer_of(true, op, op));
                if op == "subscribe" {
                    answer.subscribe = args;
                } else {
                    answer.unsubscribe = args;
                }
            }
            _ => answer
                .replies
                .push(answer_of(false, "error:request not supported", op)),
        }
        answer
    }

    fn on_subscribed(&self, key: &str) -> Vec<String> {
        let Some(symbol) = self.book_symbol(key) else {
            return Vec::new();
        };
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.snapshot_frame(symbol, state.seen, state.loop_k)
            .into_iter()
            .collect()
    }

    fn on_loop(&self, k: i64, subs: &HashSet<String>) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if k > state.loop_k {
            state.loop_k = k;
            state.seen = None;
        }
        let mut books: Vec<&str> = subs.iter().filter_map(|s| self.book_symbol(s)).collect();
        books.sort_unstable();
        books
            .into_iter()
            .filter_map(|s| self.snapshot_frame(s, None, k))
            .collect()
    }

    fn render(&self, frame: &Frame, k: i64) -> Option<Value> {
        let mut v = frame.value.clone();
        if k > 0 {
            let by = k * self.span_ms;
            shift(&mut v, "ts", by);
            shift(&mut v, "cts", by);
            if let Some(items) = v.get_mut("data").and_then(Value::as_array_mut) {
                for item in items {
                    for key in ["T", "start", "end", "timestamp"] {
                        shift(item, key, by);
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

    fn played(&self, frame: &Frame, _value: &Value, _k: i64) {
        let Some(idx) = self.index_of(frame) else {
            return;
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.seen = Some(state.seen.map_or(idx, |s| s.max(idx)));
    }

    fn rest(&self, path: &str, query: &HashMap<String, String>) -> Option<(u16, String)> {
        if path != super::INSTRUMENTS_PATH {
            return None;
        }
        let category = query.get("category").map(String::as_str).unwrap_or("");
        match category {
            "spot" => self.instruments.clone().map(|b| (200, b)),
            "linear" | "inverse" | "option" => Some((
                200,
                json!({"retCode": 0, "retMsg": "OK", "result": {"category": category, "list": [], "nextPageCursor": ""}, "retExtInfo": {}, "time": 0})
                    .to_string(),
            )),
            _ => Some((
                200,
                json!({"retCode": 10001, "retMsg": "params error: category is invalid", "result": {}, "retExtInfo": {}, "time": 0})
                    .to_string(),
            )),
        }
    }
}

/// The Bybit replay mock serving the recording in `fixtures` (the registry's constructor).
pub fn mock(fixtures: &Path) -> Result<Box<dyn ReplayMock>, CorpusError> {
    Ok(Box::new(BybitMock::load(fixtures)?))
}
