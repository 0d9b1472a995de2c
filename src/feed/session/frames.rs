//! The frame loop of one connection. Everything it waits on is one branch of one `select!`:
//! stop, answers, the parked submission, the stall check, rotation, the stale timer,
//! confirmations, the venue's heartbeat, paced outgoing messages, snapshot deadlines and
//! per-stream liveness, REST snapshots, book audits (their turns and their answers),
//! open-interest records and frames. Nothing inside a
//! branch waits on the producers, so heartbeats, pongs and `StopFeed` are served and the
//! `shed_after_ms` bound holds while a producer queue is full.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::audit::{audit_fetcher, AuditFetcher, Auditor, Verdict};
use super::delivery::Delivery;
use super::outbox::Outbox;
use super::pollers::{open_interest_poller, stale_bound, Liveness, OiPoller};
use super::resync::{snapshot_fetcher, Resync, Retry, SnapshotFetcher, MAX_FAILURES};
use super::{now_us, AbortOnDrop, Feed, SessionEnd, SessionError};
use crate::book::{Snapshot, SnapshotSource};
use crate::feed::books::{feed_event, BookKeeper, BookOutput};
use crate::feed::outage::Outage;
use crate::metrics::{BookAuditLabels, BookSymbolLabels};
use crate::producer::ProduceEvent;
use crate::schema::v2beta1::feed_event::Kind;
use crate::schema::{DataType, Normalized};
use crate::venues::{
    Channel, Delivery as Via, Frame, ParseError, SessionSpec, VenueEvent, VenueSession,
};

/// How often a feed checks whether its records have waited longer than `shed_after_ms`.
const STALL_CHECK: Duration = Duration::from_millis(100);

/// How often snapshot deadlines, due retries and stream liveness are checked.
const HOUSEKEEPING: Duration = Duration::from_millis(250);

/// Rotation comes up to this share of the connection's lifetime early (and at most 10 min),
/// drawn per connection, so connections started together do not resync at once.
const ROTATION_JITTER: f64 = 0.05;

/// `base` less `draw` (in [0, 1)) of its [`ROTATION_JITTER`] share, at most 10 min.
fn jittered(base: Duration, draw: f64) -> Duration {
    let spread = base.mul_f64(ROTATION_JITTER).min(Duration::from_secs(600));
    base.saturating_sub(spread.mul_f64(draw.clamp(0.0, 1.0)))
        .max(Duration::from_millis(1))
}

/// Everything the frame loop changes, borrowed for one step.
struct Step<'s, 'a> {
    books: &'s mut BookKeeper,
    delivery: &'s mut Delivery<'a>,
    resync: &'s mut Resync,
    outbox: &'s mut Outbox,
    audit: &'s mut Auditor,
}

impl Feed {
    /// When this connection rotates: the configured time, else the venue's lifetime less
    /// 10 minutes, less a random part of up to [`ROTATION_JITTER`] of it (at most 10 min).
    fn rotation(&self) -> Duration {
        let lifetime = self.venue.limits().connection_lifetime;
        let base = self
            .cfg
            .rotate_after
            .unwrap_or(lifetime.saturating_sub(Duration::from_secs(600)));
        jittered(base, rand::rng().random::<f64>())
    }

