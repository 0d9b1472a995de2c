//! Kraken's replay mock: serves the recorded WebSocket v1 frames of `tests/fixtures/kraken`
//! on `/` exactly like the venue. A subscribe is answered per pair with a
//! `subscriptionStatus`; a book subscription is followed by an in-band snapshot of the book
//! as played so far (truncated to the depth, levels `[price, volume, timestamp]`), after which
//! update frames play. The mock applies every update it plays to its own book (then truncates
//! it, exactly like a client), so that a client resubscribing or reconnecting mid-stream gets
//! a snapshot its following checksums agree with. `{"event":"ping"}` is answered
//! `{"event":"pong"}`. When a loop starts, every subscribed book is sent the recorded snapshot
//! again (the mock's book is reset to it), and the times of later loops are shifted by the
//! recording's span. REST: `AssetPairs`, synthesized from the recorded pairs.
//!
//! Pacing: book frames are timed by their latest level, trade frames by their latest trade;
//! ticker frames carry no time (the recording dropped receipt times), so they are spread
//! evenly over the recording. Each file's frame order is kept when the files are merged.
//!
//! The recording was made at one depth (`book-1000`); a book subscription of another depth is
//! refused with a `subscriptionStatus` error, as the recorded updates only fit that depth.
//! The mock keeps one book per pair: clients replaying the same pair at different positions of
//! the recording would need one each, which the mock does not model.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use serde_json::{json, Value};

use super::websocket::{secs_to_us, us_to_secs};
use crate::book::{OrderBook, Side};
use crate::replay::corpus::{read, CorpusError, Frame};
use crate::replay::{ClientAnswer, ReplayMock};

/// The recorded book snapshots' file (the initial book of each pair).
pub const SNAPSHOT_FILE: &str = "kraken_book_snapshot.jsonl";

/// Depth of the recording when no frame says otherwise.
pub const DEFAULT_DEPTH: u32 = 1000;

/// Subscription key of channel `name` (`book-1000` → `book`, `ohlc-1` kept) on `pair`.
pub fn key(name: &str, pair: &str) -> String {
    let base = if name.starts_with("book") {
        "book"
    } else {
        name
    };
    format!("{base}:{pair}")
}

/// The parts of a v1 data frame: channel id, payloads, channel name, pair.
fn parts(v: &Value) -> Option<(i64, &[Value], &str, &str)> {
    let a = v.as_array()?;
    let n = a.len();
    if n < 4 {
        return None;
    }
    Some((
        a[0].as_i64().unwrap_or(0),
        &a[1..n - 2],
        a[n - 2].as_str()?,
        a[n - 1].as_str()?,
    ))
}

/// The latest time in a frame, µs: of its book levels, trades, spread or candle.
fn frame_time(v: &Value) -> Option<i64> {
    let (_, payloads, name, _) = parts(v)?;
    let time = |x: &Value| x.as_str().and_then(|t| secs_to_us(t).ok());
    let mut latest: Option<i64> = None;
    let mut see = |t: Option<i64>| {
        if let Some(t) = t {
            latest = Some(latest.map_or(t, |l| l.max(t)));
        }
    };
    for p in payloads {
        if name.starts_with("book") {
            for k in ["a", "b", "as", "bs"] {
                for l in p[k].as_array().into_iter().flatten() {
                    see(time(&l[2]));
                }
            }
        } else if name == "trade" {
            for t in p.as_array().into_iter().flatten() {
                see(time(&t[2]));
            }
        } else if name == "spread" {
            see(time(&p[2]));
        } else if name.starts_with("ohlc") {
            see(time(&p[0]));
        }
    }
    latest
}

/// Shifts every time of a frame by `shift_us`, keeping Kraken's six-decimal text.
fn shift_times(v: &mut Value, shift_us: i64) {
    let name = parts(v)
        .map(|(_, _, n, _)| n.to_string())
        .unwrap_or_default();
    let Some(a) = v.as_array_mut() else { return };
    let n = a.len();
    let shift = |x: &mut Value| {
        if let Some(t) = x.as_str().and_then(|t| secs_to_us(t).ok()) {
            *x = Value::String(us_to_secs(t + shift_us));
        }
    };
    for p in a.iter_mut().take(n.saturating_sub(2)).skip(1) {
        if name.starts_with("book") {
            for k in ["a", "b", "as", "bs"] {
                if let Some(levels) = p.get_mut(k).and_then(Value::as_array_mut) {
                    for l in levels {
                        if let Some(t) = l.get_mut(2) {
                            shift(t);
                        }
                    }
                }
            }
        } else if name == "trade" {
            for t in p.as_array_mut().into_iter().flatten() {
                if let Some(t) = t.get_mut(2) {
                    shift(t);
                }
            }
        } else if name == "spread" {
            if let Some(t) = p.get_mut(2) {
                shift(t);
            }
        } else if name.starts_with("ohlc") {
            for i in [0, 1] {
                if let Some(t) = p.get_mut(i) {
                    shift(t);
                }
            }
        }
    }
}

