//! A replay server: serves a market's recorded messages the way the venue does — same URL
//! paths, the same SUBSCRIBE handshake, REST depth snapshots and open interest — at recorded
//! pace or as fast as possible, looping with shifted ids and times when asked for volume.
//!
//! The REST snapshot is the recorded one updated with every diff played so far, so a client
//! that reconnects mid-stream can resync exactly as against the live venue.

pub mod corpus;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;
use tokio::sync::watch;

use crate::book::{OrderBook, Side};
use corpus::{shifted, stream_key, Corpus, CorpusError};

/// One replay server (one venue market on one port).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayServerConfig {
    /// `binance` (spot) or `binance_usdm`.
    pub venue: String,
    /// Listen address; port 0 picks a free one.
    pub listen: String,
    /// Folder of recorded fixtures (with MANIFEST.tsv).
    pub fixtures: PathBuf,
    /// 0 = as fast as possible; 1.0 = recorded pace; 10.0 = ten times faster.
    pub speed: f64,
    /// How many times the recording is played (ids and times shifted after the first).
    pub loops: u32,
    /// Drop the first connection abruptly after this many frames (fault injection; 0 = never).
    pub drop_after_frames: u64,
}

impl Default for ReplayServerConfig {
    fn default() -> Self {
        ReplayServerConfig {
            venue: "binance".into(),
            listen: "127.0.0.1:0".into(),
            fixtures: PathBuf::from("tests/fixtures/binance"),
            speed: 0.0,
            loops: 1,
            drop_after_frames: 0,
        }
    }
}

/// The replay server could not start.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// Unknown venue.
    #[error("replay: unknown venue {0:?} (binance, binance_usdm)")]
    Venue(String),
    /// The recording could not be loaded.
    #[error("replay: {0}")]
    Corpus(#[from] CorpusError),
    /// The listen address could not be bound.
    #[error("replay: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

struct Market {
    corpus: Corpus,
    id_spans: HashMap<String, i64>,
    time_span: i64,
    cfg: ReplayServerConfig,
    /// Timeline position (frame index across loops) per subscription set: a client that
    /// subscribes the same streams again (a reconnect) resumes there; `true` once finished.
    positions: Mutex<HashMap<String, (usize, bool)>>,
    /// Book as played so far, per venue symbol, with its last update id.
    books: Mutex<HashMap<String, (OrderBook, i64)>>,
    dropped: AtomicBool,
    sent: AtomicU64,
    finished: watch::Sender<bool>,
}

/// A running replay server.
#[derive(Debug)]
pub struct ReplayServer {
    /// Where it listens.
    pub addr: SocketAddr,
    finished: watch::Receiver<bool>,
    market: Arc<Market>,
}

impl std::fmt::Debug for Market {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Market")
            .field("venue", &self.cfg.venue)
            .finish_non_exhaustive()
    }
}

impl ReplayServer {
    /// Loads the recording and starts serving on the current tokio runtime.
    pub async fn start(cfg: ReplayServerConfig) -> Result<ReplayServer, ReplayError> {
        let corpus = match cfg.venue.as_str() {
            "binance" => Corpus::load(&cfg.fixtures, "binance_", Some("binance_futures_"))?,
            "binance_usdm" => Corpus::load(&cfg.fixtures, "binance_futures_", None)?,
            other => return Err(ReplayError::Venue(other.to_string())),
        };
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
        let (finished, finished_rx) = watch::channel(corpus.frames.is_empty());
        let market = Arc::new(Market {
            id_spans: corpus.id_spans(),
            time_span: corpus.time_span(),
            corpus,
            positions: Mutex::new(HashMap::new()),
            books: Mutex::new(books),
            dropped: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            finished,
            cfg: cfg.clone(),
        });
        let app = Router::new()
            .route("/stream", get(ws))
            .route("/ws", get(ws))
            .route("/api/v3/depth", get(depth))
            .route("/fapi/v1/depth", get(depth))
            .route("/fapi/v1/openInterest", get(open_interest))
            .route("/api/v3/exchangeInfo", get(exchange_info))
            .route("/fapi/v1/exchangeInfo", get(exchange_info))
            .with_state(market.clone());
        let listener = tokio::net::TcpListener::bind(&cfg.listen)
            .await
            .map_err(|source| ReplayError::Bind {
                addr: cfg.listen.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ReplayError::Bind {
            addr: cfg.listen.clone(),
            source,
        })?;
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "replay server stopped");
            }
        });
        tracing::info!(%addr, venue = %cfg.venue, frames = market.corpus.frames.len(), loops = cfg.loops, "replay server listening");
        Ok(ReplayServer {
            addr,
            finished: finished_rx,
            market,
        })
    }

    /// WebSocket base URL (`ws://host:port`).
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// REST base URL (`http://host:port`).
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Frames sent so far, over all connections.
    pub fn frames_sent(&self) -> u64 {
        self.market.sent.load(Ordering::Relaxed)
    }

    /// Resolves once every loop of the recording has been played.
    pub async fn finished(&self) {
        let mut rx = self.finished.clone();
        let _ = rx.wait_for(|done| *done).await;
    }
}

