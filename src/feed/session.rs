//! One feed's connection loop: connect, let the venue's session subscribe (paced at the
//! venue's message rate, confirmations awaited with a timeout), send its heartbeat, read text
//! and binary frames, keep books in sync (REST snapshots rate-limited and staggered, or in-band
//! snapshots by resubscribing), produce records with a bounded number awaiting their Ack, turn
//! every break of continuity into a `FeedEvent` record, and reconnect with exponential backoff
//! and jitter. Open interest is polled beside the frame loop, not inside it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use super::books::{feed_event, BookKeeper, BookOutput};
use super::outage::{Cause, Episode, Outage, Sent};
use super::FeedStats;
use crate::book::{Snapshot, SnapshotSource};
use crate::config::{FeedConfig, SymbolSource};
use crate::metrics::{FeedErrorLabels, FeedLabels, LostLabels, Metrics};
use crate::producer::{Ack, Nack, ProduceEvent};
use crate::schema::v2beta1::feed_event::Kind;
use crate::schema::Normalized;
use crate::supervisor::ProducerHandle;
use crate::transport::{snapshot_backoff, RestBudget, RestClient, RestError};
use crate::venues::{
    Channel, Delivery, Frame, Instrument, ParseError, SessionSpec, Subscription, SymbolMap, Venue,
    VenueEvent, VenueSession,
};

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
    /// Subscriptions were not confirmed in time.
    #[error("{0} subscription(s) not confirmed within {1:?}")]
    SubscribeTimeout(usize, Duration),
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

/// An answer and what was sent (a lost record is counted; a lost book record resyncs it).
type Tagged = (Result<Result<Ack, Nack>, oneshot::error::RecvError>, Sent);

/// Awaits one answer and hands back what was sent with it.
struct Awaited {
    answer: Answer,
    sent: Option<Sent>,
}

impl std::future::Future for Awaited {
    type Output = Tagged;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Tagged> {
        let answer = std::task::ready!(std::pin::Pin::new(&mut self.answer).poll(cx));
        std::task::Poll::Ready((answer, self.sent.take().unwrap_or_default()))
    }
}

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
    /// The venue's REST budget, shared by every connection to the venue.
    http: RestClient,
}

/// The REST client of a venue: its published weight budget (or `rest_weight_per_minute`, the
/// smallest configured for it), bursts of a tenth of it. One per venue, shared by all its feeds.
pub fn rest_client(venue: &dyn Venue, configured: Option<u32>) -> RestClient {
    let limits = venue.limits();
    let per_minute = configured.unwrap_or(limits.rest_weight_per_minute);
    let budget = RestBudget {
        weight_per_minute: per_minute,
        burst: (per_minute / 10).max(limits.snapshot_weight),
    };
    RestClient::new(budget, REST_BODY_LIMIT, Duration::from_secs(10))
}

impl Feed {
    /// A feed for `cfg` (validated); REST calls go through `http`, the venue's budget.
    pub fn new(
        cfg: FeedConfig,
        venue: Arc<dyn Venue>,
        producer: ProducerHandle,
        stats: Arc<FeedStats>,
        http: RestClient,
    ) -> Feed {
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
            http,
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

    /// The (normalized, venue symbol) pairs to subscribe: from the venue's instrument list
    /// (symbols it does not list are counted and skipped), or pinned from the configured names
    /// when so configured, when the venue has no list, or when it cannot be fetched.
    async fn resolve_symbols(&self) -> (SymbolMap, Vec<(String, String)>) {
        let pinned = || -> Vec<(String, String)> {
            self.cfg
                .symbols
                .iter()
                .filter_map(|s| {
                    Some((
                        s.clone(),
                        self.venue.venue_symbol(&Instrument::parse(s).ok()?),
                    ))
                })
                .collect()
        };
        let requests = self.venue.instrument_requests();
        let pairs = if self.cfg.symbol_source == SymbolSource::ExchangeInfo && !requests.is_empty()
        {
            match self.list_instruments(requests).await {
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
                    tracing::warn!(exchange = %self.labels.exchange, error = %e, "instrument list unavailable; using pinned symbols");
                    pinned()
                }
            }
        } else {
            pinned()
        };
        let map = SymbolMap::new(pairs.iter().map(|(n, v)| (v.clone(), n.clone())));
        (map, pairs)
    }