    /// Counts and logs what a book step reports; asks for a snapshot when needed.
    fn book_step(&self, symbol: &str, out: BookOutput, st: &mut Step<'_, '_>) {
        let ex = &self.labels.exchange;
        if let Some((expected, got)) = out.gap {
            self.metrics.book_gaps.get_or_create(&self.labels).inc();
            self.stats.gaps.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(exchange = %ex, %symbol, expected, got, "order-book gap; resyncing");
        }
        if let Some(b) = &out.broken {
            if matches!(b, crate::book::Break::Stalled { .. }) {
                // Announced as the gap it is.
                self.metrics.book_gaps.get_or_create(&self.labels).inc();
            }
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
        for _ in 0..out.overflowed {
            self.error("buffer_overflow");
        }
        // Diffs a book skipped, per symbol and reason (each also announced as a FeedEvent).
        let skipped = |symbol: &str, reason: &str, n: u64| {
            if n > 0 {
                self.metrics
                    .book_diffs_skipped
                    .get_or_create(&BookSymbolLabels {
                        exchange: ex.clone(),
                        symbol: symbol.to_string(),
                        reason: reason.to_string(),
                    })
                    .inc_by(n);
            }
        };
        skipped(symbol, "out_of_order", out.out_of_order);
        skipped(symbol, "bridge_rejected", out.bridge_rejected);
        for (s, n) in &out.overflowed_by_symbol {
            skipped(s, "buffer_overflow", *n);
        }
        if let Some(e) = &out.bad_decimal {
            self.error("bad_decimal");
            tracing::warn!(exchange = %ex, %symbol, error = %e, "book level refused; resyncing");
        }
        if out.synced || out.need_snapshot {
            // A new book, or none: what its audits saw no longer counts.
            st.audit.reset(symbol);
        }
        if out.synced {
            tracing::info!(exchange = %ex, %symbol, "order book synced");
            self.metrics.book_syncs.get_or_create(&self.labels).inc();
            self.stats.syncs.fetch_add(1, Ordering::Relaxed);
            st.resync.synced(symbol);
        }
        if out.need_snapshot {
            st.resync.request(symbol);
        }
        st.delivery.backlog.extend(out.records);
    }

    /// A snapshot (REST or in band) arrived for `symbol`: whatever its outcome, its request
    /// is answered. One that does not sync the book is asked for again after the symbol's
    /// backoff delay, announced; too many in a row recycle the connection.
    fn snapshot_arrived(
        &self,
        symbol: &str,
        snap: Result<&Snapshot, String>,
        st: &mut Step<'_, '_>,
    ) -> Result<(), SessionError> {
        let why = match snap {
            Ok(snap) => match st.books.on_snapshot(symbol, snap, now_us()) {
                Ok(out) => {
                    let synced = out.synced;
                    let too_old = out.gap;
                    self.book_step(symbol, out, st);
                    if synced {
                        return Ok(());
                    }
                    match too_old {
                        Some((expected, got)) => format!(
                            "snapshot does not bridge the buffered diffs (update {got} where {expected} was due)"
                        ),
                        None => "snapshot failed the book's checks".to_string(),
                    }
                }
                Err(e) => {
                    self.error("bad_decimal");
                    format!("snapshot refused: {e}")
                }
            },
            Err(e) => {
                self.error("snapshot");
                format!("snapshot request failed: {e}")
            }
        };
        let retry = st.resync.failed(symbol);
        self.retry_announced(&retry, &why, st)
    }

    /// Announces a snapshot asked for again (`why`), or recycles the connection after
    /// [`MAX_FAILURES`] in a row.
    fn retry_announced(
        &self,
        r: &Retry,
        why: &str,
        st: &mut Step<'_, '_>,
    ) -> Result<(), SessionError> {
        let source = st.books.sequencer().source();
        tracing::warn!(exchange = %self.labels.exchange, symbol = %r.symbol, reason = %why, attempt = r.failures, after = ?r.after, "book snapshot failed; asking again");
        let kind = if why.starts_with("no snapshot") {
            Kind::Stale
        } else {
            Kind::Gap
        };
        let mut ev = feed_event(
            self.venue.exchange(),
            &r.symbol,
            kind,
            format!(
                "{why}; attempt {} of {MAX_FAILURES}, asked again in {} ms",
                r.failures,
                r.after.as_millis()
            ),
            source.recovery(),
            now_us(),
        );
        ev.data_type = DataType::Level2Delta.as_str().into();
        st.delivery
            .backlog
            .push_back(ProduceEvent::typed(Normalized::FeedEvent(ev)));
        if r.failures >= MAX_FAILURES {
            self.error("resync_exhausted");
            return Err(SessionError::Resync {
                symbol: r.symbol.clone(),
                failures: r.failures,
            });
        }
        Ok(())
    }

    fn audit_counted(&self, result: &str) {
        self.metrics
            .book_audits
            .get_or_create(&BookAuditLabels {
                exchange: self.labels.exchange.clone(),
                result: result.to_string(),
            })
            .inc();
    }

    /// A REST book audit of `symbol` answered: compared with the kept book by the audit
    /// rule. A confirmed divergence resyncs the book, announced (`CHECKSUM_MISMATCH`, the
    /// REST comparison named); a failed fetch is counted and retried at the book's next turn.
    fn audit_arrived(&self, symbol: &str, rest: Result<Snapshot, String>, st: &mut Step<'_, '_>) {
        let ex = &self.labels.exchange;
        let verdict = match rest {
            Ok(rest) => {
                let local = st.books.book(symbol).filter(|_| st.books.is_synced(symbol));
                st.audit
                    .arrived(symbol, local, &rest)
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        let verdict = match verdict {
            Ok(v) => v,
            Err(e) => {
                st.audit.failed(symbol);
                self.audit_counted("fetch_failed");
                self.error("book_audit_fetch");
                tracing::warn!(exchange = %ex, %symbol, error = %e, "REST book audit failed; retried at the book's next turn");
                return;
            }
        };
        match verdict {
            Verdict::Agreed => self.audit_counted("agreed"),
            Verdict::Skipped => self.audit_counted("skipped"),
            Verdict::Differed(n) => {
                self.audit_counted("differed");
                tracing::debug!(exchange = %ex, %symbol, levels = n, "REST book audit differs; compared again at the next audit");
            }
            Verdict::Diverged(levels) => {
                self.audit_counted("diverged");
                let shown: Vec<String> = levels.iter().take(5).map(|d| d.to_string()).collect();
                let reason = format!(
                    "REST book audit: {} level(s) differ from the venue's REST book in two audits in a row with no update between ({}{}); resyncing",
                    levels.len(),
                    shown.join("; "),
                    if levels.len() > shown.len() { "; …" } else { "" }
                );
                tracing::warn!(exchange = %ex, %symbol, %reason, "order book diverged from the venue's");
                let source = st.books.sequencer().source();
                st.delivery.backlog.push_back(self.feed_event(
                    symbol,
                    Kind::ChecksumMismatch,
                    reason,
                    source.recovery(),
                ));
                st.books.reset(symbol);
                st.resync.again(symbol);
                st.audit.reset(symbol);
            }
        }
    }

    /// Takes the events one frame produced.
    #[allow(clippy::too_many_arguments)]
    fn on_events(
        &self,
        parsed: &mut Vec<VenueEvent>,
        st: &mut Step<'_, '_>,
        live: &mut Liveness,
        replies: &mut Vec<String>,
    ) -> Result<(), SessionError> {
        let now = Instant::now();
        let watch = live.any();
        for ev in parsed.drain(..) {
            match ev {
                VenueEvent::Record(r) => {
                    if watch && live.watches(r.data_type()) {
                        live.seen(r.data_type(), r.symbol(), now);
                    }
                    st.delivery.backlog.push_back(ProduceEvent::typed(r));
                }
                VenueEvent::Encoded(e) => {
                    if watch && live.watches(e.data_type) {
                        live.seen(e.data_type, &e.symbol, now);
                    }
                    st.delivery.backlog.push_back(ProduceEvent::encoded(e));
                }
                VenueEvent::Control => {}
                VenueEvent::Send(text) => replies.push(text),
                VenueEvent::Resync { symbol, reason } => {
                    // A break only the session can see: the books concerned resync now,
                    // announced once (connection-wide: empty symbol).
                    let source = st.books.sequencer().source();
                    tracing::warn!(exchange = %self.labels.exchange, symbol = symbol.as_deref().unwrap_or("*"), %reason, "venue stream broken; resyncing");
                    self.metrics.book_gaps.get_or_create(&self.labels).inc();
                    self.stats.gaps.fetch_add(1, Ordering::Relaxed);
                    st.delivery.backlog.push_back(self.feed_event(
                        symbol.as_deref().unwrap_or(""),
                        Kind::Gap,
                        reason,
                        source.recovery(),
                    ));
                    let symbols = match symbol {
                        Some(s) => vec![s],
                        None => st.books.symbols(),
                    };
                    for s in symbols {
                        st.books.reset(&s);
                        st.resync.again(&s);
                        st.audit.reset(&s);
                    }
                }
                VenueEvent::Diff { symbol, diff } => {
                    if watch && live.watches(DataType::Level2Delta) {
                        live.seen(DataType::Level2Delta, &symbol, now);
                    }
                    st.audit.touched(&symbol, &diff);
                    match st.books.on_diff(&symbol, diff) {
                        Ok(out) => self.book_step(&symbol, out, st),
                        Err(e) => {
                            self.error("bad_decimal");
                            tracing::warn!(%symbol, error = %e, "diff refused");
                        }
                    }
                }
                VenueEvent::Snapshot { symbol, snapshot } => {
                    if watch && live.watches(DataType::Level2Delta) {
                        live.seen(DataType::Level2Delta, &symbol, now);
                    }
                    self.snapshot_arrived(&symbol, Ok(&snapshot), st)?;
                }
            }
        }
        Ok(())
    }

    /// One connection: resolve symbols, connect, subscribe, then the frame loop until stop,
    /// rotation or an error. Whatever was read is produced and answered before it returns.
    pub(super) async fn session(
        &self,
        books: &mut BookKeeper,
        stop: &mut watch::Receiver<bool>,
        lost: &mut Option<(i64, String)>,
        outage: &mut Outage,
    ) -> Result<SessionEnd, SessionError> {
        let Some((symbols, pairs)) = self.resolve_symbols(stop).await else {
            return Ok(SessionEnd::Stopped);
        };
        let venue_of: HashMap<String, String> = pairs.iter().cloned().collect();
        let base = self
            .cfg
            .ws_url
            .as_deref()
            .unwrap_or(self.venue.default_ws_url());
        let subscriptions = self.subscriptions(&pairs);
        let mut vs: Box<dyn VenueSession> = self.venue.session(SessionSpec {
            subscriptions: subscriptions.clone(),
            symbols: symbols.clone(),
            book_depth: self.cfg.snapshot_limit,
            ws_url: base.to_string(),
        });
        let url = format!("{}{}", base.trim_end_matches('/'), vs.path());
        let Some(mut ws) = self.connect(&url, stop).await? else {
            return Ok(SessionEnd::Stopped);
        };
        tracing::info!(exchange = %self.labels.exchange, %url, "feed connected");

        // Subscribe messages go out first, back to back at the venue's rate and within its
        // quota (venues want them soon after connecting: Coinbase within 5 s), before any frame
        // is read; a stop is honoured meanwhile. Later messages go through the same outbox
        // from the frame loop.
        let limits = self.venue.limits();
        let mut outbox = Outbox::new(&limits);
        outbox.extend(vs.subscribe());
        while !outbox.is_empty() {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return Ok(SessionEnd::Stopped),
                () = tokio::time::sleep_until(outbox.due()) => {
                    if let Some(msg) = outbox.pop(tokio::time::Instant::now()) {
                        ws.send(Message::text(msg))
                            .await
                            .map_err(|e| SessionError::Socket(Box::new(e)))?;
                    }
                }
            }
        }
        let confirm_by = tokio::time::sleep(vs.subscribe_timeout());
        tokio::pin!(confirm_by);
        let mut confirming = true;
        self.metrics
            .feed_connected
            .get_or_create(&self.labels)
            .set(1);
        self.stats.set_connected(true);
        let mut delivery = Delivery::new();
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
            delivery
                .backlog
                .push_back(ProduceEvent::typed(Normalized::FeedEvent(ev)));
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
        let mut resync = Resync::new(
            source,
            self.cfg.snapshot_timeout,
            self.cfg.snapshot_interval,
            (self.cfg.reconnect_min, self.cfg.reconnect_max),
            snap_req_tx,
        );
        if depth {
            for (s, _) in &pairs {
                match source {
                    SnapshotSource::Rest => resync.request(s),
                    // Sent by the venue after subscribing: due within the timeout all the same.
                    SnapshotSource::InBand => resync.due_in_band(s),
                }
            }
        }
        // The periodic REST book audit, when the venue (or the feed) asks for it.
        let (audit_tx, mut audit_rx) =
            mpsc::unbounded_channel::<(String, Result<Snapshot, String>)>();
        let mut _audit_guard = None;
        let mut audit = match self.audit_every {
            Some(every) if depth && !pairs.is_empty() => {
                let (req_tx, req_rx) = mpsc::unbounded_channel::<String>();
                _audit_guard = Some(AbortOnDrop(tokio::spawn(audit_fetcher(
                    AuditFetcher {
                        http: self.http.clone(),
                        base: self.rest_base(),
                        venue: self.venue.clone(),
                        venue_of: venue_of.clone(),
                    },
                    req_rx,
                    audit_tx,
                ))));
                Auditor::new(
                    every,
                    pairs.iter().map(|(s, _)| s.clone()).collect(),
                    req_tx,
                )
            }
            _ => Auditor::off(),
        };
        let auditing = audit.is_on();
        let mut audit_turn = tokio::time::interval(audit.spacing());
        audit_turn.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick of an interval is at once: the first audit waits one spacing.
        audit_turn.reset();
        // Open interest polled beside the frame loop; its records come back on a channel.
        let (oi_tx, mut oi_rx) = mpsc::channel::<ProduceEvent>(pairs.len().max(1) * 2);
        let mut _oi_guard = None;
        if self.cfg.channels.contains(&Channel::OpenInterest)
            && self.venue.delivery(Channel::OpenInterest) == Via::RestPoll
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
        let mut live = Liveness::new(&subscriptions, |c| {
            stale_bound(self.venue.as_ref(), &self.cfg.stream_stale_after, c)
        });
        let mut heartbeat = vs.heartbeat_interval().map(tokio::time::interval);
        let rotate = tokio::time::sleep(self.rotation());
        tokio::pin!(rotate);
        // The stale timer measures time since the last frame, whatever else happens.
        let stale = self.cfg.stale_after;
        let stale_at = tokio::time::sleep(stale);
        tokio::pin!(stale_at);
        // Whether records have waited too long is checked a few times a second (a timer
        // reset on every answer would cost more than the check).
        let mut stall_check = tokio::time::interval(STALL_CHECK);
        stall_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut parsed = Vec::new();
        let mut replies = Vec::new();
        let cap = self.frame_cap();
        // The frame counter's handle, looked up once per connection (not under the family's
        // lock per frame).
        let frames = self.metrics.feed_frames.get_or_create(&self.labels).clone();

        let end = loop {
            self.fill(&mut delivery, outage);
            self.stats
                .shedding
                .store(outage.shedding(), Ordering::Relaxed);
            let can_read = delivery.can_read(self.cfg.max_outstanding, outage.shedding());
            let waiting = delivery.in_flight() > 0;
            let waiting_room = delivery.submitting.is_some();
            let mut st = Step {
                books,
                delivery: &mut delivery,
                resync: &mut resync,
                outbox: &mut outbox,
                audit: &mut audit,
            };
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break Ok(SessionEnd::Stopped),
                answer = super::delivery::room(&mut st.delivery.submitting), if waiting_room => {
                    Self::submitted(st.delivery, answer);
                }
                Some((answer, sent)) = st.delivery.pending.next(), if !st.delivery.pending.is_empty() => {
                    if let Some(ep) = self.answered(answer, &sent, outage) {
                        self.recovered(ep, st.books, &mut st.delivery.backlog, st.resync);
                    }
                }
                _ = stall_check.tick(), if waiting && !outage.shedding() => {
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
                    live.arm(Instant::now());
                }
                Some(_) = async { heartbeat.as_mut()?.tick().await.into() }, if heartbeat.is_some() => {
                    if let Some(msg) = vs.heartbeat() {
                        if let Err(e) = ws.send(Message::text(msg)).await {
                            break Err(SessionError::Socket(Box::new(e)));
                        }
                    }
                }
                () = tokio::time::sleep_until(st.outbox.due()), if !st.outbox.is_empty() => {
                    if let Some(msg) = st.outbox.pop(tokio::time::Instant::now()) {
                        if let Err(e) = ws.send(Message::text(msg)).await {
                            break Err(SessionError::Socket(Box::new(e)));
                        }
                    }
                }
                _ = housekeeping.tick() => {
                    let now = Instant::now();
                    let mut failed = Ok(());
                    for r in st.resync.expired(now) {
                        let why = format!(
                            "no snapshot within {} ms",
                            self.cfg.snapshot_timeout.as_millis()
                        );
                        failed = failed.and(self.retry_announced(&r, &why, &mut st));
                    }
                    if let Err(e) = failed {
                        break Err(e);
                    }
                    st.resync.due(now);
                    if confirming && vs.unconfirmed() == 0 {
                        live.arm(now);
                    }
                    let mut recycle = None;
                    for s in live.silent(now) {
                        let stream = format!("{} {}", s.sub.channel.as_str(), s.sub.symbol);
                        let msgs = vs.resubscribe(&s.sub);
                        let action = if msgs.is_empty() { "reconnect" } else { "resubscribe" };
                        tracing::warn!(exchange = %self.labels.exchange, %stream, after = ?s.after, action, "stream silent past its bound");
                        self.error("stale_stream");
                        let mut ev = feed_event(
                            self.venue.exchange(),
                            &s.sub.symbol,
                            Kind::Stale,
                            format!("{stream}: nothing for {} ms", s.after.as_millis()),
                            action,
                            now_us(),
                        );
                        ev.data_type = super::pollers::data_type_of(s.sub.channel).as_str().into();
                        st.delivery.backlog.push_back(ProduceEvent::typed(Normalized::FeedEvent(ev)));
                        if msgs.is_empty() {
                            recycle.get_or_insert(SessionError::StaleStream { stream, after: s.after });
                        } else {
                            st.outbox.extend(msgs);
                        }
                    }
                    if let Some(e) = recycle {
                        break Err(e);
                    }
                }
                Some((symbol, snap)) = snap_rx.recv() => {
                    if let Err(e) = self.snapshot_arrived(&symbol, snap.as_ref().map_err(String::clone), &mut st) {
                        break Err(e);
                    }
                }
                _ = audit_turn.tick(), if auditing => {
                    let books = &*st.books;
                    st.audit.request_next(|s| books.is_synced(s));
                }
                Some((symbol, rest)) = audit_rx.recv() => self.audit_arrived(&symbol, rest, &mut st),
                Some(r) = oi_rx.recv() => st.delivery.backlog.push_back(r),
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
                    if len > cap {
                        frames.inc();
                        self.stats.frames.fetch_add(1, Ordering::Relaxed);
                        self.error("oversized");
                        tracing::warn!(exchange = %self.labels.exchange, bytes = len, cap, "oversized frame dropped");
                        continue;
                    }
                    parsed.clear();
                    let result = vs.on_frame(frame, now_us(), &mut parsed);
                    // Binary frames count as frames only for venues that speak binary.
                    if matches!(frame, Frame::Text(_)) || result.is_ok() {
                        frames.inc();
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
                            st.delivery.backlog.push_back(self.feed_event(
                                symbol,
                                Kind::RejectedUpdate,
                                format!("subscription refused by the venue: {msg}"),
                                "unsubscribed",
                            ));
                            st.resync.forget(symbol);
                        } else {
                            tracing::debug!(error = %e, "frame dropped");
                        }
                        continue;
                    }
                    replies.clear();
                    if let Err(e) = self.on_events(&mut parsed, &mut st, &mut live, &mut replies) {
                        break Err(e);
                    }
                    // Answers the venue waits for (pongs, test requests) go at once.
                    let mut sent = Ok(());
                    for text in replies.drain(..) {
                        if sent.is_ok() {
                            sent = ws.send(Message::text(text)).await;
                        }
                    }
                    if let Err(e) = sent {
                        break Err(SessionError::Socket(Box::new(e)));
                    }
                }
            }
            // In-band resyncs: the venue's session writes the resubscribe, paced by the outbox.
            for symbol in resync.take_inband() {
                outbox.extend(vs.resubscribe_book(&symbol));
            }
        };
        if let Err(e) = &end {
            let kind = if matches!(e, SessionError::Stale(_)) {
                Kind::Stale
            } else {
                Kind::Reconnect
            };
            delivery
                .backlog
                .push_back(self.feed_event("", kind, e.to_string(), "reconnect"));
        }
        // Whatever was read is still produced (or, while shedding, counted) and answered
        // before the session ends — also when a send to the venue failed.
        self.drain(&mut delivery, outage).await;
        let _ = ws.close(None).await;
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_comes_early_by_a_drawn_share_of_at_most_ten_minutes() {
        let day = Duration::from_secs(24 * 3600 - 600);
        assert_eq!(jittered(day, 0.0), day);
        // 5 % of 23h50m is 71.5 min: capped at 10 min.
        assert_eq!(jittered(day, 0.999_999).as_secs(), day.as_secs() - 600);
        assert_eq!(jittered(day, 0.5), day - Duration::from_secs(300));
        let short = Duration::from_secs(100);
        assert_eq!(jittered(short, 1.0), Duration::from_secs(95));
        // Two connections drawing differently rotate at different times.
        assert_ne!(jittered(day, 0.1), jittered(day, 0.7));
    }
}