async fn ws(
    upgrade: WebSocketUpgrade,
    Query(q): Query<HashMap<String, String>>,
    State(m): State<Arc<Market>>,
) -> Response {
    let streams: HashSet<String> = q
        .get("streams")
        .map(|s| {
            s.split('/')
                .filter(|x| !x.is_empty())
                .map(stream_key)
                .collect()
        })
        .unwrap_or_default();
    upgrade.on_upgrade(move |socket| serve(socket, m, streams))
}

/// Answers a client message; returns false when the client is gone.
async fn control(
    socket: &mut WebSocket,
    msg: Option<Result<Message, axum::Error>>,
    subs: &mut HashSet<String>,
) -> bool {
    match msg {
        Some(Ok(Message::Text(t))) => {
            let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
            let id = v["id"].clone();
            match v["method"].as_str() {
                Some("SUBSCRIBE") => {
                    for s in v["params"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        subs.insert(stream_key(s));
                    }
                    let answer = json!({ "result": null, "id": id }).to_string();
                    socket.send(Message::Text(answer.into())).await.is_ok()
                }
                _ => {
                    let answer =
                        json!({ "code": 2, "msg": "Invalid request", "id": id }).to_string();
                    socket.send(Message::Text(answer.into())).await.is_ok()
                }
            }
        }
        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => false,
        Some(Ok(_)) => true,
    }
}

async fn serve(mut socket: WebSocket, m: Arc<Market>, mut subs: HashSet<String>) {
    // Nothing is played before the first subscription.
    while subs.is_empty() {
        let msg = socket.recv().await;
        if !control(&mut socket, msg, &mut subs).await {
            return;
        }
    }
    let len = m.corpus.frames.len();
    let total = len * m.cfg.loops.max(1) as usize;
    let mut set: Vec<&String> = subs.iter().collect();
    set.sort();
    let set_key = set.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("/");
    let mut idx = m.position(&set_key).0;
    let mut prev_time: Option<i64> = None;
    while idx < total {
        let frame = &m.corpus.frames[idx % len];
        let k = (idx / len) as i64;
        idx += 1;
        m.set_position(&set_key, idx, false);
        if !subs.contains(&frame.key) && m.cfg.speed <= 0.0 {
            continue;
        }
        let span = m.id_spans.get(&frame.symbol).copied().unwrap_or(0);
        let value = shifted(frame, k, span, m.time_span);
        let time = value["data"]["E"].as_i64().unwrap_or(frame.time_ms);
        if m.cfg.speed > 0.0 {
            if let Some(p) = prev_time {
                let wait = ((time - p).max(0) as f64 / m.cfg.speed).min(1_000.0);
                tokio::time::sleep(Duration::from_micros((wait * 1_000.0) as u64)).await;
            }
            prev_time = Some(time);
            if !subs.contains(&frame.key) {
                continue;
            }
        }
        let n = m.sent.fetch_add(1, Ordering::Relaxed) + 1;
        if m.cfg.drop_after_frames > 0
            && n == m.cfg.drop_after_frames
            && !m.dropped.swap(true, Ordering::AcqRel)
        {
            tracing::warn!(
                frames = n,
                "replay: dropping the connection (fault injection)"
            );
            return; // no close frame: an abrupt drop; this frame is lost like on a real network
        }
        // Answer whatever the client sent meanwhile (more subscriptions, pings).
        while let Some(msg) = socket.recv().now_or_never() {
            if !control(&mut socket, msg, &mut subs).await {
                return;
            }
        }
        if socket
            .send(Message::Text(value.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
        m.played(&frame.symbol, &value);
    }
    m.set_position(&set_key, total, true);
    if m.positions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .all(|p| p.1)
    {
        m.finished.send_replace(true);
    }
    // Idle like a quiet venue until the client leaves.
    loop {
        let msg = socket.recv().await;
        if !control(&mut socket, msg, &mut subs).await {
            return;
        }
    }
}

impl Market {
    fn position(&self, set: &str) -> (usize, bool) {
        let mut p = self
            .positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *p.entry(set.to_string()).or_insert((0, false))
    }

    fn set_position(&self, set: &str, idx: usize, done: bool) {
        let mut p = self
            .positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        p.insert(set.to_string(), (idx, done));
    }

    /// Keeps the served book current with every depth frame played.
    fn played(&self, symbol: &str, value: &Value) {
        let d = &value["data"];
        if d["e"].as_str() != Some("depthUpdate") {
            return;
        }
        let mut books = self.books.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((book, last)) = books.get_mut(symbol) else {
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
}

fn invalid_symbol() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "code": -1121, "msg": "Invalid symbol." })),
    )
        .into_response()
}

