//! Binance's replay mock: the combined-stream WebSocket (`/stream?streams=` or `SUBSCRIBE`;
//! on USD-M `/public/stream` and `/market/stream`, each serving only its category's streams,
//! while the retired `/stream` and `/ws` accept and acknowledge but send nothing, as Binance's
//! do since 2026-04-23),
//! REST depth snapshots kept current with every diff played, open interest, and a symbol list
//! synthesized from the recorded symbols. Between loops, update ids continue the chain and
//! trade ids and times move forward.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use serde_json::{json, Value};

use crate::book::{OrderBook, Side};
use crate::replay::corpus::{read, CorpusError, Frame};
use crate::replay::{ClientAnswer, ReplayMock};

/// `btcusdt@markPrice@1s` → `btcusdt@markPrice`; `nknusdt@depth@100ms` → `nknusdt@depth`.
pub fn stream_key(stream: &str) -> String {
    let mut parts = stream.split('@');
    let sym = parts.next().unwrap_or_default().to_ascii_lowercase();
    let kind = parts.next().unwrap_or_default();
    format!("{sym}@{kind}")
}

/// Everything a Binance replay server of one market serves.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// Frames in replay order.
    pub frames: Vec<Frame>,
    /// REST depth snapshot by venue symbol.
    pub snapshots: HashMap<String, Value>,
    /// Open interest by venue symbol.
    pub open_interest: HashMap<String, String>,
}

impl Corpus {
    /// Loads the files of one market from `dir`: `<prefix>*.jsonl` WebSocket captures,
    /// `<prefix>depth_snapshot_rest.jsonl` and `<prefix>openInterest.jsonl`.
    /// `prefix` is `binance_` for spot (excluding `binance_futures_`) or `binance_futures_`.
    pub fn load(dir: &Path, prefix: &str, exclude: &[&str]) -> Result<Corpus, CorpusError> {
        let io = |source| CorpusError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix) && n.ends_with(".jsonl"))
            .filter(|n| !exclude.iter().any(|x| n.starts_with(x)))
            .filter(|n| !n.contains("_cmp_"))
            .collect();
        names.sort();
        let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap_or_default();
        let mut corpus = Corpus::default();
        for name in names {
            let values = read(&dir.join(&name))?;
            if name.ends_with("depth_snapshot_rest.jsonl") {
                // The symbol of each snapshot line is in its provenance note.
                let syms = manifest
                    .lines()
                    .filter(|l| l.starts_with(&format!("{name}\t")))
                    .filter_map(|l| l.split("symbol=").nth(1)?.split(['&', '\t']).next());
                for (sym, v) in syms.zip(values) {
                    corpus.snapshots.insert(sym.to_string(), v);
                }
                continue;
            }
            let mut last_time = 0;
            for v in values {
                let data = v.get("data").cloned().unwrap_or(Value::Null);
                if name.ends_with("openInterest.jsonl") {
                    if let (Some(s), Some(oi)) =
                        (data["symbol"].as_str(), data["openInterest"].as_str())
                    {
                        corpus.open_interest.insert(s.to_string(), oi.to_string());
                    }
                    continue;
                }
                let Some(stream) = v["stream"].as_str() else {
                    continue;
                };
                let symbol = data["s"]
                    .as_str()
                    .or(data["o"]["s"].as_str())
                    .unwrap_or_default()
                    .to_string();
                let time_ms = data["E"]
                    .as_i64()
                    .or(data["T"].as_i64())
                    .unwrap_or(last_time);
                last_time = time_ms;
                corpus.frames.push(Frame {
                    key: stream_key(stream),
                    symbol,
                    value: v,
                    time_ms,
                });
            }
        }
        // Merge the channels by event time; frames without one keep their file order.
        corpus.frames.sort_by_key(|f| f.time_ms);
        Ok(corpus)
    }

    /// Per-symbol ids of the recording, for the shift between loops: (first `U`, first `pu`,
    /// highest `u`).
    fn id_ranges(&self) -> HashMap<String, (i64, Option<i64>, i64)> {
        let mut seen: HashMap<String, (i64, Option<i64>, i64)> = HashMap::new();
        for f in &self.frames {
            let d = &f.value["data"];
            if let (Some(u0), Some(u1)) = (d["U"].as_i64(), d["u"].as_i64()) {
                let e = seen
                    .entry(f.symbol.clone())
                    .or_insert((u0, d["pu"].as_i64(), u1));
                e.2 = e.2.max(u1);
            }
        }
        seen
    }

    /// Time span of the frames, ms.
    pub fn time_span(&self) -> i64 {
        match (self.frames.first(), self.frames.last()) {
            (Some(a), Some(b)) => b.time_ms - a.time_ms + 1,
            _ => 1,
        }
    }
}

