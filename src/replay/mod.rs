//! The replay engine: serves a venue's recorded messages over WebSocket and REST on a local
//! address, at recorded pace or as fast as possible, looping with shifted ids and times when
//! asked for volume. What is venue-specific (paths, the subscribe handshake, in-band or REST
//! snapshots, which fields to shift) is the venue's [`ReplayMock`], in the venue's folder.
//!
//! Mocks keep the venue's book as played so far, so a client that reconnects mid-stream can
//! resync exactly as against the live venue.

pub mod corpus;
mod mock;

pub use corpus::CorpusError;
pub use mock::{ClientAnswer, ReplayMock};

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::watch;

/// One replay server (one venue market on one port).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayServerConfig {
    /// A registered venue name (`binance`, `binance_usdm`, `binance_coinm`, `kraken`, …).
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
    #[error("replay: unknown venue {0:?}")]
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
    mock: Box<dyn ReplayMock>,
    /// How long a client may take between its subscribe messages (the venue's message
    /// spacing, plus margin): playing starts once it has been quiet that long.
    settle: Duration,
    time_span: i64,
    cfg: ReplayServerConfig,
    /// Timeline position (frame index across loops) per subscription set: a client that
    /// subscribes the same streams again (a reconnect) resumes there; `true` once finished.
    /// A connection looks its set up once and moves its position on per frame without a lookup
    /// (the set's name holds every stream's: thousands of bytes with many symbols).
    positions: Mutex<HashMap<String, Arc<Position>>>,
    /// The connection that plays each stream (by path and key): the latest to subscribe it. An older one still
    /// open is closed at its next frame of the stream (a reconnect, or another instance taking
    /// the stream over): two connections playing one stream would each move the venue's state
    /// on, and a snapshot sent to one would be ahead of frames the other still sends.
    owners: Mutex<HashMap<String, u64>>,
    /// Numbers the connections, for `owners`.
    connections: AtomicU64,
    dropped: AtomicBool,
    sent: AtomicU64,
    finished: watch::Sender<bool>,
    /// When each REST request arrived.
    rest_log: Mutex<Vec<std::time::Instant>>,
    /// When each WebSocket upgrade request arrived.
    ws_log: Mutex<Vec<std::time::Instant>>,
    /// Text messages clients sent (subscribes, heartbeats), with when; the last
    /// [`CLIENT_LOG_LIMIT`] kept.
    client_log: Mutex<std::collections::VecDeque<(std::time::Instant, String)>>,
}