    /// Every (venue symbol, normalized symbol) pair the venue lists: each request of
    /// [`Venue::instrument_requests`], following its pages (at most [`MAX_INSTRUMENT_PAGES`]).
    async fn list_instruments(
        &self,
        requests: Vec<String>,
    ) -> Result<Vec<(String, String)>, String> {
        let base = self.rest_base();
        let mut all = Vec::new();
        for first in requests {
            let mut path = Some(first);
            let mut pages = 0;
            while let Some(p) = path.take() {
                pages += 1;
                if pages > MAX_INSTRUMENT_PAGES {
                    return Err(format!(
                        "instrument list longer than {MAX_INSTRUMENT_PAGES} pages"
                    ));
                }
                let body = get_text(&self.http, &format!("{base}{p}"), INSTRUMENTS_WEIGHT)
                    .await
                    .map_err(|e| e.to_string())?;
                let page = self
                    .venue
                    .parse_instruments_page(&p, &body)
                    .map_err(|e| e.to_string())?;
                all.extend(page.pairs);
                path = page.next;
            }
        }
        Ok(all)
    }

    /// Runs sessions until `stop` turns true, reconnecting with backoff and jitter.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        let backoff = || {
            ExponentialBuilder::new()
                .with_min_delay(self.cfg.reconnect_min)
                .with_max_delay(self.cfg.reconnect_max)
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut delays = backoff();
        let mut books = BookKeeper::new(
            self.venue.exchange(),
            self.venue.sequencer(self.cfg.snapshot_limit),
            self.cfg.book_snapshot_every,
            self.cfg.depth_limit,
        );
        // When the previous connection ended and why: announced once the next one is up.
        let mut lost: Option<(i64, String)> = None;
        let mut outage = Outage::new(self.cfg.shed_after, now_us());
        loop {
            let started = Instant::now();
            let result = self
                .session(&mut books, &mut stop, &mut lost, &mut outage)
                .await;
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
                    lost.get_or_insert((
                        now_us(),
                        "rotated before the venue's forced disconnect".into(),
                    ));
                    delays = backoff();
                    continue;
                }
                Err(e) => {
                    if started.elapsed() > Duration::from_secs(30) {
                        delays = backoff();
                    }
                    let delay = if e.is_terminal() {
                        self.cfg.reconnect_max
                    } else {
                        delays.next().unwrap_or(self.cfg.reconnect_max)
                    };
                    self.metrics
                        .feed_reconnects
                        .get_or_create(&self.labels)
                        .inc();
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(exchange = %self.labels.exchange, error = %e, ?delay, "feed disconnected; reconnecting");
                    lost.get_or_insert((now_us(), e.to_string()));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    }

    /// The subscriptions of this feed for the resolved (normalized, venue symbol) pairs;
    /// channels the venue serves over REST (open interest on Binance) are polled, not
    /// subscribed.
    fn subscriptions(&self, pairs: &[(String, String)]) -> Vec<Subscription> {
        pairs
            .iter()
            .flat_map(|(n, v)| {
                self.cfg
                    .channels
                    .iter()
                    .filter(|c| self.venue.delivery(**c) == Delivery::Stream)
                    .map(move |c| Subscription {
                        channel: *c,
                        symbol: n.clone(),
                        venue_symbol: v.clone(),
                    })
            })
            .collect()
    }

    fn feed_event(&self, symbol: &str, kind: Kind, reason: String, action: &str) -> ProduceEvent {
        ProduceEvent::typed(Normalized::FeedEvent(feed_event(
            self.venue.exchange(),
            symbol,
            kind,
            reason,
            action,
            now_us(),
        )))
    }

