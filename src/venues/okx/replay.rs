//! OKX's replay mock: serves the recorded 2022 `books` (in-band snapshot + CRC32 mode),
//! `trades` and `tickers` frames of `tests/fixtures/okx` on `/inband/ws/v5/public` (and
//! `/inband/ws/v5/business`) exactly like the venue did then. Each arg of a `subscribe`
//! operation is answered `{"event":"subscribe","arg":…}`; an `instId` the recording does not
//! know is refused like OKX (`60018`). A `books` subscription is followed by a snapshot of the
//! book as played so far, with its OKX checksum; the mock applies every recorded update to its
//! own book (played or skipped), so a client subscribing mid-stream gets a snapshot the
//! following recorded checksums agree with. The text `ping` is answered `pong`. A new loop
//! sends every subscribed book the recorded snapshot again; later loops shift `ts` by the
//! recording's span and trade ids by `loop × 10⁹`. No REST is served (in-band mode needs none).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use serde_json::{json, Value};

use super::book::okx_crc32;
use crate::book::{OrderBook, Side};
use crate::replay::corpus::{read, CorpusError, Frame};
use crate::replay::{ClientAnswer, ReplayMock};

/// The recorded snapshots (initial books).
pub const SNAPSHOT_FILE: &str = "okx_books_snapshot.jsonl";

/// The recorded frames played, in order.
pub const PLAYED_FILES: [&str; 3] = [
    "okx_books_update.jsonl",
    "okx_trades.jsonl",
    "okx_tickers.jsonl",
];

/// Subscription key of `channel` on `inst`.
pub fn key(channel: &str, inst: &str) -> String {
    format!("{channel}:{inst}")
}

fn latest_ts(v: &Value) -> Option<i64> {
    v["data"]
        .as_array()?
        .iter()
        .filter_map(|d| d["ts"].as_str()?.parse::<i64>().ok())
        .max()
}

