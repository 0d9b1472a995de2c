//! Records to the producers. At most `max_outstanding` await their Ack; a submission that
//! waits for room in a full producer queue is one branch of the frame loop ([`Submitting`]),
//! so heartbeats, pongs, stop, the stall check and the shed timer keep running meanwhile and
//! the `shed_after_ms` bound holds. Lost records are counted, and the first Ack after a loss
//! episode announces it and republishes every book.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::LocalBoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::oneshot;

use super::resync::Resync;
use super::{now_us, Feed};
use crate::feed::books::{feed_event, BookKeeper};
use crate::feed::outage::{Cause, Episode, Outage, Sent};
use crate::metrics::LostLabels;
use crate::producer::{Ack, Nack, ProduceEvent};
use crate::schema::v2beta1::feed_event::Kind;
use crate::schema::Normalized;
use crate::supervisor::{Answer, Doors};

/// An answer and what was sent (a lost record is counted; a lost book record resyncs it).
pub(super) type Tagged = (Result<Result<Ack, Nack>, oneshot::error::RecvError>, Sent);

/// Awaits one answer and hands back what was sent with it.
pub(super) struct Awaited {
    answer: Answer,
    sent: Option<Sent>,
}

impl Future for Awaited {
    type Output = Tagged;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Tagged> {
        let answer = std::task::ready!(Pin::new(&mut self.answer).poll(cx));
        Poll::Ready((answer, self.sent.take().unwrap_or_default()))
    }
}

/// A record on its way into a producer queue that had no room (polled by the frame loop), and
/// what it is.
pub(super) type Submitting<'a> = Option<(LocalBoxFuture<'a, Answer>, Sent)>;

/// The delivery state of one connection.
pub(super) struct Delivery<'a> {
    /// Answers awaited.
    pub pending: FuturesUnordered<Awaited>,
    /// The submission waiting for queue room, if any.
    pub submitting: Submitting<'a>,
    /// Records read and not yet submitted, in order.
    pub backlog: VecDeque<ProduceEvent>,
    /// This connection's doors into the producer actors' queues.
    doors: Doors,
}

impl<'a> Delivery<'a> {
    /// Nothing in flight.
    pub fn new() -> Delivery<'a> {
        Delivery {
            pending: FuturesUnordered::new(),
            submitting: None,
            backlog: VecDeque::new(),
            doors: Doors::default(),
        }
    }

    /// Records submitted and not yet answered (the one waiting for room included).
    pub fn in_flight(&self) -> usize {
        self.pending.len() + usize::from(self.submitting.is_some())
    }

    /// Whether reading may go on: the answers awaited are fewer than `max`, nothing waits to
    /// be submitted, and no submission waits for room — unless the feed sheds: then reading
    /// always goes on (what is read is counted as shed, but the one probe).
    pub fn can_read(&self, max: usize, shedding: bool) -> bool {
        shedding
            || (self.submitting.is_none() && self.pending.len() < max && self.backlog.is_empty())
    }

    /// Waits for the parked submission.
    pub async fn room(&mut self) -> Answer {
        room(&mut self.submitting).await
    }
}

/// Waits for the parked submission `s` (pending forever when there is none: a `select!`
/// branch guarded by `s.is_some()`).
pub(super) async fn room(s: &mut Submitting<'_>) -> Answer {
    match s.as_mut() {
        Some((fut, _)) => fut.await,
        None => std::future::pending().await,
    }
}