    /// Counts and logs what a book step reports; asks for a snapshot when needed.
    fn book_step(
        &self,
        symbol: &str,
        out: BookOutput,
        backlog: &mut VecDeque<ProduceEvent>,
        resync: &mut Resync,
    ) {
        let ex = &self.labels.exchange;
        if let Some((expected, got)) = out.gap {
            self.metrics.book_gaps.get_or_create(&self.labels).inc();
            self.stats.gaps.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(exchange = %ex, %symbol, expected, got, "order-book gap; resyncing");
        }
        if let Some(b) = &out.broken {
            self.error(b.kind());
            self.stats.gaps.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(exchange = %ex, %symbol, error = %b, "order book discarded; resyncing");
        }
        if let Some(why) = out.rejected {
            self.error("rejected_update");
            tracing::warn!(exchange = %ex, %symbol, reason = why, "impossible book update rejected");
        }
        if out.dropped {
            self.metrics
                .book_diffs_dropped
                .get_or_create(&self.labels)
                .inc();
        }
        if out.overflowed > 0 {
            for _ in 0..out.overflowed {
                self.error("buffer_overflow");
            }
        }
        if let Some(e) = &out.bad_decimal {
            self.error("bad_decimal");
            tracing::warn!(exchange = %ex, %symbol, error = %e, "book level refused; resyncing");
        }
        if out.synced {
            tracing::info!(exchange = %ex, %symbol, "order book synced");
            self.metrics.book_syncs.get_or_create(&self.labels).inc();
            self.stats.syncs.fetch_add(1, Ordering::Relaxed);
            resync.synced(symbol);
        }
        if out.need_snapshot {
            resync.request(symbol);
        }
        backlog.extend(out.records);
    }

    async fn session(
        &self,
        books: &mut BookKeeper,
        stop: &mut watch::Receiver<bool>,
        lost: &mut Option<(i64, String)>,
        outage: &mut Outage,
    ) -> Result<SessionEnd, SessionError> {
        let (symbols, pairs) = self.resolve_symbols().await;
        let venue_of: HashMap<String, String> = pairs.iter().cloned().collect();
        let base = self
            .cfg
            .ws_url
            .as_deref()
            .unwrap_or(self.venue.default_ws_url());
        let mut vs: Box<dyn VenueSession> = self.venue.session(SessionSpec {
            subscriptions: self.subscriptions(&pairs),
            symbols: symbols.clone(),
            book_depth: self.cfg.snapshot_limit,
            ws_url: base.to_string(),
        });
        let url = format!("{}{}", base.trim_end_matches('/'), vs.path());
        let mut ws = crate::transport::ws::connect(&url, self.frame_cap())
            .await
            .map_err(|e| SessionError::Connect {
                url: url.clone(),
                source: Box::new(e),
            })?;
        tracing::info!(exchange = %self.labels.exchange, %url, "feed connected");

        // Subscribe at the venue's message rate.
        let limits = self.venue.limits();
        let gap = Duration::from_secs(1) / limits.max_messages_per_second.max(1);
        for (i, msg) in vs.subscribe().into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            ws.send(Message::text(msg))
                .await
                .map_err(|e| SessionError::Socket(Box::new(e)))?;
        }
        let confirm_by = tokio::time::sleep(vs.subscribe_timeout());
        tokio::pin!(confirm_by);
        let mut confirming = true;
        self.metrics
            .feed_connected
            .get_or_create(&self.labels)
            .set(1);
        self.stats.set_connected(true);
        let mut backlog: VecDeque<ProduceEvent> = VecDeque::new();
        if let Some((since, why)) = lost.take() {
            let mut ev = feed_event(
                self.venue.exchange(),
                "",
                Kind::Reconnect,
                format!("connection lost: {why}; every book of it resyncs"),
                "reconnect",
                now_us(),
            );
            ev.since = Some(since);
            backlog.push_back(ProduceEvent::typed(Normalized::FeedEvent(ev)));
        }

