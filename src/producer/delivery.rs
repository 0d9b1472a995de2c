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

use super::classify::error_code;
use super::client::Reply;
use super::event::ProduceEvent;
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
    /// Written at this partition and offset.
    Delivered {
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
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
}

/// Where each stream's reports go, by stream id; shared by every generation of the producer.
#[derive(Debug, Default)]
pub struct Routes {
    next: AtomicU64,
    open: RwLock<FxHashMap<u64, mpsc::UnboundedSender<Report>>>,
}

impl Routes {
    /// Opens a route for a new stream: reports of the records it sends (tagged with
    /// [`Route::id`]) arrive on the receiver until the route is dropped.
    pub fn open(self: &Arc<Self>) -> (Route, mpsc::UnboundedReceiver<Report>) {
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
            rx,
        )
    }

    /// Sends a report to its stream. With the stream gone (its actor restarted or stopped),
    /// the report is dropped here, and its `Reply` answers `Interrupted` (or `ShuttingDown`).
    fn deliver(&self, stream: u64, report: Report) {
        let open = self.open.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = open.get(&stream) {
            let _ = tx.send(report);
        }
    }
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

/// The producer context: sends each delivery report back to the stream of its record.
#[derive(Debug, Clone)]
pub struct Reports {
    routes: Arc<Routes>,
}

impl Reports {
    /// A context routing reports through `routes`.
    pub fn new(routes: Arc<Routes>) -> Reports {
        Reports { routes }
    }
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<Delivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, delivery: Box<Delivery>) {
        match &*delivery {
            Delivery::Event { stream, .. } => {
                let stream = *stream;
                let outcome = match result {
                    Ok(m) => Outcome::Delivered {
                        partition: m.partition(),
                        offset: m.offset(),
                    },
                    Err((e, _)) => Outcome::Failed {
                        code: error_code(e),
                        message: e.to_string(),
                    },
                };
                self.routes.deliver(stream, Report { delivery, outcome });
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
    use std::sync::atomic::AtomicBool;

    use tokio::sync::oneshot;

    use super::*;
    use crate::producer::event::{Ack, Nack, NackReason};

    fn report(stream: u64) -> (Report, oneshot::Receiver<Result<Ack, Nack>>) {
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            reply: Reply::new(Some(tx), Arc::new(AtomicBool::new(false))),
            accepted: Instant::now(),
            produced: Produced::Other(Counter::default()),
            dead_letter: None,
        };
        let report = Report {
            delivery: Box::new(Delivery::Event { stream, pending }),
            outcome: Outcome::Delivered {
                partition: 0,
                offset: 7,
            },
        };
        (report, rx)
    }

    #[test]
    fn a_report_reaches_its_open_stream_and_answers_interrupted_once_it_is_gone() {
        let routes = Arc::new(Routes::default());
        let (route, mut reports) = routes.open();
        let (other, _other_reports) = routes.open();
        assert_ne!(route.id(), other.id());

        let (r, mut answer) = report(route.id());
        routes.deliver(route.id(), r);
        let got = reports.try_recv().expect("routed to its stream");
        assert_eq!(
            got.outcome,
            Outcome::Delivered {
                partition: 0,
                offset: 7
            }
        );
        assert!(
            answer.try_recv().is_err(),
            "the stream answers, not the route"
        );

        drop(route);
        let (r, mut answer) = report(0);
        routes.deliver(0, r);
        let nack = answer.try_recv().expect("answered").expect_err("a Nack");
        assert_eq!(nack.reason, NackReason::Interrupted);
        assert!(
            reports.try_recv().is_err(),
            "nothing reaches a closed route"
        );
    }
}