/// Applies the levels of a book frame (snapshot or update) to `book`; returns the latest
/// level time, µs.
fn apply(book: &mut OrderBook, v: &Value) -> Option<i64> {
    let (_, payloads, _, _) = parts(v)?;
    let mut latest = None;
    for p in payloads {
        for (side, keys) in [(Side::Ask, ["as", "a"]), (Side::Bid, ["bs", "b"])] {
            for k in keys {
                for l in p[k].as_array().into_iter().flatten() {
                    if let (Some(price), Some(qty)) = (l[0].as_str(), l[1].as_str()) {
                        let _ = book.apply(side, price, qty);
                    }
                    if let Some(t) = l[2].as_str().and_then(|t| secs_to_us(t).ok()) {
                        latest = Some(latest.map_or(t, |x: i64| x.max(t)));
                    }
                }
            }
        }
    }
    latest
}

/// The depth of a `book-N` channel name.
fn depth_of(name: &str) -> Option<u32> {
    name.strip_prefix("book-")?.parse().ok()
}

/// A recorded initial book.
#[derive(Debug, Clone)]
struct Recorded {
    book: OrderBook,
    time_us: i64,
}

/// A book as played so far.
#[derive(Debug, Clone)]
struct Played {
    book: OrderBook,
    time_us: i64,
    /// Timeline position (loop × frames + index) the book stands at: every update of the pair
    /// up to it is applied (-1: the recorded snapshot).
    last: i64,
}

#[derive(Debug, Default)]
struct State {
    books: HashMap<String, Played>,
    /// The loop being played.
    loop_k: i64,
    /// The latest timeline position played (any channel).
    seen: Option<i64>,
}

/// The replay mock of Kraken WebSocket v1.
#[derive(Debug)]
pub struct KrakenMock {
    frames: Vec<Frame>,
    recorded: HashMap<String, Recorded>,
    /// Channel id of each subscription key, as recorded.
    channel_ids: HashMap<String, i64>,
    depth: u32,
    span_us: i64,
    state: Mutex<State>,
}