        // A new connection means every book must resync.
        books.reset_all();
        let depth = self.cfg.channels.contains(&Channel::Depth);
        let source = books.sequencer().source();
        let (snap_req_tx, snap_req_rx) = mpsc::unbounded_channel::<String>();
        let (snap_tx, mut snap_rx) =
            mpsc::unbounded_channel::<(String, Result<Snapshot, String>)>();
        let mut _fetcher_guard = None;
        if source == SnapshotSource::Rest {
            let fetcher = tokio::spawn(snapshot_fetcher(
                SnapshotFetcher {
                    http: self.http.clone(),
                    base: self.rest_base(),
                    venue: self.venue.clone(),
                    venue_of: venue_of.clone(),
                    limit: self.cfg.snapshot_limit,
                    spacing: self.cfg.snapshot_interval,
                },
                snap_req_rx,
                snap_tx,
            ));
            _fetcher_guard = Some(AbortOnDrop(fetcher));
        }
        let mut resync = Resync {
            source,
            requested: HashSet::new(),
            retries: HashMap::new(),
            retry_min: self.cfg.reconnect_min,
            retry_max: self.cfg.reconnect_max,
            rest: snap_req_tx,
            inband: Vec::new(),
            outgoing: Vec::new(),
        };
        if depth && source == SnapshotSource::Rest {
            for (s, _) in &pairs {
                resync.request(s);
            }
        }
        // Open interest is polled beside the frame loop; its records come back on a channel.
        let (oi_tx, mut oi_rx) = mpsc::channel::<ProduceEvent>(pairs.len().max(1) * 2);
        let mut _oi_guard = None;
        if self.cfg.channels.contains(&Channel::OpenInterest)
            && self.venue.delivery(Channel::OpenInterest) == Delivery::RestPoll
        {
            _oi_guard = Some(AbortOnDrop(tokio::spawn(open_interest_poller(
                OiPoller {
                    http: self.http.clone(),
                    base: self.rest_base(),
                    venue: self.venue.clone(),
                    pairs: pairs.clone(),
                    symbols: symbols.clone(),
                    period: self.cfg.open_interest_poll.max(Duration::from_millis(100)),
                    metrics: self.metrics.clone(),
                    labels: self.labels.clone(),
                },
                oi_tx,
            ))));
        }
        let mut heartbeat = vs.heartbeat_interval().map(tokio::time::interval);

        let rotate_after = self.cfg.rotate_after.unwrap_or(
            limits
                .connection_lifetime
                .saturating_sub(Duration::from_secs(600)),
        );
        let rotate = tokio::time::sleep(rotate_after);
        tokio::pin!(rotate);
        // The stale timer measures time since the last frame, whatever else happens.
        let stale = self.cfg.stale_after;
        let stale_at = tokio::time::sleep(stale);
        tokio::pin!(stale_at);
        let mut pending: FuturesUnordered<Awaited> = FuturesUnordered::new();
        // Whether records have waited too long is checked a few times a second (a timer
        // reset on every answer would cost more than the check).
        let mut stall_check = tokio::time::interval(STALL_CHECK);
        stall_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut parsed = Vec::new();

