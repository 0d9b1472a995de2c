//! OKX's replay mock: serves the recorded 2022 `books`, `trades` and `tickers` frames of
//! `tests/fixtures/okx` in both book modes, chosen by the WebSocket path like the client's
//! [`super::BookMode::from_url`]:
//!
//! - **In-band mode** on `/inband/ws/v5/public` and `/inband/ws/v5/business`, exactly like the
//!   venue did then: a `books` subscription is followed by a snapshot of the book as played
//!   so far, with its OKX checksum; every update as recorded (with its checksum); a new loop
//!   sends every subscribed book the recorded snapshot again.
//! - **REST mode** on `/ws/v5/public` and `/ws/v5/business`, as OKX documents it since 2026:
//!   no snapshot after subscribing; every recorded update is sent with `checksum` 0 and
//!   `prevSeqId`/`seqId`. **The numbering is the mock's** (the recordings predate the ids;
//!   like Coinbase's `sequence_num`): per instrument, the n-th (from 1) recorded update of
//!   that instrument in a loop (N of them per loop) has `seqId` =
//!   [`SEQ_BASE`] + loop × (N + 1) + n and `prevSeqId` = `seqId` − 1. A new loop sends each subscribed book one update
//!   (`seqId` = [`SEQ_BASE`] + loop × (N + 1)) that takes it back to the recorded snapshot:
//!   the levels it no longer has at size `0`, the recorded ones at their size.
//!   `GET /api/v5/market/books?instId=…&sz=…` answers the book as played so far (the top `sz`
//!   levels a side, default 1, at most 400) in OKX's REST shape (`code`, `msg`, `data` of one
//!   `{asks, bids, ts, seqId}`, levels `[px, sz, "0", orders]`) with the `seqId` of the last
//!   update applied to it; an unknown `instId` is answered code `51001`.
//!
//! Both: each arg of a `subscribe` operation is answered `{"event":"subscribe","arg":…}`; an
//! `instId` the recording does not know is refused like OKX (`60018`). The mock applies every
//! recorded update to its own book (played or skipped), so a client subscribing mid-stream
//! gets a snapshot (in band or over REST) the following updates continue. `trades-all`
//! (business paths) is served from the recorded `trades` frames relabelled `trades-all`: the
//! 2022 `trades` frames carry one trade each (OKX's aggregation came later), which is what
//! `trades-all` sends; `trades` stays served on the public paths as recorded. The text `ping`
//! is answered `pong`. Later loops shift `ts` by the recording's span and trade ids by
//! `loop × 10⁹`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use serde_json::{json, Value};

use super::book::okx_crc32;
use crate::book::{OrderBook, Side};
use crate::replay::corpus::{read, CorpusError, Frame};
use crate::replay::{ClientAnswer, ReplayMock};
use crate::schema::v2beta1::level2_book::PriceLevel;

/// The recorded snapshots (initial books).
pub const SNAPSHOT_FILE: &str = "okx_books_snapshot.jsonl";

/// The recorded frames played, in order.
pub const PLAYED_FILES: [&str; 3] = [
    "okx_books_update.jsonl",
    "okx_trades.jsonl",
    "okx_tickers.jsonl",
];

/// The first `seqId` of every book in REST mode (the recorded snapshot's, loop 0).
pub const SEQ_BASE: i64 = 1_000_000;

/// The path prefix of the in-band book mode.
pub const INBAND_PREFIX: &str = "/inband";

/// Subscription key prefix of a `books` stream in REST mode (in-band: `books:`).
const REST_BOOKS: &str = "books@rest:";

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

fn levels_json(v: &[PriceLevel]) -> Vec<Value> {
    v.iter()
        .map(|l| json!([l.price, l.quantity, "0", "1"]))
        .collect()
}

/// The levels of `to` that `from` lacks or holds at another size, and those `from` has and
/// `to` lacks at size `0`: the update that turns `from` into `to`.
fn diff_levels(from: &[PriceLevel], to: &[PriceLevel]) -> Vec<Value> {
    let had: HashMap<&str, &str> = from
        .iter()
        .map(|l| (l.price.as_str(), l.quantity.as_str()))
        .collect();
    let has: HashSet<&str> = to.iter().map(|l| l.price.as_str()).collect();
    let mut out: Vec<Value> = from
        .iter()
        .filter(|l| !has.contains(l.price.as_str()))
        .map(|l| json!([l.price, "0", "0", "0"]))
        .collect();
    out.extend(
        to.iter()
            .filter(|l| had.get(l.price.as_str()) != Some(&l.quantity.as_str()))
            .map(|l| json!([l.price, l.quantity, "0", "1"])),
    );
    out
}

/// Whether a subscription key is a `books` stream (either mode).
fn is_book(k: &str) -> bool {
    k.starts_with("books:") || k.starts_with(REST_BOOKS)
}

#[derive(Debug, Clone)]
struct Played {
    book: OrderBook,
    ts: i64,
    /// Timeline position (loop × frames + index) applied up to (-1 before the first).
    last: i64,
    /// REST mode's `seqId` of the last update applied.
    seq: i64,
}