/// Shifts the ids and times of a frame for loop number `k` (0 = as recorded).
pub fn shifted(frame: &Frame, k: i64, id_span: i64, time_span: i64) -> Value {
    if k == 0 {
        return frame.value.clone();
    }
    let mut v = frame.value.clone();
    if let Some(d) = v.get_mut("data").and_then(Value::as_object_mut) {
        for key in ["U", "u", "pu"] {
            if let Some(x) = d.get(key).and_then(Value::as_i64) {
                d.insert(key.into(), (x + k * id_span).into());
            }
        }
        for key in ["t", "a", "f", "l"] {
            if let Some(x) = d.get(key).and_then(Value::as_i64) {
                d.insert(key.into(), (x + k * 1_000_000_000).into());
            }
        }
        for key in ["E", "T"] {
            if let Some(x) = d.get(key).and_then(Value::as_i64) {
                if x > 0 {
                    d.insert(key.into(), (x + k * time_span).into());
                }
            }
        }
    }
    v
}

/// How one symbol's update ids move between loops.
///
/// Replaying the diffs again onto the book they left would not give the venue's book (a level
/// the recording never deletes stays, and the book ends up crossed). So every later loop starts
/// from the recorded snapshot again: one synthesized diff (sent when the loop starts) sets the
/// book back to the snapshot, and the loop replays only the diffs after the snapshot. Ids
/// continue across all of it, so a client sees one unbroken chain.
#[derive(Debug, Clone, Copy)]
struct LoopIds {
    /// Id shift per loop.
    span: i64,
    /// Highest `u` of the recording.
    hi: i64,
    /// With a recorded snapshot: its `lastUpdateId` and the id the synthesized diff ends at
    /// (the first kept diff's `pu`, or its `U - 1` on spot).
    reset: Option<(i64, i64)>,
}

/// The replay mock of one Binance market.
pub struct BinanceMock {
    corpus: Corpus,
    ids: HashMap<String, LoopIds>,
    /// Recorded snapshot books, by venue symbol.
    initial: HashMap<String, OrderBook>,
    time_span: i64,
    /// Perpetual/delivery contract types in the synthesized symbol list.
    futures: bool,
    /// Streams served on routed endpoints by category (USD-M), not on `/stream`.
    routed: bool,
    /// The market's quote assets, longest first (to split recorded symbols).
    quotes: &'static [&'static str],
    /// Book as played so far, per venue symbol, with its last update id.
    books: Mutex<HashMap<String, (OrderBook, i64)>>,
}