impl KrakenMock {
    /// Loads every `kraken_*.jsonl` v1 recording in `dir` (not the `_cmp_` test vectors): the
    /// book snapshots of [`SNAPSHOT_FILE`] as the initial books, the other files as frames.
    pub fn load(dir: &Path) -> Result<KrakenMock, CorpusError> {
        let io = |source| CorpusError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("kraken_") && n.ends_with(".jsonl") && !n.contains("_cmp_"))
            .collect();
        names.sort();
        let mut recorded = HashMap::new();
        let mut channel_ids = HashMap::new();
        let mut depth = None;
        // Per file: frames with their time, when they have one.
        let mut files: Vec<Vec<(Frame, Option<i64>)>> = Vec::new();
        for name in &names {
            let values = read(&dir.join(name))?;
            if name == SNAPSHOT_FILE {
                for v in values {
                    let Some((id, _, ch, pair)) = parts(&v) else {
                        continue;
                    };
                    depth = depth.or(depth_of(ch));
                    channel_ids.insert(key(ch, pair), id);
                    let mut book = OrderBook::new();
                    let time_us = apply(&mut book, &v).unwrap_or(0);
                    recorded.insert(pair.to_string(), Recorded { book, time_us });
                }
                continue;
            }
            let mut file = Vec::new();
            for v in values {
                let Some((id, _, ch, pair)) = parts(&v) else {
                    continue;
                };
                if ch.starts_with("book") {
                    depth = depth.or(depth_of(ch));
                }
                let k = key(ch, pair);
                channel_ids.entry(k.clone()).or_insert(id);
                let time = frame_time(&v);
                let frame = Frame {
                    key: k,
                    symbol: pair.to_string(),
                    value: v,
                    time_ms: 0,
                };
                file.push((frame, time));
            }
            files.push(file);
        }
        let times = files.iter().flatten().filter_map(|(_, t)| *t);
        let (t0, t1) = times.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
        let (t0, t1) = if t0 <= t1 { (t0, t1) } else { (0, 0) };
        // Frames without a time: spread evenly when the whole file has none, else the time
        // of the frame before.
        let mut queues: Vec<VecDeque<Frame>> = Vec::new();
        for file in files {
            let untimed = file.iter().all(|(_, t)| t.is_none());
            let n = file.len() as i64;
            let mut last = t0;
            let mut q = VecDeque::new();
            for (i, (mut frame, time)) in file.into_iter().enumerate() {
                let t = match time {
                    Some(t) => t,
                    None if untimed => t0 + (t1 - t0) * (i as i64 + 1) / (n + 1),
                    None => last,
                };
                last = t;
                frame.time_ms = t / 1000;
                q.push_back(frame);
            }
            queues.push(q);
        }
        // Merge by time, keeping each file's order (a pair's updates must stay in order).
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
        let span_us = match (frames.first(), frames.last()) {
            (Some(a), Some(b)) => (b.time_ms - a.time_ms + 1) * 1000,
            _ => 1000,
        };
        Ok(KrakenMock {
            frames,
            recorded,
            channel_ids,
            depth: depth.unwrap_or(DEFAULT_DEPTH),
            span_us,
            state: Mutex::new(State::default()),
        })
    }

    /// The depth the books were recorded at.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    fn channel_id(&self, k: &str) -> i64 {
        self.channel_ids.get(k).copied().unwrap_or_else(|| {
            // A stable made-up id for keys without a recording.
            9000 + k.bytes().map(i64::from).sum::<i64>() % 1000
        })
    }

    /// The recorded book of `pair` at the start of loop `k` (empty when none was recorded).
    fn initial(&self, pair: &str, k: i64) -> Played {
        match self.recorded.get(pair) {
            Some(r) => Played {
                book: r.book.clone(),
                time_us: r.time_us + k * self.span_us,
                last: k * self.frames.len() as i64 - 1,
            },
            None => Played {
                book: OrderBook::new(),
                time_us: 0,
                last: k * self.frames.len() as i64 - 1,
            },
        }
    }

    /// Brings `pair`'s book to timeline position `upto`: applies the recorded updates of the
    /// pair it has not applied yet (played or not: frames skipped while the client was not
    /// subscribed still move the venue's book), resetting it at loop starts.
    fn advance(&self, state: &mut State, pair: &str, upto: i64) {
        let len = self.frames.len() as i64;
        let played = match state.books.remove(pair) {
            Some(p) => p,
            None => self.initial(pair, 0),
        };
        let mut played = played;
        let depth = self.depth as usize;
        let mut p = played.last + 1;
        while len > 0 && p <= upto {
            let (k, idx) = (p / len, (p % len) as usize);
            if idx == 0 && p > 0 {
                played = self.initial(pair, k);
            }
            if let Some(f) = self.frames.get(idx) {
                if f.symbol == pair && f.key.starts_with("book:") {
                    if let Some(t) = apply(&mut played.book, &f.value) {
                        played.time_us = played.time_us.max(t + k * self.span_us);
                    }
                    played.book.truncate(depth);
                }
            }
            played.last = p;
            p += 1;
        }
        state.books.insert(pair.to_string(), played);
    }

    /// The in-band snapshot frame of `pair`'s book as it stands.
    fn snapshot_frame(&self, pair: &str, played: Option<&Played>) -> String {
        let depth = self.depth as usize;
        let (book, time) = match played {
            Some(p) => (p.book.levels(Some(depth)), p.time_us),
            None => (OrderBook::new().levels(None), 0),
        };
        let ts = us_to_secs(time);
        let side = |levels: &[crate::schema::v2beta1::level2_book::PriceLevel]| -> Vec<Value> {
            levels
                .iter()
                .map(|l| json!([l.price, l.quantity, ts]))
                .collect()
        };
        json!([
            self.channel_id(&key("book", pair)),
            { "as": side(&book.1), "bs": side(&book.0) },
            format!("book-{}", self.depth),
            pair
        ])
        .to_string()
    }

    /// Index of `frame` in the recording, when it is one of its frames.
    fn index_of(&self, frame: &Frame) -> Option<usize> {
        crate::replay::corpus::index_in(&self.frames, frame)
    }
}

impl ReplayMock for KrakenMock {
    fn frames(&self) -> &[Frame] {
        &self.frames
    }