        let end = loop {
            // Messages the books asked for (in-band resyncs) go out first.
            for msg in resync.outgoing.drain(..) {
                if let Err(e) = ws.send(Message::text(msg)).await {
                    return Err(SessionError::Socket(Box::new(e)));
                }
            }
            // Records waiting for room go first: reading pauses while the producers are behind
            // (for at most `shed_after_ms` without an answer; then the feed sheds).
            while pending.len() < self.cfg.max_outstanding {
                let Some(r) = backlog.pop_front() else { break };
                self.send(r, &mut pending, outage).await;
            }
            let can_read = pending.len() < self.cfg.max_outstanding && backlog.is_empty();
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break Ok(SessionEnd::Stopped),
                Some((answer, sent)) = pending.next(), if !pending.is_empty() => {
                    if let Some(ep) = self.answered(answer, &sent, outage) {
                        self.recovered(ep, books, &mut backlog, &mut resync);
                    }
                }
                _ = stall_check.tick(), if !pending.is_empty() && !outage.shedding() => {
                    outage.stalled();
                }
                () = &mut rotate => break Ok(SessionEnd::Rotated),
                () = &mut stale_at => break Err(SessionError::Stale(stale)),
                () = &mut confirm_by, if confirming => {
                    confirming = false;
                    let n = vs.unconfirmed();
                    if n > 0 {
                        self.error("subscribe_timeout");
                        break Err(SessionError::SubscribeTimeout(n, vs.subscribe_timeout()));
                    }
                }
                Some(_) = async { heartbeat.as_mut()?.tick().await.into() }, if heartbeat.is_some() => {
                    if let Some(msg) = vs.heartbeat() {
                        if let Err(e) = ws.send(Message::text(msg)).await {
                            break Err(SessionError::Socket(Box::new(e)));
                        }
                    }
                }
                Some((symbol, snap)) = snap_rx.recv() => {
                    match snap {
                        Ok(snap) => {
                            resync.requested.remove(&symbol);
                            match books.on_snapshot(&symbol, &snap, now_us()) {
                                Ok(out) => self.book_step(&symbol, out, &mut backlog, &mut resync),
                                Err(e) => {
                                    self.error("bad_decimal");
                                    tracing::warn!(%symbol, error = %e, "snapshot refused");
                                    resync.request(&symbol);
                                }
                            }
                        }
                        Err(e) => {
                            self.error("snapshot");
                            let delay = resync.retry_later(&symbol);
                            tracing::warn!(%symbol, error = %e, ?delay, "snapshot request failed; retrying");
                        }
                    }
                }
                Some(r) = oi_rx.recv() => backlog.push_back(r),
                frame = ws.next(), if can_read => {
                    let msg = match frame {
                        None => break Err(SessionError::Closed),
                        Some(Err(e)) => {
                            if matches!(e, tokio_tungstenite::tungstenite::Error::Capacity(_)) {
                                self.error("oversized");
                            }
                            break Err(SessionError::Socket(Box::new(e)));
                        }
                        Some(Ok(m)) => m,
                    };
                    stale_at.as_mut().reset(tokio::time::Instant::now() + stale);
                    let frame = match &msg {
                        Message::Text(t) => Frame::Text(t.as_str()),
                        Message::Binary(b) => Frame::Binary(b),
                        Message::Close(_) => break Err(SessionError::Closed),
                        // Pings are answered by tungstenite itself; pongs need nothing.
                        _ => continue,
                    };
                    let len = match frame {
                        Frame::Text(t) => t.len(),
                        Frame::Binary(b) => b.len(),
                    };
                    if len > self.frame_cap() {
                        self.metrics.feed_frames.get_or_create(&self.labels).inc();
                        self.stats.frames.fetch_add(1, Ordering::Relaxed);
                        self.error("oversized");
                        tracing::warn!(bytes = len, "oversized frame dropped");
                        continue;
                    }
                    parsed.clear();
                    let result = vs.on_frame(frame, now_us(), &mut parsed);
                    // Binary frames count as frames only for venues that speak binary.
                    if matches!(frame, Frame::Text(_)) || result.is_ok() {
                        self.metrics.feed_frames.get_or_create(&self.labels).inc();
                        self.stats.frames.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Err(e) = result {
                        self.error(e.kind());
                        if e.is_terminal() {
                            break Err(SessionError::Venue(e));
                        }
                        if let ParseError::Refused { symbol, msg } = &e {
                            // One symbol refused (delisted, unknown): announced; the
                            // connection and its other symbols carry on.
                            tracing::error!(exchange = %self.labels.exchange, %symbol, reason = %msg, "subscription refused by the venue");
                            backlog.push_back(self.feed_event(
                                symbol,
                                Kind::RejectedUpdate,
                                format!("subscription refused by the venue: {msg}"),
                                "unsubscribed",
                            ));
                            resync.forget(symbol);
                        } else {
                            tracing::debug!(error = %e, "frame dropped");
                        }
                        continue;
                    }
                    let mut sent = Ok(());
                    for ev in parsed.drain(..) {
                        match ev {
                            VenueEvent::Record(r) => backlog.push_back(ProduceEvent::typed(r)),
                            VenueEvent::Encoded(e) => backlog.push_back(ProduceEvent::encoded(e)),
                            VenueEvent::Control => {}
                            VenueEvent::Resync { symbol, reason } => {
                                // A break only the session can see: the books concerned resync
                                // now, announced once (connection-wide: empty symbol).
                                tracing::warn!(exchange = %self.labels.exchange, symbol = symbol.as_deref().unwrap_or("*"), %reason, "venue stream broken; resyncing");
                                self.metrics.book_gaps.get_or_create(&self.labels).inc();
                                self.stats.gaps.fetch_add(1, Ordering::Relaxed);
                                backlog.push_back(self.feed_event(
                                    symbol.as_deref().unwrap_or(""),
                                    Kind::Gap,
                                    reason,
                                    source.recovery(),
                                ));
                                let symbols = match symbol {
                                    Some(s) => vec![s],
                                    None => books.symbols(),
                                };
                                for s in symbols {
                                    books.reset(&s);
                                    resync.again(&s);
                                }
                            }
                            VenueEvent::Send(text) => {
                                if sent.is_ok() {
                                    sent = ws.send(Message::text(text)).await;
                                }
                            }
                            VenueEvent::Diff { symbol, diff } => match books.on_diff(&symbol, diff) {
                                Ok(out) => self.book_step(&symbol, out, &mut backlog, &mut resync),
                                Err(e) => {
                                    self.error("bad_decimal");
                                    tracing::warn!(%symbol, error = %e, "diff refused");
                                }
                            },
                            VenueEvent::Snapshot { symbol, snapshot } => {
                                match books.on_snapshot(&symbol, &snapshot, now_us()) {
                                    Ok(out) => self.book_step(&symbol, out, &mut backlog, &mut resync),
                                    Err(e) => {
                                        self.error("bad_decimal");
                                        tracing::warn!(%symbol, error = %e, "snapshot refused");
                                        resync.request(&symbol);
                                    }
                                }
                            }
                        }
                    }
                    if let Err(e) = sent {
                        break Err(SessionError::Socket(Box::new(e)));
                    }
                    // In-band resyncs: the session knows how to ask for a fresh snapshot.
                    for symbol in resync.take_inband() {
                        resync.outgoing.extend(vs.resubscribe_book(&symbol));
                    }
                }
            }
        };
        if let Err(e) = &end {
            let kind = if matches!(e, SessionError::Stale(_)) {
                Kind::Stale
            } else {
                Kind::Reconnect
            };
            backlog.push_back(self.feed_event("", kind, e.to_string(), "reconnect"));
        }
        // Whatever was read is still produced (or, while shedding, counted) and answered
        // before the session ends.
        for r in backlog.drain(..) {
            self.send(r, &mut pending, outage).await;
        }
        while let Some((answer, sent)) = pending.next().await {
            if let Some(ep) = self.answered(answer, &sent, outage) {
                // Announced on the next connection, at its first Ack.
                outage.carry(ep);
            }
        }
        let _ = ws.close(None).await;
        end
    }

    /// Sends `r` (or, while shedding, sends it as a probe or counts it as shed).
    async fn send(
        &self,
        r: ProduceEvent,
        pending: &mut FuturesUnordered<Awaited>,
        outage: &mut Outage,
    ) {
        let sent = Sent::of(&r, now_us());
        if outage.shedding() && !outage.probe_now(pending.len()) {
            self.lost(&sent, Cause::Shed, outage);
            return;
        }
        if pending.is_empty() {
            outage.waiting();
        }
        pending.push(Awaited {
            answer: self.producer.submit(r).await,
            sent: Some(sent),
        });
    }

    /// Counts a lost record (metric, episode).
    fn lost(&self, sent: &Sent, cause: Cause, outage: &mut Outage) {
        self.metrics
            .feed_records_lost
            .get_or_create(&LostLabels {
                exchange: self.labels.exchange.clone(),
                data_type: sent.data_type.to_string(),
                cause: cause.as_str().to_string(),
            })
            .inc();
        outage.lost(sent, cause);
    }

    /// Counts an answer; an Ack that ends a loss episode returns it.
    fn answered(
        &self,
        answer: Result<Result<Ack, Nack>, oneshot::error::RecvError>,
        sent: &Sent,
        outage: &mut Outage,
    ) -> Option<Episode> {
        let acked = matches!(answer, Ok(Ok(_)));
        if acked {
            self.stats.acked.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.nacked.fetch_add(1, Ordering::Relaxed);
            self.lost(sent, Cause::Nacked, outage);
        }
        outage.answered(acked, now_us())
    }

    /// Kafka takes records again after a loss episode: the interval is announced, and every
    /// book of the connection is published again in full — a consumer cannot know which of
    /// its books lost a record (a broker restarted on empty storage lost them all). A synced
    /// book is exact (it kept applying diffs, with every check, while records were shed), so
    /// it is republished now; one still syncing publishes its full book when it syncs.
    fn recovered(
        &self,
        ep: Episode,
        books: &mut BookKeeper,
        backlog: &mut VecDeque<ProduceEvent>,
        resync: &mut Resync,
    ) {
        let summary = ep.summary();
        let now = now_us();
        tracing::warn!(exchange = %self.labels.exchange, since_us = ep.since_us, %summary, "Kafka takes records again; announcing the lost interval");
        let announce = |symbol: &str, reason: String, action: &str| {
            let mut ev = feed_event(
                self.venue.exchange(),
                symbol,
                Kind::RecordLost,
                reason,
                action,
                now,
            );
            ev.since = Some(ep.since_us);
            ProduceEvent::typed(Normalized::FeedEvent(ev))
        };
        backlog.push_back(announce("", summary, "republish"));
        let mut symbols = books.symbols();
        symbols.sort();
        for symbol in symbols {
            let lost = if ep.books.contains(&symbol) {
                "records of this book were not stored"
            } else {
                "records of this connection were not stored"
            };
            backlog.push_back(announce(
                &symbol,
                format!("{lost}; the book is published again in full"),
                "republish",
            ));
            match books.republish(&symbol, now) {
                Some(full) => backlog.push_back(full),
                None => {
                    books.reset(&symbol);
                    resync.request(&symbol);
                }
            }
        }
    }

    /// Largest frame taken: the configured cap, else the venue's.
    fn frame_cap(&self) -> usize {
        self.cfg
            .max_frame_bytes
            .unwrap_or(self.venue.limits().max_frame_bytes)
    }

    fn rest_base(&self) -> String {
        self.cfg
            .rest_url
            .clone()
            .or_else(|| self.venue.default_rest_url().map(str::to_string))
            .unwrap_or_default()
    }
}