#[derive(Debug, Default)]
struct State {
    books: HashMap<String, Played>,
    /// Per instrument: the furthest timeline position of its book stream played (by any
    /// connection). Only book frames count: a connection without books (trades on the
    /// business path) replays at its own pace and says nothing about where the books are.
    seen: HashMap<String, i64>,
}

/// The replay mock of OKX (both book modes, by path).
#[derive(Debug)]
pub struct OkxMock {
    frames: Vec<Frame>,
    /// Per frame: the n-th (from 1) recorded update of its instrument in a loop (books only).
    ordinal: Vec<i64>,
    /// Recorded updates per instrument in one loop.
    per_loop: HashMap<String, i64>,
    recorded: HashMap<String, (OrderBook, i64)>,
    /// Each book at the end of a loop (every recorded update applied to the snapshot).
    ends: HashMap<String, OrderBook>,
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
        // Merge by time, keeping each file's order; a book update is followed by its REST-mode
        // twin, a trade by its `trades-all` twin.
        let mut frames = Vec::new();
        let mut ordinal = Vec::new();
        let mut per_loop: HashMap<String, i64> = HashMap::new();
        let mut ends: HashMap<String, OrderBook> = recorded
            .iter()
            .map(|(i, (b, _))| (i.clone(), b.clone()))
            .collect();
        loop {
            let next = queues
                .iter()
                .enumerate()
                .filter_map(|(i, q)| q.front().map(|f| (f.time_ms, i)))
                .min();
            let Some((_, i)) = next else { break };
            let Some(f) = queues.get_mut(i).and_then(VecDeque::pop_front) else {
                break;
            };
            if f.key.starts_with("books:") {
                let n = per_loop.entry(f.symbol.clone()).or_default();
                *n += 1;
                apply(
                    ends.entry(f.symbol.clone())
                        .or_insert_with(OrderBook::ordered),
                    &f.value,
                );
                let twin = Frame {
                    key: format!("{REST_BOOKS}{}", f.symbol),
                    ..f.clone()
                };
                frames.push(f);
                ordinal.push(*n);
                frames.push(twin);
                ordinal.push(*n);
            } else if f.key.starts_with("trades:") {
                let mut value = f.value.clone();
                value["arg"]["channel"] = Value::String("trades-all".into());
                let twin = Frame {
                    key: key("trades-all", &f.symbol),
                    value,
                    ..f.clone()
                };
                frames.push(f);
                ordinal.push(0);
                frames.push(twin);
                ordinal.push(0);
            } else {
                frames.push(f);
                ordinal.push(0);
            }
        }
        let span_ms = match (frames.first(), frames.last()) {
            (Some(a), Some(b)) => b.time_ms - a.time_ms + 1,
            _ => 1,
        };
        Ok(OkxMock {
            frames,
            ordinal,
            per_loop,
            recorded,
            ends,
            known,
            span_ms,
            state: Mutex::new(State::default()),
        })
    }

    /// REST mode's `seqId` of the `n`-th update (0: the loop's start) of `inst` in loop `k`.
    fn seq(&self, inst: &str, k: i64, n: i64) -> i64 {
        let per = self.per_loop.get(inst).copied().unwrap_or(0);
        SEQ_BASE + k * (per + 1) + n
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
            seq: self.seq(inst, k, 0),
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
                    played.seq = self.seq(inst, k, self.ordinal.get(idx).copied().unwrap_or(0));
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
        json!({
            "arg": { "channel": "books", "instId": inst },
            "action": "snapshot",
            "data": [{
                "asks": levels_json(&asks),
                "bids": levels_json(&bids),
                "ts": ts.to_string(),
                "checksum": okx_crc32(book) as i32,
            }]
        })
        .to_string()
    }

    /// REST mode, loop `k` (> 0) starting: the update taking `inst`'s book from the end of a
    /// loop back to the recorded snapshot.
    fn reset_frame(&self, inst: &str, k: i64) -> String {
        let empty = OrderBook::ordered();
        let end = self.ends.get(inst).unwrap_or(&empty);
        let start = self.recorded.get(inst).map_or(&empty, |(b, _)| b);
        let ts = self.recorded.get(inst).map_or(0, |(_, t)| *t) + k * self.span_ms;
        let ((end_bids, end_asks), (bids, asks)) = (end.levels(None), start.levels(None));
        let seq = self.seq(inst, k, 0);
        json!({
            "arg": { "channel": "books", "instId": inst },
            "action": "update",
            "data": [{
                "asks": diff_levels(&end_asks, &asks),
                "bids": diff_levels(&end_bids, &bids),
                "ts": ts.to_string(),
                "checksum": 0,
                "prevSeqId": seq - 1,
                "seqId": seq,
            }]
        })
        .to_string()
    }

    /// `GET /api/v5/market/books`: the book as played so far, its top `sz` levels a side.
    fn rest_book(&self, query: &HashMap<String, String>) -> (u16, String) {
        let inst = query.get("instId").map(String::as_str).unwrap_or_default();
        if !self.recorded.contains_key(inst) {
            let msg = "Instrument ID does not exist.";
            return (200, json!({"code":"51001","msg":msg,"data":[]}).to_string());
        }
        let sz = query
            .get("sz")
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(1)
            .clamp(1, 400);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let upto = state.seen.get(inst).copied().unwrap_or(-1);
        self.advance(&mut state, inst, upto);
        let Some(p) = state.books.get(inst) else {
            return (
                500,
                json!({"code":"50000","msg":"no book","data":[]}).to_string(),
            );
        };
        let (bids, asks) = p.book.levels(Some(sz));
        let body = json!({
            "code": "0",
            "msg": "",
            "data": [{
                "asks": levels_json(&asks),
                "bids": levels_json(&bids),
                "ts": p.ts.to_string(),
                "seqId": p.seq,
            }]
        });
        (200, body.to_string())
    }

    fn index_of(&self, frame: &Frame) -> Option<usize> {
        crate::replay::corpus::index_in(&self.frames, frame)
    }
}