impl BinanceMock {
    /// Loads the files of one market from `dir` (see [`Corpus::load`]).
    pub fn load(
        dir: &Path,
        prefix: &str,
        exclude: &[&str],
        futures: bool,
        routed: bool,
        quotes: &'static [&'static str],
    ) -> Result<BinanceMock, CorpusError> {
        let corpus = Corpus::load(dir, prefix, exclude)?;
        let mut books = HashMap::new();
        for (sym, snap) in &corpus.snapshots {
            let mut book = OrderBook::new();
            for (side, key) in [(Side::Bid, "bids"), (Side::Ask, "asks")] {
                for l in snap[key].as_array().into_iter().flatten() {
                    if let (Some(p), Some(q)) = (l[0].as_str(), l[1].as_str()) {
                        let _ = book.apply(side, p, q);
                    }
                }
            }
            books.insert(
                sym.clone(),
                (book, snap["lastUpdateId"].as_i64().unwrap_or(0)),
            );
        }
        let mut ids = HashMap::new();
        for (sym, (first, pu, hi)) in corpus.id_ranges() {
            let span = hi - pu.unwrap_or(first - 1);
            let last = books.get(&sym).map(|(_, l)| *l);
            // The first diff a client keeps after the snapshot (futures: u >= L; spot: u > L).
            let kept = last.and_then(|l| {
                corpus
                    .frames
                    .iter()
                    .filter(|f| f.symbol == sym)
                    .map(|f| &f.value["data"])
                    .filter(|d| d["e"] == "depthUpdate")
                    .find(|d| {
                        d["u"]
                            .as_i64()
                            .is_some_and(|u| if futures { u >= l } else { u > l })
                    })
                    .and_then(|d| {
                        let anchor = match d["pu"].as_i64() {
                            Some(pu) => pu,
                            None => d["U"].as_i64()? - 1,
                        };
                        Some((l, anchor))
                    })
            });
            let span = if kept.is_some() { span + 1 } else { span };
            ids.insert(
                sym,
                LoopIds {
                    span,
                    hi,
                    reset: kept,
                },
            );
        }
        let initial = books
            .iter()
            .map(|(s, (b, _))| (s.clone(), b.clone()))
            .collect();
        Ok(BinanceMock {
            ids,
            initial,
            time_span: corpus.time_span(),
            corpus,
            futures,
            routed,
            quotes,
            books: Mutex::new(books),
        })
    }

    fn depth(&self, q: &HashMap<String, String>) -> (u16, String) {
        let symbol = q.get("symbol").cloned().unwrap_or_default();
        let limit = q
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(1000usize);
        let books = self.books.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((book, last)) = books.get(&symbol) else {
            return invalid_symbol();
        };
        let (bids, asks) = book.levels(Some(limit));
        let side = |v: Vec<crate::schema::v2beta1::level2_book::PriceLevel>| {
            v.into_iter()
                .map(|l| json!([l.price, l.quantity]))
                .collect::<Vec<_>>()
        };
        let body = json!({ "lastUpdateId": last, "bids": side(bids), "asks": side(asks) });
        (200, body.to_string())
    }

    /// The venue's symbol list, synthesized from the recorded symbols (no exchangeInfo was
    /// recorded): base/quote split on the market's quote assets; futures symbols with `_` are
    /// deliveries (`BTCUSD_211231`), the others perpetuals.
    fn exchange_info(&self) -> (u16, String) {
        let c = &self.corpus;
        let mut symbols: Vec<&str> = c
            .frames
            .iter()
            .map(|f| f.symbol.as_str())
            .chain(c.snapshots.keys().map(String::as_str))
            .chain(c.open_interest.keys().map(String::as_str))
            .filter(|s| !s.is_empty())
            .collect();
        symbols.sort_unstable();
        symbols.dedup();
        let list: Vec<Value> = symbols
            .into_iter()
            .filter_map(|s| {
                let (pair, delivery) = match s.split_once('_') {
                    Some((p, d)) => (p, Some(d)),
                    None => (s, None),
                };
                let quote = self
                    .quotes
                    .iter()
                    .find(|q| pair.ends_with(*q) && pair.len() > q.len())?;
                let base = &pair[..pair.len() - quote.len()];
                let mut v = json!({ "symbol": s, "pair": pair, "status": "TRADING", "contractStatus": "TRADING", "baseAsset": base, "quoteAsset": quote });
                if self.futures {
                    v["contractType"] = json!(match delivery {
                        Some("PERP") | None => "PERPETUAL",
                        Some(_) => "CURRENT_QUARTER",
                    });
                    if let Some(d) = delivery.filter(|d| *d != "PERP") {
                        // Delivery at 08:00 UTC on 20YY-MM-DD.
                        v["deliveryDateYYMMDD"] = json!(d);
                    }
                }
                Some(v)
            })
            .collect();
        (
            200,
            json!({ "timezone": "UTC", "symbols": list }).to_string(),
        )
    }

    fn open_interest(&self, q: &HashMap<String, String>) -> (u16, String) {
        let symbol = q.get("symbol").cloned().unwrap_or_default();
        match self.corpus.open_interest.get(&symbol) {
            Some(oi) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let body = json!({ "symbol": symbol, "openInterest": oi, "time": now });
                (200, body.to_string())
            }
            None => invalid_symbol(),
        }
    }
}

fn invalid_symbol() -> (u16, String) {
    (
        400,
        json!({ "code": -1121, "msg": "Invalid symbol." }).to_string(),
    )
}

impl ReplayMock for BinanceMock {
    fn frames(&self) -> &[Frame] {
        &self.corpus.frames
    }