/// Client messages a replay server remembers.
pub const CLIENT_LOG_LIMIT: usize = 10_000;

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
    /// Starts serving `mock`'s recording on the current tokio runtime; clients' subscribe
    /// messages are expected at up to `messages_per_second` (the venue's rate). Callers build
    /// the mock through the venue registry (`crate::venues::replay_server`).
    pub async fn start(
        cfg: ReplayServerConfig,
        mock: Box<dyn ReplayMock>,
        messages_per_second: u32,
    ) -> Result<ReplayServer, ReplayError> {
        let frames = mock.frames();
        let time_span = match (frames.first(), frames.last()) {
            (Some(a), Some(b)) => b.time_ms - a.time_ms + 1,
            _ => 1,
        };
        let (finished, finished_rx) = watch::channel(frames.is_empty());
        let paths = mock.ws_paths();
        let spacing = Duration::from_secs(1) / messages_per_second.max(1);
        let market = Arc::new(Market {
            mock,
            settle: spacing + Duration::from_millis(100),
            time_span,
            positions: Mutex::new(HashMap::new()),
            owners: Mutex::new(HashMap::new()),
            connections: AtomicU64::new(0),
            dropped: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            finished,
            rest_log: Mutex::new(Vec::new()),
            ws_log: Mutex::new(Vec::new()),
            client_log: Mutex::new(std::collections::VecDeque::new()),
            cfg: cfg.clone(),
        });
        let mut app = Router::new();
        for path in paths {
            app = app.route(path, get(ws));
        }
        let app = app.fallback(rest).with_state(market.clone());
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
        tracing::info!(%addr, venue = %cfg.venue, frames = market.mock.frames().len(), loops = cfg.loops, "replay server listening");
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

    /// When each REST request arrived (for tests of clients' rate limits).
    pub fn rest_requests(&self) -> Vec<std::time::Instant> {
        self.market
            .rest_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// When each WebSocket upgrade request arrived (for tests of connection-rate limits).
    pub fn ws_connections(&self) -> Vec<std::time::Instant> {
        self.market
            .ws_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The text messages clients sent, oldest first, with when they arrived (for tests of
    /// heartbeats, subscribes and their pacing); the last [`CLIENT_LOG_LIMIT`] only.
    pub fn client_messages(&self) -> Vec<(std::time::Instant, String)> {
        self.market
            .client_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Resolves once every loop of the recording has been played.
    pub async fn finished(&self) {
        let mut rx = self.finished.clone();
        let _ = rx.wait_for(|done| *done).await;
    }
}

async fn ws(
    upgrade: WebSocketUpgrade,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    State(m): State<Arc<Market>>,
) -> Response {
    m.ws_log
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(std::time::Instant::now());
    let path = uri.path().to_string();
    let streams: HashSet<String> = m
        .mock
        .url_subscriptions(&q)
        .into_iter()
        .filter(|k| m.mock.serves(&path, k))
        .collect();
    upgrade
        .read_buffer_size(crate::transport::ws::READ_CHUNK_BYTES)
        .on_upgrade(move |socket| serve(socket, m, streams, path))
}

/// REST requests go to the venue's mock.
async fn rest(
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    State(m): State<Arc<Market>>,
) -> Response {
    m.rest_log
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(std::time::Instant::now());
    match m.mock.rest(uri.path(), &q) {
        Some((status, body)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// One client connection: its socket, its subscriptions and how many messages it was sent
/// (venues that number the messages of a connection number them from this count).
struct Client {
    /// Its number (see `Market::owners`).
    id: u64,
    socket: WebSocket,
    subs: HashSet<String>,
    /// Every stream this client has subscribed on this connection (also those it left).
    ever: HashSet<String>,
    path: String,
    sent: u64,
}

impl Client {
    /// Sends text frames, numbered by the mock; false when the client is gone.
    async fn send_all(&mut self, m: &Market, texts: Vec<String>) -> bool {
        for t in texts {
            let t = m.mock.sequence(t, self.sent);
            self.sent += 1;
            if self.socket.send(Message::Text(t.into())).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Answers a client message; returns false when the client is gone.
    async fn control(&mut self, m: &Market, msg: Option<Result<Message, axum::Error>>) -> bool {
        match msg {
            Some(Ok(Message::Text(t))) => {
                {
                    let mut log = m.client_log.lock().unwrap_or_else(PoisonError::into_inner);
                    if log.len() >= CLIENT_LOG_LIMIT {
                        log.pop_front();
                    }
                    log.push_back((std::time::Instant::now(), t.as_str().to_string()));
                }
                let answer = m.mock.on_client(t.as_str());
                for key in &answer.unsubscribe {
                    self.subs.remove(key);
                }
                if !self.send_all(m, answer.replies).await {
                    return false;
                }
                // A stream this path does not serve is acknowledged and never played.
                for key in answer.subscribe {
                    if !m.mock.serves(&self.path, &key) {
                        continue;
                    }
                    // Owned and snapshotted in one step (see the play loop).
                    let first = {
                        let mut owners = m.owners.lock().unwrap_or_else(PoisonError::into_inner);
                        owners.insert(format!("{}|{key}", self.path), self.id);
                        m.mock.on_subscribed(&key)
                    };
                    self.ever.insert(key.clone());
                    self.subs.insert(key);
                    if !self.send_all(m, first).await {
                        return false;
                    }
                }
                true
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => false,
            Some(Ok(_)) => true,
        }
    }
}

/// What the play loop does with a frame.
enum Play {
    /// Send it.
    Send(serde_json::Value),
    /// The mock renders nothing for it.
    Nothing,
    /// A newer connection plays the stream now: this one closes.
    TakenOver,
    /// Fault injection: the connection drops here (the number of frames sent).
    Drop(u64),
}

async fn serve(socket: WebSocket, m: Arc<Market>, subs: HashSet<String>, path: String) {
    let id = m.connections.fetch_add(1, Ordering::Relaxed);
    for key in &subs {
        m.own(&path, key, id);
    }
    let mut c = Client {
        id,
        socket,
        ever: subs.clone(),
        subs,
        path,
        sent: 0,
    };
    // Nothing is played before the first subscription, nor while more subscribe messages
    // are still coming (a venue subscribed over several messages, paced).
    while c.subs.is_empty() {
        let msg = c.socket.recv().await;
        if !c.control(&m, msg).await {
            return;
        }
    }
    while let Ok(msg) = tokio::time::timeout(m.settle, c.socket.recv()).await {
        if !c.control(&m, msg).await {
            return;
        }
    }
    let frames = m.mock.frames();
    let len = frames.len();
    let total = len * m.cfg.loops.max(1) as usize;
    let mut set: Vec<&String> = c.subs.iter().collect();
    set.sort();
    // A connection continues where the last one with the same subscriptions on the same path
    // left off (a reconnect); another endpoint's streams of the same name are another market
    // (Bybit's spot and linear `publicTrade.BTCUSDT`).
    let names = set.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("/");
    let set_key = format!("{}|{names}", c.path);
    let position = m.position(&set_key);
    let mut idx = position.idx.load(Ordering::Acquire);
    let mut prev_time: Option<i64> = None;
    let mut due = tokio::time::Instant::now();
    while idx < total {
        let frame = &frames[idx % len];
        let k = (idx / len) as i64;
        if idx % len == 0 && k > 0 {
            let fresh = m.mock.on_loop(k, &c.subs);
            if !c.send_all(&m, fresh).await {
                return;
            }
        }
        idx += 1;
        if m.cfg.speed > 0.0 {
            // Each frame is due at its recorded time from the previous one (scaled by
            // `speed`; a recorded silence is cut to 1 s), on one schedule: a timer's lateness
            // does not add up frame after frame (sleeping each gap in turn played a 2 000
            // frames/s recording at ~350/s), and frames already due go without a sleep.
            let time = frame.time_ms + k * m.time_span;
            if let Some(p) = prev_time {
                let gap = ((time - p).max(0) as f64 / m.cfg.speed).min(1_000.0);
                due += Duration::from_micros((gap * 1_000.0) as u64);
                if due > tokio::time::Instant::now() {
                    tokio::time::sleep_until(due).await;
                }
            }
            prev_time = Some(time);
        }
        // Answer whatever the client sent meanwhile (more subscriptions, pings).
        while let Some(msg) = c.socket.recv().now_or_never() {
            if !c.control(&m, msg).await {
                return;
            }
        }
        if !c.subs.contains(&frame.key) {
            position.idx.store(idx, Ordering::Release);
            // A stream this client left for a while (a resubscribe) moves on without it: the
            // snapshot it gets on coming back includes what it missed. Streams it never
            // subscribed are other connections' (each replays at its own pace).
            if c.ever.contains(&frame.key) {
                m.mock.passed(frame, k);
            }
            continue;
        }
        // Taking the stream over, moving the timeline on and moving the venue's state on are
        // one step under the owners' lock (the servers may run on several threads): a newer
        // connection's snapshot either includes this frame and resumes after it, or neither.
        let value = {
            let owners = m.owners.lock().unwrap_or_else(PoisonError::into_inner);
            if owners
                .get(&format!("{}|{}", c.path, frame.key))
                .is_some_and(|o| *o != c.id)
            {
                Play::TakenOver
            } else {
                position.idx.store(idx, Ordering::Release);
                match m.mock.render(frame, k) {
                    None => Play::Nothing,
                    Some(value) => {
                        // The venue's state moves on with the frame as it is sent, whether or
                        // not this client gets it (it left, its connection broke, or a fault
                        // is injected): a snapshot taken meanwhile for another client includes
                        // it, as the timeline position it resumes from is past it.
                        m.mock.played(frame, &value, k);
                        let n = m.sent.fetch_add(1, Ordering::Relaxed) + 1;
                        if m.cfg.drop_after_frames > 0
                            && n == m.cfg.drop_after_frames
                            && !m.dropped.swap(true, Ordering::AcqRel)
                        {
                            Play::Drop(n)
                        } else {
                            Play::Send(value)
                        }
                    }
                }
            }
        };
        let value = match value {
            Play::Send(value) => value,
            Play::Nothing => continue,
            Play::TakenOver => {
                tracing::info!(stream = %frame.key, "replay: a newer connection took this stream over; closing this one");
                return;
            }
            Play::Drop(frames) => {
                // Only this client never gets the frame, like one lost on a real network.
                tracing::warn!(frames, "replay: dropping the connection (fault injection)");
                return; // no close frame: an abrupt drop
            }
        };
        let delivered = c.send_all(&m, vec![value.to_string()]).await;
        if !delivered {
            return;
        }
    }
    position.idx.store(total, Ordering::Release);
    position.done.store(true, Ordering::Release);
    if m.positions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .all(|p| p.done.load(Ordering::Acquire))
    {
        m.finished.send_replace(true);
    }
    // Idle like a quiet venue until the client leaves.
    loop {
        let msg = c.socket.recv().await;
        if !c.control(&m, msg).await {
            return;
        }
    }
}

impl Market {
    /// Connection `id` plays `key` on `path` from now on (another endpoint's stream of the
    /// same name is another market's: Bybit's spot and linear `publicTrade.BTCUSDT`).
    fn own(&self, path: &str, key: &str, id: u64) {
        self.owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(format!("{path}|{key}"), id);
    }

    /// The timeline position of subscription set `set` (from the start for a new set).
    fn position(&self, set: &str) -> Arc<Position> {
        let mut p = self
            .positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(p.entry(set.to_string()).or_default())
    }
}

/// Where a subscription set's timeline is: the next frame index (across loops) and whether it
/// finished.
#[derive(Debug, Default)]
struct Position {
    idx: AtomicUsize,
    done: AtomicBool,
}
