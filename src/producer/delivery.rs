//! The delivery step: librdkafka reports every record it was handed, on its own polling
//! thread. Each report goes back, by channel, to the stream that sent the record, which
//! answers the event (ADR 0002). Nothing per record is shared between the two threads but
//! the record itself: the report finds its stream by id, not through a reference count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rdkafka::client::ClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};
use rustc_hash::FxHashMap;
use tokio::sync::mpsc;

use super::classify::{classify, error_code, ErrorClass};
use super::client::Reply;
use super::event::{Ack, Nack, NackReason, ProduceEvent};
use crate::metrics::ErrorLabels;

/// The rdkafka producer every topic shares: librdkafka's queue and polling thread, with
/// [`Reports`] routing each delivery report.
pub type KafkaProducer = ThreadedProducer<Reports>;

/// What travels with one record through librdkafka and comes back in its delivery report.
pub enum Delivery {
    /// A record of an event, sent by the stream `stream`.
    Event {
        /// The id of the stream's [`Route`].
        stream: u64,
        /// What answering the event needs.
        pending: Pending,
    },
    /// A dead-letter record: its report is counted (or logged) where it arrives.
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
        /// The dead-letter counters; the series of `labels` is counted (and so created)
        /// only once the record is written.
        written: Family<ErrorLabels, Counter>,
        /// The original topic and the reason.
        labels: ErrorLabels,
    },
}

/// What a reported record needs to answer its event.
pub struct Pending {
    /// Where the answer goes.
    pub(crate) reply: Reply,
    /// When the event was accepted (the Ack's latency is measured from here).
    pub(crate) accepted: Instant,
    /// The produced counter of the event's (data type, exchange).
    pub(crate) produced: Produced,
    /// The event and its framed bytes, kept only when a dead-letter topic is configured.
    pub(crate) dead_letter: Option<Box<(ProduceEvent, bytes::Bytes)>>,
    /// The tap's key and the framed bytes, handed to the tap once the record is acknowledged
    /// (only when a tap is installed and wants the record).
    pub(crate) tap: Option<Box<(String, bytes::Bytes)>>,
}

/// Which produced counter a delivered record increments.
pub enum Produced {
    /// The stream's cached counter at this index.
    Cached(usize),
    /// A counter of its own (past the stream's cache).
    Other(Counter),
}

/// How a record ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written at this partition, at this offset when librdkafka knows it (a delivery it
    /// reports as a success without an offset, e.g. a duplicate sequence the broker already
    /// held, is `None`: stored, position unknown).
    Delivered {
        /// Partition.
        partition: i32,
        /// Offset, when known.
        offset: Option<i64>,
    },
    /// Not written.
    Failed {
        /// The Kafka error code.
        code: RDKafkaErrorCode,
        /// The error as text.
        message: String,
    },
}

/// One delivery report on its way back to its stream.
pub struct Report {
    /// The record's delivery (always [`Delivery::Event`]); boxed as it travelled, so it is
    /// freed by the stream's thread, which allocated it.
    pub delivery: Box<Delivery>,
    /// How it ended.
    pub outcome: Outcome,
    /// The generation of the producer that sent the record (see `SharedProducer`).
    pub generation: u64,
}

/// Where each stream's reports go, by stream id; shared by every generation of the producer.
#[derive(Debug, Default)]
pub struct Routes {
    next: AtomicU64,
    open: RwLock<FxHashMap<u64, mpsc::UnboundedSender<Report>>>,
    /// Counts reports answered here because their stream was gone (set once, by the first
    /// stream opened).
    orphans: std::sync::OnceLock<Counter>,
}