/// How often a feed checks whether its records have waited longer than `shed_after_ms`.
const STALL_CHECK: Duration = Duration::from_millis(100);

/// Largest REST answer accepted (a 5000-level depth snapshot is ~250 KB; instrument lists
/// of the largest venues a few MB).
const REST_BODY_LIMIT: usize = 16 << 20;

/// REST weight of an instrument list (Binance `exchangeInfo`: 10 on spot and USD-M).
const INSTRUMENTS_WEIGHT: u32 = 10;

/// Most pages followed in one instrument list (Bybit pages options 1 000 at a time).
const MAX_INSTRUMENT_PAGES: usize = 100;

async fn get_text(http: &RestClient, url: &str, weight: u32) -> Result<String, RestError> {
    http.get(url, weight).await
}

/// Fetches snapshots one at a time, at most one per `spacing` (so many symbols resyncing at
/// once do not hit the venue's rate limit), and sends them back to the session.
struct SnapshotFetcher {
    http: RestClient,
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
        let Some(path) = venue.snapshot_path(
            venue_of
                .get(&symbol)
                .map_or(symbol.as_str(), String::as_str),
            limit,
        ) else {
            return;
        };
        let url = format!("{base}{path}");
        let weight = venue.limits().snapshot_weight;
        let snap = match get_text(&http, &url, weight).await {
            Ok(body) => venue.parse_snapshot(&body).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
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

/// Symbols awaiting a fresh snapshot, and how to ask for one.
struct Resync {
    source: SnapshotSource,
    requested: HashSet<String>,
    /// Per-symbol snapshot retry delays (exponential with jitter), reset when it syncs.
    retries: HashMap<String, Box<dyn Iterator<Item = Duration> + Send>>,
    retry_min: Duration,
    retry_max: Duration,
    rest: mpsc::UnboundedSender<String>,
    /// In-band symbols to resubscribe.
    inband: Vec<String>,
    /// Messages to send (in-band resubscribes).
    outgoing: Vec<String>,
}

impl Resync {
    /// Asks once for a snapshot of `symbol` (again only after it arrived).
    fn request(&mut self, symbol: &str) {
        if !self.requested.insert(symbol.to_string()) {
            return;
        }
        match self.source {
            SnapshotSource::Rest => {
                let _ = self.rest.send(symbol.to_string());
            }
            SnapshotSource::InBand => self.inband.push(symbol.to_string()),
        }
    }

    /// Asks for a snapshot of `symbol` now, even when one was already asked for (the
    /// venue said the book broke: whatever was asked before no longer counts).
    fn again(&mut self, symbol: &str) {
        self.requested.remove(symbol);
        self.request(symbol);
    }

    /// `symbol` is no longer served on this connection (its subscription was refused).
    fn forget(&mut self, symbol: &str) {
        self.requested.remove(symbol);
        self.retries.remove(symbol);
        self.inband.retain(|s| s != symbol);
    }

    /// A snapshot of `symbol` failed: it is fetched again after the symbol's next backoff
    /// delay (other symbols are not held up). Returns the delay.
    fn retry_later(&mut self, symbol: &str) -> Duration {
        let (min, max) = (self.retry_min, self.retry_max);
        let delay = self
            .retries
            .entry(symbol.to_string())
            .or_insert_with(|| Box::new(snapshot_backoff(min, max)))
            .next()
            .unwrap_or(max);
        let (tx, symbol) = (self.rest.clone(), symbol.to_string());
        // Still marked requested: nothing else asks for it meanwhile.
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(symbol);
        });
        delay
    }