impl Feed {
    /// Moves backlog records into the producers while there is room, without waiting: a
    /// submission that has to wait for queue room is parked in `d.submitting` for the frame
    /// loop to poll. While shedding, records are sent only as probes, the rest counted.
    pub(super) fn fill<'a>(&'a self, d: &mut Delivery<'a>, outage: &mut Outage) {
        loop {
            // Not shedding: at most `max_outstanding` awaited, nothing past a parked record.
            // Shedding: everything read is counted as shed but the one probe.
            if !outage.shedding()
                && (d.submitting.is_some() || d.pending.len() >= self.cfg.max_outstanding)
            {
                break;
            }
            let Some(mut r) = d.backlog.pop_front() else {
                break;
            };
            if let (Some(instance), crate::producer::Payload::Typed(n)) =
                (&self.instance, &mut r.payload)
            {
                if let crate::schema::Normalized::FeedEvent(e) = n.as_mut() {
                    e.instance = instance.to_string();
                }
            }
            if let Some((dt, venue_us, receipt_us)) = r.payload.times() {
                self.latency.received(dt, venue_us, receipt_us);
            }
            let sent = Sent::of(&r, now_us());
            if outage.shedding() && !outage.probe_now(d.in_flight()) {
                self.lost(&sent, Cause::Shed, outage);
                continue;
            }
            if d.in_flight() == 0 {
                outage.waiting();
            }
            match self.producer.submit_via(&mut d.doors, r) {
                Ok(answer) => d.pending.push(Awaited {
                    answer,
                    sent: Some(sent),
                }),
                Err(wait) => d.submitting = Some((wait, sent)),
            }
        }
    }

    /// The parked submission got its queue slot.
    pub(super) fn submitted(d: &mut Delivery<'_>, answer: Answer) {
        if let Some((_, sent)) = d.submitting.take() {
            d.pending.push(Awaited {
                answer,
                sent: Some(sent),
            });
        }
    }

    /// Whatever was read is still produced (or, while shedding, counted) and answered before
    /// a session ends. A queue that takes nothing for `shed_after` starts shedding here too,
    /// so a stop never waits on a dead broker for longer than that.
    pub(super) async fn drain<'a>(&'a self, d: &mut Delivery<'a>, outage: &mut Outage) {
        loop {
            self.fill(d, outage);
            if d.submitting.is_some() {
                let wait = self.cfg.shed_after.max(Duration::from_millis(10));
                match tokio::time::timeout(wait, d.room()).await {
                    Ok(answer) => Self::submitted(d, answer),
                    Err(_) => {
                        // No room for `shed_after`: this record and, from now on, what is
                        // left are counted as shed instead of waiting on a dead broker.
                        outage.stalled_now();
                        if let Some((_, sent)) = d.submitting.take() {
                            self.lost(&sent, Cause::Shed, outage);
                        }
                    }
                }
                continue;
            }
            if d.backlog.is_empty() {
                break;
            }
            if let Some((answer, sent)) = d.pending.next().await {
                if let Some(ep) = self.answered(answer, &sent, outage) {
                    outage.carry(ep);
                }
            }
        }
        while let Some((answer, sent)) = d.pending.next().await {
            if let Some(ep) = self.answered(answer, &sent, outage) {
                // Announced on the next connection, at its first Ack.
                outage.carry(ep);
            }
        }
    }

    /// Counts a lost record (metric, episode).
    pub(super) fn lost(&self, sent: &Sent, cause: Cause, outage: &mut Outage) {
        self.metrics
            .feed_records_lost
            .get_or_create(&LostLabels {
                exchange: self.labels.exchange.clone(),
                data_type: sent.data_type.to_string(),
                cause: cause.as_str().to_string(),
            })
            .inc();
        self.stats.lost.fetch_add(1, Ordering::Relaxed);
        outage.lost(sent, cause);
    }

    /// Counts an answer; an Ack that ends a loss episode returns it.
    pub(super) fn answered(
        &self,
        answer: Result<Result<Ack, Nack>, oneshot::error::RecvError>,
        sent: &Sent,
        outage: &mut Outage,
    ) -> Option<Episode> {
        let acked = matches!(answer, Ok(Ok(_)));
        let now = now_us();
        if acked {
            self.stats.acked.fetch_add(1, Ordering::Relaxed);
            if let Some(kind) = sent.kind {
                self.latency.acked(kind, sent.receipt_us, now);
            }
        } else {
            self.stats.nacked.fetch_add(1, Ordering::Relaxed);
            self.lost(sent, Cause::Nacked, outage);
        }
        outage.answered(acked, now)
    }

    /// Kafka takes records again after a loss episode: the interval is announced, and every
    /// book of the connection is published again in full — a consumer cannot know which of
    /// its books lost a record (a broker restarted on empty storage lost them all). A synced
    /// book is exact (it kept applying diffs, with every check, while records were shed), so
    /// it is republished now; one still syncing publishes its full book when it syncs.
    pub(super) fn recovered(
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
}