impl Routes {
    /// Opens a route for a new stream writing to `topic`: reports of the records it sends
    /// (tagged with [`Route::id`]) arrive in the [`Inbox`] until the route is dropped.
    pub fn open(self: &Arc<Self>, topic: Arc<str>) -> (Route, Inbox) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.open
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tx);
        (
            Route {
                id,
                routes: self.clone(),
            },
            Inbox {
                rx,
                topic,
                routes: self.clone(),
            },
        )
    }

    /// Answers a report whose stream is gone from its outcome, and counts it.
    fn orphan(&self, topic: &str, report: Report) {
        if let Some(c) = self.orphans.get() {
            c.inc();
        }
        answer_orphan(topic, report);
    }

    /// Counts the reports answered without their stream in `counter` (the first call wins).
    pub fn count_orphans(&self, counter: &Counter) {
        let _ = self.orphans.set(counter.clone());
    }

    /// Sends a report to its stream. With the stream gone (its actor restarted or stopped),
    /// the outcome answers the event here, truthfully: a stored record is acknowledged (a
    /// retried copy would be a duplicate), a failed one is nacked with its delivery error.
    fn deliver(&self, stream: u64, topic: &str, report: Report) {
        let report = {
            let open = self.open.read().unwrap_or_else(PoisonError::into_inner);
            match open.get(&stream) {
                Some(tx) => match tx.send(report) {
                    Ok(()) => return,
                    // The stream ended between the lookup and the send.
                    Err(mpsc::error::SendError(report)) => report,
                },
                None => report,
            }
        };
        self.orphan(topic, report);
    }
}

/// Where a stream's reports arrive. Dropped with its stream (an actor restart aborts it),
/// it closes and answers every report still waiting in it from its outcome, as
/// `Routes::deliver` does for those that come later: a stored record is never answered
/// `Interrupted`.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Report>,
    topic: Arc<str>,
    routes: Arc<Routes>,
}

impl Inbox {
    /// Receives up to `limit` reports into `buf` (waits for one); 0 when closed.
    pub async fn recv_many(&mut self, buf: &mut Vec<Report>, limit: usize) -> usize {
        self.rx.recv_many(buf, limit).await
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.rx.close();
        while let Ok(report) = self.rx.try_recv() {
            self.routes.orphan(&self.topic, report);
        }
    }
}

/// Answers a reported record whose stream is gone, from its outcome alone.
fn answer_orphan(topic: &str, report: Report) {
    let Report {
        delivery, outcome, ..
    } = report;
    let Delivery::Event { pending, .. } = *delivery else {
        return;
    };
    let answer = match outcome {
        Outcome::Delivered { partition, offset } => Ok(Ack {
            topic: Arc::from(topic),
            partition,
            offset,
            latency: pending.accepted.elapsed(),
        }),
        // Purged by us (shutdown deadline, or a replaced producer's unsent records): the
        // dropped reply answers `ShuttingDown` or `Interrupted`.
        Outcome::Failed {
            code: RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight,
            ..
        } => return,
        Outcome::Failed { code, message } => Err(Nack::new(
            NackReason::Delivery {
                code: format!("{code:?}"),
                message,
            },
            classify(code) != ErrorClass::Permanent,
        )),
    };
    pending.reply.send(answer);
}

/// A stream's registration in [`Routes`]; closed when dropped.
#[derive(Debug)]
pub struct Route {
    id: u64,
    routes: Arc<Routes>,
}

