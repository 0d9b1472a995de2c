//! One feed's connection loop: connect, subscribe within the venue's limits, read frames,
//! keep books in sync (REST snapshots rate-limited and staggered), produce records with a
//! bounded number awaiting their Ack, and reconnect with exponential backoff and jitter.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use super::books::BookKeeper;
use super::FeedStats;
use crate::book::Snapshot;
use crate::config::{FeedConfig, SymbolSource};
use crate::metrics::{FeedErrorLabels, FeedLabels, Metrics};
use crate::producer::{Ack, Nack, ProduceEvent};
use crate::schema::Normalized;
use crate::supervisor::ProducerHandle;
use crate::venues::{Channel, ParseError, SymbolMap, Venue, VenueEvent};

/// Why a session ended.
#[derive(Debug, Error)]
pub enum SessionError {
    /// The connection could not be opened.
    #[error("connect {url}: {source}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// Reading or writing failed.
    #[error("websocket: {0}")]
    Socket(Box<tokio_tungstenite::tungstenite::Error>),
    /// No frame for the configured time.
    #[error("stale: no frame for {0:?}")]
    Stale(Duration),
    /// The venue closed the connection.
    #[error("closed by the venue")]
    Closed,
    /// The venue refused a request (e.g. a bad subscription).
    #[error("venue refused: {0}")]
    Venue(ParseError),
}

impl SessionError {
    /// Terminal errors are configuration problems a reconnect cannot fix; they are still
    /// retried with the longest backoff so the feed recovers if the venue changes its mind.
    pub fn is_terminal(&self) -> bool {
        matches!(self, SessionError::Venue(_))
    }
}

/// How a session ended without error.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// Asked to stop.
    Stopped,
    /// Rotated before the venue's forced disconnect.
    Rotated,
}

type Answer = oneshot::Receiver<Result<Ack, Nack>>;

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Everything one feed needs; lives across sessions.
pub struct Feed {
    /// Its config.
    pub cfg: FeedConfig,
    /// The venue implementation.
    pub venue: Arc<dyn Venue>,
    /// Where records go.
    pub producer: ProducerHandle,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Counters for progress and readiness.
    pub stats: Arc<FeedStats>,
    labels: FeedLabels,
    http: reqwest::Client,
}

impl Feed {
    /// A feed for `cfg` (validated).
    pub fn new(
        cfg: FeedConfig,
        venue: Arc<dyn Venue>,
        producer: ProducerHandle,
        stats: Arc<FeedStats>,
    ) -> Feed {
        // TLS for wss:// is rustls with the ring provider (set once per process; later calls
        // find it installed).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let metrics = producer.metrics();
        let labels = FeedLabels {
            exchange: venue.exchange().to_string(),
        };
        Feed {
            cfg,
            venue,
            producer,
            metrics,
            stats,
            labels,
            http: reqwest::Client::new(),
        }
    }