    /// `symbol` synced: its retry delays start over.
    fn synced(&mut self, symbol: &str) {
        self.requested.remove(symbol);
        self.retries.remove(symbol);
    }

    /// In-band symbols requested and not yet resubscribed.
    fn take_inband(&mut self) -> Vec<String> {
        std::mem::take(&mut self.inband)
    }
}

/// Polls open interest beside the frame loop.
struct OiPoller {
    http: RestClient,
    base: String,
    venue: Arc<dyn Venue>,
    pairs: Vec<(String, String)>,
    symbols: SymbolMap,
    period: Duration,
    metrics: Arc<Metrics>,
    labels: FeedLabels,
}

async fn open_interest_poller(p: OiPoller, out: mpsc::Sender<ProduceEvent>) {
    let mut tick = tokio::time::interval(p.period);
    loop {
        tick.tick().await;
        for (s, v) in &p.pairs {
            let result = match p.venue.open_interest_path(v) {
                None => Err(ParseError::Unsupported("open interest".into())),
                Some(path) => match get_text(&p.http, &format!("{}{path}", p.base), 1).await {
                    Ok(body) => p.venue.parse_open_interest(&body, now_us(), &p.symbols),
                    Err(e) => Err(ParseError::Unsupported(format!("REST: {e}"))),
                },
            };
            match result {
                Ok(r) => {
                    if out.send(ProduceEvent::typed(r)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    p.metrics
                        .feed_errors
                        .get_or_create(&FeedErrorLabels {
                            exchange: p.labels.exchange.clone(),
                            kind: e.kind().to_string(),
                        })
                        .inc();
                    tracing::warn!(symbol = %s, error = %e, "open interest poll failed");
                }
            }
        }
    }
}