async fn depth(Query(q): Query<HashMap<String, String>>, State(m): State<Arc<Market>>) -> Response {
    let symbol = q.get("symbol").cloned().unwrap_or_default();
    let limit = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(1000usize);
    let books = m.books.lock().unwrap_or_else(PoisonError::into_inner);
    let Some((book, last)) = books.get(&symbol) else {
        return invalid_symbol();
    };
    let (bids, asks) = book.levels(Some(limit));
    let side = |v: Vec<crate::schema::v2beta1::level2_book::PriceLevel>| {
        v.into_iter()
            .map(|l| json!([l.price, l.quantity]))
            .collect::<Vec<_>>()
    };
    Json(json!({ "lastUpdateId": last, "bids": side(bids), "asks": side(asks) })).into_response()
}

/// Quote assets known to the synthesized symbol list, longest first.
const QUOTES: [&str; 11] = [
    "USDT", "BUSD", "USDC", "TUSD", "BTC", "ETH", "BNB", "EUR", "USD", "TRY", "GBP",
];

/// The venue's symbol list, synthesized from the recorded symbols (no exchangeInfo was
/// recorded): base/quote split on known quote assets; USD-M symbols with `_` are deliveries.
async fn exchange_info(State(m): State<Arc<Market>>) -> Response {
    let mut symbols: Vec<&str> = m
        .corpus
        .frames
        .iter()
        .map(|f| f.symbol.as_str())
        .chain(m.corpus.snapshots.keys().map(String::as_str))
        .chain(m.corpus.open_interest.keys().map(String::as_str))
        .filter(|s| !s.is_empty())
        .collect();
    symbols.sort_unstable();
    symbols.dedup();
    let usdm = m.cfg.venue == "binance_usdm";
    let list: Vec<Value> = symbols
        .into_iter()
        .filter_map(|s| {
            let pair = s.split('_').next().unwrap_or(s);
            let quote = QUOTES
                .iter()
                .find(|q| pair.ends_with(*q) && pair.len() > q.len())?;
            let base = &pair[..pair.len() - quote.len()];
            let mut v =
                json!({ "symbol": s, "status": "TRADING", "baseAsset": base, "quoteAsset": quote });
            if usdm {
                v["contractType"] = json!(if s.contains('_') {
                    "CURRENT_QUARTER"
                } else {
                    "PERPETUAL"
                });
            }
            Some(v)
        })
        .collect();
    Json(json!({ "timezone": "UTC", "symbols": list })).into_response()
}

async fn open_interest(
    Query(q): Query<HashMap<String, String>>,
    State(m): State<Arc<Market>>,
) -> Response {
    let symbol = q.get("symbol").cloned().unwrap_or_default();
    match m.corpus.open_interest.get(&symbol) {
        Some(oi) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            Json(json!({ "symbol": symbol, "openInterest": oi, "time": now })).into_response()
        }
        None => invalid_symbol(),
    }
}