fn shift(v: &mut Value, k: i64, span_ms: i64) {
    let trades = matches!(v["arg"]["channel"].as_str(), Some("trades" | "trades-all"));
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
        &[
            "/inband/ws/v5/public",
            "/inband/ws/v5/business",
            "/ws/v5/public",
            "/ws/v5/business",
        ]
    }

    /// `books` in the path's mode (in band under [`INBAND_PREFIX`], REST otherwise);
    /// `trades-all` and candles on the business paths, the rest on the public ones.
    fn serves(&self, path: &str, key: &str) -> bool {
        let inband = path.starts_with(INBAND_PREFIX);
        let business = path.ends_with("/business");
        if key.starts_with("books:") {
            return inband && !business;
        }
        if key.starts_with(REST_BOOKS) {
            return !inband && !business;
        }
        let business_key = key.starts_with("trades-all:") || key.starts_with("candle");
        business_key == business
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
            // A `books` arg names both modes' streams: the path serves one of them.
            let mut keys = vec![key(channel, inst)];
            if channel == "books" {
                keys.push(format!("{REST_BOOKS}{inst}"));
            }
            if op == "subscribe" {
                answer.subscribe.extend(keys);
            } else {
                answer.unsubscribe.extend(keys);
            }
        }
        answer
    }

    fn on_subscribed(&self, k: &str) -> Vec<String> {
        // REST mode (`books@rest:`): no snapshot; the client fetches it.
        let Some(inst) = k.strip_prefix("books:") else {
            return Vec::new();
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let upto = state.seen.get(inst).copied().unwrap_or(-1);
        self.advance(&mut state, inst, upto);
        vec![self.snapshot_frame(inst, state.books.get(inst))]
    }

    /// A connection reaching loop `k`: each book it subscribed starts the loop from the
    /// recorded snapshot (unless another connection already took that book further).
    fn on_loop(&self, k: i64, subs: &HashSet<String>) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let start = k * self.frames.len() as i64;
        let mut books: Vec<&str> = subs
            .iter()
            .map(String::as_str)
            .filter(|s| is_book(s))
            .collect();
        books.sort_unstable();
        let mut out = Vec::new();
        for s in books {
            let (inst, rest) = match s.strip_prefix("books:") {
                Some(inst) => (inst, false),
                None => (s.strip_prefix(REST_BOOKS).unwrap_or(s), true),
            };
            if state.books.get(inst).is_none_or(|p| p.last < start) {
                state.books.insert(inst.to_string(), self.initial(inst, k));
            }
            out.push(if rest {
                self.reset_frame(inst, k)
            } else {
                self.snapshot_frame(inst, state.books.get(inst))
            });
        }
        out
    }

    fn render(&self, frame: &Frame, k: i64) -> Option<Value> {
        let mut v = frame.value.clone();
        if k > 0 {
            shift(&mut v, k, self.span_ms);
        }
        if frame.key.starts_with(REST_BOOKS) {
            let n = self
                .index_of(frame)
                .and_then(|i| self.ordinal.get(i).copied())?;
            let seq = self.seq(&frame.symbol, k, n);
            for d in v["data"].as_array_mut().into_iter().flatten() {
                d["checksum"] = json!(0);
                d["prevSeqId"] = json!(seq - 1);
                d["seqId"] = json!(seq);
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
        if !is_book(&frame.key) {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let pos = k * self.frames.len() as i64 + idx as i64;
        let seen = state.seen.entry(frame.symbol.clone()).or_insert(pos);
        *seen = (*seen).max(pos);
        self.advance(&mut state, &frame.symbol, pos);
    }

    fn rest(&self, path: &str, query: &HashMap<String, String>) -> Option<(u16, String)> {
        (path == "/api/v5/market/books").then(|| self.rest_book(query))
    }
}

/// The OKX replay mock serving the recordings in `fixtures` (the registry's constructor).
pub fn mock(fixtures: &Path) -> Result<Box<dyn ReplayMock>, CorpusError> {
    Ok(Box::new(OkxMock::load(fixtures)?))
}