    fn ws_paths(&self) -> &'static [&'static str] {
        &["/"]
    }

    fn on_client(&self, text: &str) -> ClientAnswer {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let reqid = v.get("reqid").cloned();
        let with_reqid = |mut m: Value| {
            if let Some(r) = &reqid {
                m["reqid"] = r.clone();
            }
            m.to_string()
        };
        let mut answer = ClientAnswer::default();
        let event = v["event"].as_str().unwrap_or_default();
        match event {
            "ping" => answer.replies.push(with_reqid(json!({ "event": "pong" }))),
            "subscribe" | "unsubscribe" => {
                let sub = &v["subscription"];
                let name = sub["name"].as_str().unwrap_or_default();
                let channel = match name {
                    "book" => format!("book-{}", sub["depth"].as_u64().unwrap_or(10)),
                    "ohlc" => format!("ohlc-{}", sub["interval"].as_u64().unwrap_or(1)),
                    "trade" | "ticker" | "spread" => name.to_string(),
                    _ => {
                        answer.replies.push(with_reqid(json!({
                            "errorMessage": "Subscription name invalid",
                            "event": "subscriptionStatus",
                            "status": "error",
                            "subscription": sub,
                        })));
                        return answer;
                    }
                };
                let refused = event == "subscribe"
                    && name == "book"
                    && depth_of(&channel) != Some(self.depth);
                for pair in v["pair"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    let k = key(&channel, pair);
                    if refused {
                        answer.replies.push(with_reqid(json!({
                            "errorMessage": format!("Subscription depth not supported (the replay was recorded at depth {})", self.depth),
                            "event": "subscriptionStatus",
                            "pair": pair,
                            "status": "error",
                            "subscription": sub,
                        })));
                        continue;
                    }
                    let status = if event == "subscribe" {
                        "subscribed"
                    } else {
                        "unsubscribed"
                    };
                    answer.replies.push(with_reqid(json!({
                        "channelID": self.channel_id(&k),
                        "channelName": channel,
                        "event": "subscriptionStatus",
                        "pair": pair,
                        "status": status,
                        "subscription": sub,
                    })));
                    if event == "subscribe" {
                        answer.subscribe.push(k);
                    } else {
                        answer.unsubscribe.push(k);
                    }
                }
            }
            _ => answer.replies.push(with_reqid(json!({
                "errorMessage": "Malformed request",
                "event": "error",
            }))),
        }
        answer
    }

    fn on_subscribed(&self, k: &str) -> Vec<String> {
        let Some(pair) = k.strip_prefix("book:") else {
            return Vec::new();
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let upto = state.seen.unwrap_or(-1);
        self.advance(&mut state, pair, upto);
        vec![self.snapshot_frame(pair, state.books.get(pair))]
    }

    fn on_loop(&self, k: i64, subs: &HashSet<String>) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if k > state.loop_k {
            state.loop_k = k;
            for pair in self.recorded.keys() {
                state.books.insert(pair.clone(), self.initial(pair, k));
            }
        }
        let mut pairs: Vec<&str> = subs
            .iter()
            .filter_map(|s| s.strip_prefix("book:"))
            .collect();
        pairs.sort_unstable();
        pairs
            .into_iter()
            .map(|p| self.snapshot_frame(p, state.books.get(p)))
            .collect()
    }

    fn render(&self, frame: &Frame, k: i64) -> Option<Value> {
        let mut v = frame.value.clone();
        if k > 0 {
            shift_times(&mut v, k * self.span_us);
        }
        Some(v)
    }

    /// Positions only: a frame passed moves the venue's book like one played.
    fn passed(&self, frame: &Frame, k: i64) {
        self.played(frame, &Value::Null, k);
    }

    /// Keeps the served book current with every update played (once per timeline position,
    /// including the pair's updates skipped before it), truncated to the depth like the
    /// client's.
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

    /// `AssetPairs`, synthesized from the recorded pairs (no instrument list was recorded).
    fn rest(&self, path: &str, _query: &HashMap<String, String>) -> Option<(u16, String)> {
        if path != "/0/public/AssetPairs" {
            return None;
        }
        let mut pairs: Vec<&str> = self.frames.iter().map(|f| f.symbol.as_str()).collect();
        pairs.extend(self.recorded.keys().map(String::as_str));
        pairs.sort_unstable();
        pairs.dedup();
        let result: serde_json::Map<String, Value> = pairs
            .into_iter()
            .filter(|p| p.contains('/'))
            .map(|p| {
                let alt = p.replace('/', "");
                (
                    alt.clone(),
                    json!({ "altname": alt, "wsname": p, "status": "online" }),
                )
            })
            .collect();
        Some((200, json!({ "error": [], "result": result }).to_string()))
    }
}

/// The Kraken replay mock serving the recordings in `fixtures` (the registry's constructor).
pub fn mock(fixtures: &Path) -> Result<Box<dyn ReplayMock>, CorpusError> {
    Ok(Box::new(KrakenMock::load(fixtures)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_time_shift() {
        assert_eq!(key("book-1000", "XBT/USD"), "book:XBT/USD");
        assert_eq!(key("ohlc-1", "XBT/USD"), "ohlc-1:XBT/USD");
        let mut v: Value = serde_json::from_str(
            r#"[1,[["1.0","2.0","1618678142.557535","s","l",""]],"trade","XMR/USD"]"#,
        )
        .unwrap();
        assert_eq!(frame_time(&v), Some(1_618_678_142_557_535));
        shift_times(&mut v, 1_000_001);
        assert_eq!(v[1][0][2], "1618678143.557536");
    }
}