fn apply(book: &mut OrderBook, v: &Value) {
    for d in v["data"].as_array().into_iter().flatten() {
        for (side, k) in [(Side::Bid, "bids"), (Side::Ask, "asks")] {
            for l in d[k].as_array().into_iter().flatten() {
                if let (Some(p), Some(q)) = (l[0].as_str(), l[1].as_str()) {
                    let _ = book.apply(side, p, q);
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Played {
    book: OrderBook,
    ts: i64,
    /// Timeline position (loop × frames + index) applied up to (-1 before the first).
    last: i64,
}

#[derive(Debug, Default)]
struct State {
    books: HashMap<String, Played>,
    loop_k: i64,
    seen: Option<i64>,
}

/// The replay mock of OKX (in-band book mode).
#[derive(Debug)]
pub struct OkxMock {
    frames: Vec<Frame>,
    recorded: HashMap<String, (OrderBook, i64)>,
    known: HashSet<String>,
    span_ms: i64,
    state: Mutex<State>,
}

impl OkxMock {
    /// Loads [`SNAPSHOT_FILE`] and [`PLAYED_FILES`] from `dir`.
    pub fn load(dir: &Path) -> Result<OkxMock, CorpusError> {
        let mut recorded = HashMap::new();
        let mut known = HashSet::new();
        for v in read(&dir.join(SNAPSHOT_FILE))? {
            let Some(inst) = v["arg"]["instId"].as_str() else {
                continue;
            };
            let mut book = OrderBook::ordered();
            apply(&mut book, &v);
            known.insert(inst.to_string());
            recorded.insert(inst.to_string(), (book, latest_ts(&v).unwrap_or(0)));
        }
        let mut queues: Vec<VecDeque<Frame>> = Vec::new();
        for name in PLAYED_FILES {
            let mut q = VecDeque::new();
            for v in read(&dir.join(name))? {
                let (Some(channel), Some(inst)) =
                    (v["arg"]["channel"].as_str(), v["arg"]["instId"].as_str())
                else {
                    continue;
                };
                if v.get("data").is_none() {
                    continue;
                }
                known.insert(inst.to_string());
                q.push_back(Frame {
                    key: key(channel, inst),
                    symbol: inst.to_string(),
                    time_ms: latest_ts(&v).unwrap_or(0),
                    value: v,
                });
            }
            queues.push(q);
        }
        // Merge by time, keeping each file's order.
        let mut frames = Vec::new();
        loop {
            let next = queues
                .iter()
                .enumerate()
                .filter_map(|(i, q)| q.front().map(|f| (f.time_ms, i)))
                .min();
            let Some((_, i)) = next else { break };
            if let Some(f) = queues.get_mut(i).and_then(VecDeque::pop_front) {
                frames.push(f);
            }
        }
        let span_ms = match (frames.first(), frames.last()) {
            (Some(a), Some(b)) => b.time_ms - a.time_ms + 1,
            _ => 1,
        };
        Ok(OkxMock {
            frames,
            recorded,
            known,
            span_ms,
            state: Mutex::new(State::default()),
        })
    }

    fn initial(&self, inst: &str, k: i64) -> Played {
        let (book, ts) = self
            .recorded
            .get(inst)
            .cloned()
            .unwrap_or_else(|| (OrderBook::ordered(), 0));
        Played {
            book,
            ts: ts + k * self.span_ms,
            last: k * self.frames.len() as i64 - 1,
        }
    }

    /// Brings `inst`'s book to timeline position `upto`.
    fn advance(&self, state: &mut State, inst: &str, upto: i64) {
        let len = self.frames.len() as i64;
        let mut played = state
            .books
            .remove(inst)
            .unwrap_or_else(|| self.initial(inst, 0));
        let mut p = played.last + 1;
        while len > 0 && p <= upto {
            let (k, idx) = (p / len, (p % len) as usize);
            if idx == 0 && p > 0 {
                played = self.initial(inst, k);
            }
            if let Some(f) = self.frames.get(idx) {
                if f.symbol == inst && f.key.starts_with("books:") {
                    apply(&mut played.book, &f.value);
                    played.ts = played.ts.max(f.time_ms + k * self.span_ms);
                }
            }
            played.last = p;
            p += 1;
        }
        state.books.insert(inst.to_string(), played);
    }

    fn snapshot_frame(&self, inst: &str, played: Option<&Played>) -> String {
        let empty = OrderBook::ordered();
        let (book, ts) = played.map_or((&empty, 0), |p| (&p.book, p.ts));
        let (bids, asks) = book.levels(None);
        let side = |v: &[crate::schema::v2beta1::level2_book::PriceLevel]| -> Vec<Value> {
            v.iter()
                .map(|l| json!([l.price, l.quantity, "0", "1"]))
                .collect()
        };
        json!({
            "arg": { "channel": "books", "instId": inst },
            "action": "snapshot",
            "data": [{
                "asks": side(&asks),
                "bids": side(&bids),
                "ts": ts.to_string(),
                "checksum": okx_crc32(book) as i32,
            }]
        })
        .to_string()
    }

    fn index_of(&self, frame: &Frame) -> Option<usize> {
        crate::replay::corpus::index_in(&self.frames, frame)
    }
}

fn shift(v: &mut Value, k: i64, span_ms: i64) {
    let trades = v["arg"]["channel"].as_str() == Some("trades");
    for d in v["data"].as_array_mut().into_iter().flatten() {
        if let Some(ts) = d["ts"].as_str().and_then(|t| t.parse::<i64>().ok()) {
            d["ts"] = Value::String((ts + k * span_ms).to_string());
        }
        if trades {
            if let Some(id) = d["tradeId"].as_str().and_then(|t| t.parse::<i64>().ok()) {
                d["tradeId"] = Value::String((id + k * 1_000_000_000).to_string());
            }
        }
    }
}

impl ReplayMock for OkxMock {
    fn frames(&self) -> &[Frame] {
        &self.frames
    }

    fn ws_paths(&self) -> &'static [&'static str] {
        &["/inband/ws/v5/public", "/inband/ws/v5/business"]
    }

    fn on_client(&self, text: &str) -> ClientAnswer {
        let mut answer = ClientAnswer::default();
        if text == "ping" {
            answer.replies.push("pong".into());
            return answer;
        }
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let op = v["op"].as_str().unwrap_or_default();
        if op != "subscribe" && op != "unsubscribe" {
            answer.replies.push(
                json!({"event":"error","code":"60012","msg":format!("Invalid request: {text}"),"connId":"replay"})
                    .to_string(),
            );
            return answer;
        }
        for arg in v["args"].as_array().into_iter().flatten() {
            let channel = arg["channel"].as_str().unwrap_or_default();
            let inst = arg["instId"]
                .as_str()
                .or(arg["instType"].as_str())
                .unwrap_or_default();
            if arg["instId"].is_string() && !self.known.contains(inst) {
                answer.replies.push(
                    json!({"event":"error","code":"60018","msg":format!("Wrong URL or channel:{channel},instId:{inst} doesn't exist."),"connId":"replay"})
                        .to_string(),
                );
                continue;
            }
            answer
                .replies
                .push(json!({"event": op, "arg": arg, "connId": "replay"}).to_string());
            if op == "subscribe" {
                answer.subscribe.push(key(channel, inst));
            } else {
                answer.unsubscribe.push(key(channel, inst));
            }
        }
        answer
    }

    fn on_subscribed(&self, k: &str) -> Vec<String> {
        let Some(inst) = k.strip_prefix("books:") else {
            return Vec::new();
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let upto = state.seen.unwrap_or(-1);
        self.advance(&mut state, inst, upto);
        vec![self.snapshot_frame(inst, state.books.get(inst))]
    }

    fn on_loop(&self, k: i64, subs: &HashSet<String>) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if k > state.loop_k {
            state.loop_k = k;
            for inst in self.recorded.keys() {
                state.books.insert(inst.clone(), self.initial(inst, k));
            }
        }
        let mut insts: Vec<&str> = subs
            .iter()
            .filter_map(|s| s.strip_prefix("books:"))
            .collect();
        insts.sort_unstable();
        insts
            .into_iter()
            .map(|i| self.snapshot_frame(i, state.books.get(i)))
            .collect()
    }

    fn render(&self, frame: &Frame, k: i64) -> Option<Value> {
        let mut v = frame.value.clone();
        if k > 0 {
            shift(&mut v, k, self.span_ms);
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
        if frame.key.starts_with("books:") {
            self.advance(&mut state, &frame.symbol, pos);
        }
    }

    fn rest(&self, _path: &str, _query: &HashMap<String, String>) -> Option<(u16, String)> {
        None
    }
}

/// The OKX replay mock serving the recordings in `fixtures` (the registry's constructor).
pub fn mock(fixtures: &Path) -> Result<Box<dyn ReplayMock>, CorpusError> {
    Ok(Box::new(OkxMock::load(fixtures)?))
}