    fn ws_paths(&self) -> &'static [&'static str] {
        if self.routed {
            &[
                "/public/stream",
                "/public/ws",
                "/market/stream",
                "/market/ws",
                "/stream",
                "/ws",
            ]
        } else {
            &["/stream", "/ws"]
        }
    }

    /// Routed (USD-M): a stream plays only on its category's endpoint
    /// (`/public/…` or `/market/…`, [`crate::venues::binance::category`]); the legacy `/stream`
    /// and `/ws` play nothing. Elsewhere every path plays every stream.
    fn serves(&self, path: &str, key: &str) -> bool {
        if !self.routed {
            return true;
        }
        let endpoint = path.trim_start_matches('/').split('/').next();
        endpoint == Some(crate::venues::binance::category(key))
    }

    fn url_subscriptions(&self, q: &HashMap<String, String>) -> Vec<String> {
        q.get("streams")
            .map(|s| {
                s.split('/')
                    .filter(|x| !x.is_empty())
                    .map(stream_key)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn on_client(&self, text: &str) -> ClientAnswer {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let id = v["id"].clone();
        let params = || {
            v["params"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(stream_key)
                .collect::<Vec<_>>()
        };
        let ok = json!({ "result": null, "id": id }).to_string();
        match v["method"].as_str() {
            Some("SUBSCRIBE") => ClientAnswer {
                replies: vec![ok],
                subscribe: params(),
                ..ClientAnswer::default()
            },
            Some("UNSUBSCRIBE") => ClientAnswer {
                replies: vec![ok],
                unsubscribe: params(),
                ..ClientAnswer::default()
            },
            _ => ClientAnswer {
                replies: vec![json!({ "code": 2, "msg": "Invalid request", "id": id }).to_string()],
                ..ClientAnswer::default()
            },
        }
    }

    fn render(&self, frame: &Frame, k: i64) -> Option<Value> {
        let ids = self.ids.get(&frame.symbol).copied();
        if k > 0 {
            // Later loops start from the snapshot: the diffs before it are not played again.
            let d = &frame.value["data"];
            if let (Some((l, _)), Some(u), true) = (
                ids.and_then(|i| i.reset),
                d["u"].as_i64(),
                d["e"] == "depthUpdate",
            ) {
                if if self.futures { u < l } else { u <= l } {
                    return None;
                }
            }
        }
        Some(shifted(frame, k, ids.map_or(0, |i| i.span), self.time_span))
    }

    /// Each depth stream subscribed gets one synthesized diff setting the book back to the
    /// recorded snapshot, ids continuing the chain (see `LoopIds`); the served book follows.
    fn on_loop(&self, k: i64, subs: &HashSet<String>) -> Vec<String> {
        let mut out = Vec::new();
        let mut books = self.books.lock().unwrap_or_else(PoisonError::into_inner);
        let start = self.corpus.frames.first().map_or(0, |f| f.time_ms) + k * self.time_span;
        let mut symbols: Vec<&String> = self.ids.keys().collect();
        symbols.sort();
        for sym in symbols {
            let (Some(ids), Some(initial)) = (self.ids.get(sym), self.initial.get(sym)) else {
                continue;
            };
            let Some((_, anchor)) = ids.reset else {
                continue;
            };
            let stream = format!("{}@depth", sym.to_ascii_lowercase());
            // The connection that plays this depth stream moves the served book with it.
            if !subs.contains(&stream) {
                continue;
            }
            let Some((book, last)) = books.get_mut(sym) else {
                continue;
            };
            let prev = ids.hi + (k - 1) * ids.span;
            let u = anchor + k * ids.span;
            // Levels of the current book not in the snapshot go to zero; the snapshot's are set.
            let side = |s: Side| -> Vec<Value> {
                let (now, want) = match s {
                    Side::Bid => (book.levels(None).0, initial.levels(None).0),
                    Side::Ask => (book.levels(None).1, initial.levels(None).1),
                };
                let keep: HashSet<String> = want
                    .iter()
                    .filter_map(|l| l.price.parse::<rust_decimal::Decimal>().ok())
                    .map(|d| d.normalize().to_string())
                    .collect();
                now.iter()
                    .filter(|l| {
                        l.price
                            .parse::<rust_decimal::Decimal>()
                            .is_ok_and(|d| !keep.contains(&d.normalize().to_string()))
                    })
                    .map(|l| json!([l.price, "0"]))
                    .chain(want.iter().map(|l| json!([l.price, l.quantity])))
                    .collect()
            };
            let (b, a) = (side(Side::Bid), side(Side::Ask));
            let mut data = json!({
                "e": "depthUpdate", "E": start, "s": sym, "U": prev + 1, "u": u, "b": b, "a": a,
            });
            if self.futures {
                data["pu"] = json!(prev);
                data["T"] = json!(start);
            }
            *book = initial.clone();
            *last = u;
            out.push(json!({ "stream": format!("{stream}@100ms"), "data": data }).to_string());
        }
        out
    }

    /// Keeps the served book current with every depth frame played (once: a frame whose
    /// final id the book has is ignored). Frames a connection skips do not move it (no
    /// `passed`): connections replay at their own pace, and a REST snapshot taken ahead of a
    /// slower connection's stream would leave it dropping diffs older than its book.
    fn played(&self, frame: &Frame, value: &Value, _k: i64) {
        let d = &value["data"];
        if d["e"].as_str() != Some("depthUpdate") {
            return;
        }
        let mut books = self.books.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((book, last)) = books.get_mut(&frame.symbol) else {
            return;
        };
        let Some(u) = d["u"].as_i64() else { return };
        if u <= *last {
            return;
        }
        for (side, key) in [(Side::Bid, "b"), (Side::Ask, "a")] {
            for l in d[key].as_array().into_iter().flatten() {
                if let (Some(p), Some(q)) = (l[0].as_str(), l[1].as_str()) {
                    let _ = book.apply(side, p, q);
                }
            }
        }
        *last = u;
    }

    fn rest(&self, path: &str, q: &HashMap<String, String>) -> Option<(u16, String)> {
        let endpoint = path.rsplit('/').next().unwrap_or_default();
        Some(match endpoint {
            "depth" => self.depth(q),
            "openInterest" => self.open_interest(q),
            "exchangeInfo" => self.exchange_info(),
            _ => return None,
        })
    }
}