impl Route {
    /// The id that records sent by this stream carry.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        self.routes
            .open
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// The producer context: sends each delivery report back to the stream of its record,
/// tagged with the generation of the producer it belongs to.
#[derive(Debug, Clone)]
pub struct Reports {
    routes: Arc<Routes>,
    generation: u64,
}

impl Reports {
    /// A context routing reports through `routes`, for the producer of `generation`.
    pub fn new(routes: Arc<Routes>, generation: u64) -> Reports {
        Reports { routes, generation }
    }
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<Delivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, delivery: Box<Delivery>) {
        match &*delivery {
            Delivery::Event { stream, .. } => {
                let stream = *stream;
                let (outcome, topic) = match result {
                    Ok(m) => (
                        Outcome::Delivered {
                            partition: m.partition(),
                            // librdkafka reports RD_KAFKA_OFFSET_INVALID (-1001), or -1, when it
                            // does not know where the record went.
                            offset: (m.offset() >= 0).then_some(m.offset()),
                        },
                        m.topic(),
                    ),
                    Err((e, m)) => (
                        Outcome::Failed {
                            code: error_code(e),
                            message: e.to_string(),
                        },
                        m.topic(),
                    ),
                };
                let report = Report {
                    delivery,
                    outcome,
                    generation: self.generation,
                };
                self.routes.deliver(stream, topic, report);
            }
            Delivery::DeadLetter {
                topic,
                written,
                labels,
            } => {
                if let Err((e, _)) = result {
                    tracing::error!(%topic, error = %e, "dead-letter write failed");
                } else {
                    written.get_or_create(labels).inc();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::sync::atomic::AtomicBool;

    use tokio::sync::oneshot;

    use super::*;

    fn report(stream: u64, outcome: Outcome) -> (Report, oneshot::Receiver<Result<Ack, Nack>>) {
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            reply: Reply::new(Some(tx), Arc::new(AtomicBool::new(false))),
            accepted: Instant::now(),
            produced: Produced::Other(Counter::default()),
            dead_letter: None,
            tap: None,
        };
        let report = Report {
            delivery: Box::new(Delivery::Event { stream, pending }),
            outcome,
            generation: 0,
        };
        (report, rx)
    }

    fn at(offset: i64) -> Outcome {
        Outcome::Delivered {
            partition: 3,
            offset: Some(offset),
        }
    }

    #[test]
    fn a_report_reaches_its_open_stream_and_nothing_else() {
        let routes = Arc::new(Routes::default());
        let (route, mut reports) = routes.open(Arc::from("t"));
        let (other, mut other_reports) = routes.open(Arc::from("t"));
        assert_ne!(route.id(), other.id());

        let (r, mut answer) = report(route.id(), at(7));
        routes.deliver(route.id(), "t", r);
        let got = reports.rx.try_recv().expect("routed to its stream");
        assert_eq!(got.outcome, at(7));
        assert!(
            answer.try_recv().is_err(),
            "the stream answers, not the route"
        );
        assert!(other_reports.rx.try_recv().is_err());
    }

    #[test]
    fn a_stored_record_whose_stream_is_gone_is_acked_at_its_offset_not_nacked() {
        let routes = Arc::new(Routes::default());
        let (route, mut reports) = routes.open(Arc::from("t"));
        let id = route.id();
        let orphans = Counter::default();
        routes.count_orphans(&orphans);
        drop(route);
        let (r, mut answer) = report(id, at(7));
        routes.deliver(id, "ticks", r);
        assert_eq!(orphans.get(), 1);
        let ack = answer.try_recv().expect("answered").expect("an Ack");
        assert_eq!(&*ack.topic, "ticks");
        assert_eq!((ack.partition, ack.offset), (3, Some(7)));
        assert!(
            reports.rx.try_recv().is_err(),
            "nothing reaches a closed route"
        );
    }

    #[test]
    fn reports_still_waiting_in_a_dropped_inbox_are_answered_from_their_outcome() {
        let routes = Arc::new(Routes::default());
        let (route, inbox) = routes.open(Arc::from("ticks"));
        // Delivered to the stream, not yet read by it, when the stream dies.
        let (r, mut answer) = report(route.id(), at(9));
        routes.deliver(route.id(), "ticks", r);
        assert!(answer.try_recv().is_err(), "waiting in the inbox");
        drop(inbox);
        drop(route);
        let ack = answer.try_recv().expect("answered").expect("an Ack");
        assert_eq!((ack.partition, ack.offset), (3, Some(9)));
    }

    #[test]
    fn a_failed_record_whose_stream_is_gone_is_nacked_with_its_delivery_error() {
        let routes = Arc::new(Routes::default());
        let (r, mut answer) = report(
            99,
            Outcome::Failed {
                code: RDKafkaErrorCode::MessageSizeTooLarge,
                message: "too large".into(),
            },
        );
        routes.deliver(99, "ticks", r);
        let nack = answer.try_recv().expect("answered").expect_err("a Nack");
        assert_eq!(
            nack,
            Nack::new(
                NackReason::Delivery {
                    code: "MessageSizeTooLarge".into(),
                    message: "too large".into()
                },
                false
            )
        );
        let (r, mut answer) = report(
            99,
            Outcome::Failed {
                code: RDKafkaErrorCode::MessageTimedOut,
                message: "timed out".into(),
            },
        );
        routes.deliver(99, "ticks", r);
        let nack = answer.try_recv().expect("answered").expect_err("a Nack");
        assert!(nack.retriable);
    }
}