    fn error(&self, kind: &str) {
        self.metrics
            .feed_errors
            .get_or_create(&FeedErrorLabels {
                exchange: self.labels.exchange.clone(),
                kind: kind.to_string(),
            })
            .inc();
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Stream names for (normalized, venue symbol) pairs.
    fn streams(&self, pairs: &[(String, String)]) -> Vec<String> {
        pairs
            .iter()
            .flat_map(|(_, v)| {
                self.cfg
                    .channels
                    .iter()
                    .filter_map(move |c| self.venue.stream_name(v, *c))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The (normalized, venue symbol) pairs to subscribe: from the venue's `exchangeInfo`
    /// (symbols it does not list are counted and skipped), or pinned from the configured names
    /// when so configured or when the list cannot be fetched.
    async fn resolve_symbols(&self) -> (SymbolMap, Vec<(String, String)>) {
        let pinned = || -> Vec<(String, String)> {
            self.cfg
                .symbols
                .iter()
                .map(|s| (s.clone(), self.venue.venue_symbol(s)))
                .collect()
        };
        let pairs = match (self.cfg.symbol_source, self.venue.exchange_info_path()) {
            (SymbolSource::ExchangeInfo, Some(path)) => {
                let listed = get_text(&self.http, &format!("{}{path}", self.rest_base()))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|body| {
                        self.venue
                            .parse_exchange_info(&body)
                            .map_err(|e| e.to_string())
                    });
                match listed {
                    Ok(list) => {
                        let by_norm: HashMap<String, String> =
                            list.into_iter().map(|(v, n)| (n, v)).collect();
                        let mut pairs = Vec::new();
                        for s in &self.cfg.symbols {
                            match by_norm.get(s) {
                                Some(v) => pairs.push((s.clone(), v.clone())),
                                None => {
                                    self.error("unknown_symbol");
                                    tracing::error!(exchange = %self.labels.exchange, symbol = %s, "symbol not listed by the venue; skipped");
                                }
                            }
                        }
                        pairs
                    }
                    Err(e) => {
                        tracing::warn!(exchange = %self.labels.exchange, error = %e, "exchangeInfo unavailable; using pinned symbols");
                        pinned()
                    }
                }
            }
            _ => pinned(),
        };
        let map = SymbolMap::new(pairs.iter().map(|(n, v)| (v.clone(), n.clone())));
        (map, pairs)
    }

    /// Runs sessions until `stop` turns true, reconnecting with backoff and jitter.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        let backoff = || {
            ExponentialBuilder::new()
                .with_min_delay(Duration::from_millis(self.cfg.reconnect_min_ms))
                .with_max_delay(Duration::from_millis(self.cfg.reconnect_max_ms))
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut delays = backoff();
        let mut books = BookKeeper::new(
            self.venue.exchange(),
            self.venue.book_rules(),
            self.cfg.book_snapshot_every,
            self.cfg.depth_limit,
        );
        loop {
            let started = Instant::now();
            let result = self.session(&mut books, &mut stop).await;
            self.metrics
                .feed_connected
                .get_or_create(&self.labels)
                .set(0);
            self.stats.set_connected(false);
            match result {
                Ok(SessionEnd::Stopped) => return,
                Ok(SessionEnd::Rotated) => {
                    tracing::info!(exchange = %self.labels.exchange, "rotating the connection before the venue's forced disconnect");
                    self.metrics
                        .feed_reconnects
                        .get_or_create(&self.labels)
                        .inc();
                    delays = backoff();
                    continue;
                }
                Err(e) => {
                    if started.elapsed() > Duration::from_secs(30) {
                        delays = backoff();
                    }
                    let delay = if e.is_terminal() {
                        Duration::from_millis(self.cfg.reconnect_max_ms)
                    } else {
                        delays
                            .next()
                            .unwrap_or(Duration::from_millis(self.cfg.reconnect_max_ms))
                    };
                    self.metrics
                        .feed_reconnects
                        .get_or_create(&self.labels)
                        .inc();
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(exchange = %self.labels.exchange, error = %e, ?delay, "feed disconnected; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    }

    async fn session(
        &self,
        books: &mut BookKeeper,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<SessionEnd, SessionError> {
        let base = self
            .cfg
            .ws_url
            .as_deref()
            .unwrap_or(self.venue.default_ws_url());
        let url = format!("{}{}", base.trim_end_matches('/'), self.venue.ws_path());
        let ws_cfg = WebSocketConfig::default()
            .max_message_size(Some(self.cfg.max_frame_bytes.saturating_mul(4)))
            .max_frame_size(Some(self.cfg.max_frame_bytes.saturating_mul(4)));
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(&url, Some(ws_cfg), false)
            .await
            .map_err(|e| SessionError::Connect {
                url: url.clone(),
                source: Box::new(e),
            })?;
        tracing::info!(exchange = %self.labels.exchange, %url, "feed connected");

        // Subscribe within the venue's limits: streams per message and messages per second.
        let (symbols, pairs) = self.resolve_symbols().await;
        let venue_of: HashMap<String, String> = pairs.iter().cloned().collect();
        let streams = self.streams(&pairs);
        let per_msg = 200.min(self.venue.max_streams_per_connection());
        let gap = Duration::from_secs(1) / self.venue.max_messages_per_second().max(1);
        for (i, chunk) in streams.chunks(per_msg).enumerate() {
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            let req = self.venue.subscribe_request(chunk, i as u64 + 1);
            ws.send(Message::text(req))
                .await
                .map_err(|e| SessionError::Socket(Box::new(e)))?;
        }
        self.metrics
            .feed_connected
            .get_or_create(&self.labels)
            .set(1);
        self.stats.set_connected(true);

        // A new connection means every book must resync.
        books.reset_all();
        let depth = self.cfg.channels.contains(&Channel::Depth);
        let (snap_req_tx, snap_req_rx) = mpsc::unbounded_channel::<String>();
        let (snap_tx, mut snap_rx) =
            mpsc::unbounded_channel::<(String, Result<Snapshot, String>)>();
        let fetcher = tokio::spawn(snapshot_fetcher(
            SnapshotFetcher {
                http: self.http.clone(),
                base: self.rest_base(),
                venue: self.venue.clone(),
                venue_of: venue_of.clone(),
                limit: self.cfg.snapshot_limit,
                spacing: Duration::from_millis(self.cfg.snapshot_interval_ms),
            },
            snap_req_rx,
            snap_tx,
        ));
        let _fetcher_guard = AbortOnDrop(fetcher);
        let mut requested: HashSet<String> = HashSet::new();
        if depth {
            for (s, _) in &pairs {
                requested.insert(s.clone());
                let _ = snap_req_tx.send(s.clone());
            }
        }
        let oi = self.cfg.channels.contains(&Channel::OpenInterest);
        let mut oi_tick = tokio::time::interval(Duration::from_millis(
            self.cfg.open_interest_poll_ms.max(100),
        ));

        let rotate_after = self
            .cfg
            .rotate_after_ms
            .map(Duration::from_millis)
            .unwrap_or(
                self.venue
                    .connection_lifetime()
                    .saturating_sub(Duration::from_secs(600)),
            );
        let rotate = tokio::time::sleep(rotate_after);
        tokio::pin!(rotate);
        let stale = Duration::from_millis(self.cfg.stale_after_ms);
        let mut pending: FuturesUnordered<Answer> = FuturesUnordered::new();
        let mut parsed = Vec::new();
        let mut backlog: VecDeque<ProduceEvent> = VecDeque::new();

        let end = loop {
            // Records waiting for room go first: reading pauses while the producers are behind.
            while pending.len() < self.cfg.max_outstanding {
                let Some(r) = backlog.pop_front() else { break };
                pending.push(self.producer.submit(r).await);
            }
            let can_read = pending.len() < self.cfg.max_outstanding && backlog.is_empty();
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break Ok(SessionEnd::Stopped),
                Some(answer) = pending.next(), if !pending.is_empty() => self.count(answer),
                () = &mut rotate => break Ok(SessionEnd::Rotated),
                Some((symbol, snap)) = snap_rx.recv() => {
                    requested.remove(&symbol);
                    match snap {
                        Ok(snap) => match books.on_snapshot(&symbol, &snap, now_us()) {
                            Ok(out) => {
                                if out.synced {
                                    tracing::info!(exchange = %self.labels.exchange, %symbol, last_update_id = snap.last_update_id, "order book synced");
                                    self.metrics.book_syncs.get_or_create(&self.labels).inc();
                                    self.stats.syncs.fetch_add(1, Ordering::Relaxed);
                                }
                                if out.need_snapshot && requested.insert(symbol.clone()) {
                                    let _ = snap_req_tx.send(symbol.clone());
                                }
                                backlog.extend(out.records);
                            }
                            Err(e) => {
                                self.error("bad_decimal");
                                tracing::warn!(%symbol, error = %e, "snapshot refused");
                            }
                        },
                        Err(e) => {
                            self.error("snapshot");
                            tracing::warn!(%symbol, error = %e, "snapshot request failed; retrying");
                            if requested.insert(symbol.clone()) {
                                let _ = snap_req_tx.send(symbol);
                            }
                        }
                    }
                }
                _ = oi_tick.tick(), if oi => {
                    for (s, v) in &pairs {
                        match self.open_interest(v, &symbols).await {
                            Ok(r) => backlog.push_back(ProduceEvent::typed(r)),
                            Err(e) => {
                                self.error(e.kind());
                                tracing::warn!(symbol = %s, error = %e, "open interest poll failed");
                            }
                        }
                    }
                }
                frame = tokio::time::timeout(stale, ws.next()), if can_read => {
                    let msg = match frame {
                        Err(_) => break Err(SessionError::Stale(stale)),
                        Ok(None) => break Err(SessionError::Closed),
                        Ok(Some(Err(e))) => {
                            if matches!(e, tokio_tungstenite::tungstenite::Error::Capacity(_)) {
                                self.error("oversized");
                            }
                            break Err(SessionError::Socket(Box::new(e)));
                        }
                        Ok(Some(Ok(m))) => m,
                    };
                    let text = match msg {
                        Message::Text(t) => t,
                        Message::Close(_) => break Err(SessionError::Closed),
                        Message::Binary(_) => {
                            self.error("unsupported");
                            continue;
                        }
                        // Pings are answered by tungstenite itself; pongs need nothing.
                        _ => continue,
                    };
                    self.metrics.feed_frames.get_or_create(&self.labels).inc();
                    self.stats.frames.fetch_add(1, Ordering::Relaxed);
                    if text.len() > self.cfg.max_frame_bytes {
                        self.error("oversized");
                        tracing::warn!(bytes = text.len(), "oversized frame dropped");
                        continue;
                    }
                    parsed.clear();
                    if let Err(e) = self.venue.parse(text.as_str(), now_us(), &symbols, &mut parsed) {
                        self.error(e.kind());
                        if e.is_terminal() {
                            break Err(SessionError::Venue(e));
                        }
                        tracing::debug!(error = %e, "frame dropped");
                        continue;
                    }
                    for ev in parsed.drain(..) {
                        match ev {
                            VenueEvent::Record(r) => backlog.push_back(ProduceEvent::typed(r)),
                            VenueEvent::Encoded(e) => backlog.push_back(ProduceEvent::encoded(e)),
                            VenueEvent::Control => {}
                            VenueEvent::Diff { symbol, diff } => match books.on_diff(&symbol, diff) {
                                Ok(out) => {
                                    if let Some((expected, got)) = out.gap {
                                        self.metrics.book_gaps.get_or_create(&self.labels).inc();
                                        self.stats.gaps.fetch_add(1, Ordering::Relaxed);
                                        tracing::warn!(exchange = %self.labels.exchange, %symbol, expected, got, "order-book gap; resyncing");
                                    }
                                    if out.need_snapshot && requested.insert(symbol.clone()) {
                                        let _ = snap_req_tx.send(symbol.clone());
                                    }
                                    backlog.extend(out.records);
                                }
                                Err(e) => {
                                    self.error("bad_decimal");
                                    tracing::warn!(%symbol, error = %e, "diff refused");
                                }
                            },
                        }
                    }
                }
            }
        };
        // Whatever was read is still produced and answered before the session ends.
        for r in backlog.drain(..) {
            pending.push(self.producer.submit(r).await);
        }
        while let Some(answer) = pending.next().await {
            self.count(answer);
        }
        let _ = ws.close(None).await;
        end
    }

    fn count(&self, answer: Result<Result<Ack, Nack>, oneshot::error::RecvError>) {
        match answer {
            Ok(Ok(_)) => self.stats.acked.fetch_add(1, Ordering::Relaxed),
            _ => self.stats.nacked.fetch_add(1, Ordering::Relaxed),
        };
    }

    fn rest_base(&self) -> String {
        self.cfg
            .rest_url
            .clone()
            .unwrap_or_else(|| self.venue.default_rest_url().to_string())
    }

    async fn open_interest(
        &self,
        venue_symbol: &str,
        symbols: &SymbolMap,
    ) -> Result<Normalized, ParseError> {
        let Some(path) = self.venue.open_interest_path(venue_symbol) else {
            return Err(ParseError::Unsupported("open interest".into()));
        };
        let body = get_text(&self.http, &format!("{}{path}", self.rest_base()))
            .await
            .map_err(|e| ParseError::Unsupported(format!("REST: {e}")))?;
        self.venue.parse_open_interest(&body, now_us(), symbols)
    }
}

async fn get_text(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let resp = http
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!(
            "HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        ))
    }
}

/// Fetches snapshots one at a time, at most one per `spacing` (so many symbols resyncing at
/// once do not hit the venue's rate limit), and sends them back to the session.
struct SnapshotFetcher {
    http: reqwest::Client,
    base: String,
    venue: Arc<dyn Venue>,
    venue_of: HashMap<String, String>,
    limit: u32,
    spacing: Duration,
}

async fn snapshot_fetcher(
    f: SnapshotFetcher,
    mut requests: mpsc::UnboundedReceiver<String>,
    results: mpsc::UnboundedSender<(String, Result<Snapshot, String>)>,
) {
    let SnapshotFetcher {
        http,
        base,
        venue,
        venue_of,
        limit,
        spacing,
    } = f;
    let mut last: Option<Instant> = None;
    while let Some(symbol) = requests.recv().await {
        if let Some(t) = last {
            tokio::time::sleep(spacing.saturating_sub(t.elapsed())).await;
        }
        last = Some(Instant::now());
        let url = format!(
            "{base}{}",
            venue.snapshot_path(
                venue_of
                    .get(&symbol)
                    .map_or(symbol.as_str(), String::as_str),
                limit
            )
        );
        let snap = match get_text(&http, &url).await {
            Ok(body) => venue.parse_snapshot(&body).map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if results.send((symbol, snap)).is_err() {
            return;
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
