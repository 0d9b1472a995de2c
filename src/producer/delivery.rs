//! The delivery step: librdkafka reports every record it was handed, on its own polling
//! thread, and that report answers the record's event. An Ack is sent from there at once; a
//! failure goes back to the topic's stream, which owns the breaker, the dead-letter topic and
//! the rebuild decision (ADR 0002).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures::task::AtomicWaker;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use rdkafka::client::ClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};
use tokio::sync::mpsc;

use super::event::{Ack, ProduceEvent};
use super::kafka::error_code;
use super::stream::Reply;

/// The rdkafka producer every topic shares: librdkafka's own queue and polling thread, with
/// [`Reports`] answering each delivery report.
pub type KafkaProducer = ThreadedProducer<Reports>;

/// What travels with one record through librdkafka and comes back in its delivery report.
pub enum Delivery {
    /// A record of an event: its report answers the event.
    Event(Pending),
    /// A dead-letter record: its report is counted (or logged).
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
        /// Counted when the record is written.
        written: Counter,
    },
}

/// What a delivered (or failed) record needs to answer its event.
pub struct Pending {
    /// Where the answer goes.
    pub(crate) reply: Reply,
    /// When the event was accepted (the Ack's latency is measured from here).
    pub(crate) accepted: Instant,
    /// The produced counter of the event's (data type, exchange).
    pub(crate) produced: Counter,
    /// The event and its framed bytes, kept only when a dead-letter topic is configured.
    pub(crate) dead_letter: Option<Box<(ProduceEvent, Vec<u8>)>>,
    /// The stream this record belongs to.
    pub(crate) flight: Arc<Flight>,
}

/// A failed delivery, handed back to its stream to be classified and answered.
pub struct Failed {
    /// The event's pending answer.
    pub pending: Pending,
    /// The Kafka error code.
    pub code: RDKafkaErrorCode,
    /// The error as text.
    pub message: String,
}

/// What one topic's stream shares with the delivery reports of its records.
///
/// The stream's thread and librdkafka's polling thread each write their own counters (records
/// sent here, records reported there), so no cache line is written from both sides per record.
pub struct Flight {
    topic: Arc<str>,
    produce_latency: Histogram,
    max: u64,
    /// Records handed to librdkafka (written by the stream only).
    sent: AtomicU64,
    /// Records reported, and of those the successes (written by the reports only).
    reported: AtomicU64,
    succeeded: AtomicU64,
    /// Set while the stream wants to hear of every success (its broker breaker is not closed).
    watch: AtomicBool,
    /// Set with each wake-up, so the stream tells a wake-up from a spurious poll.
    signal: AtomicBool,
    waker: AtomicWaker,
    failures: mpsc::UnboundedSender<Failed>,
}

impl Flight {
    /// The shared state of a stream that keeps at most `max` records in flight; failures are
    /// received on the returned channel.
    pub fn new(
        topic: Arc<str>,
        produce_latency: Histogram,
        max: usize,
    ) -> (Arc<Flight>, mpsc::UnboundedReceiver<Failed>) {
        let (failures, rx) = mpsc::unbounded_channel();
        let flight = Flight {
            topic,
            produce_latency,
            max: max.max(1) as u64,
            sent: AtomicU64::new(0),
            reported: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            watch: AtomicBool::new(false),
            signal: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            failures,
        };
        (Arc::new(flight), rx)
    }

    /// Records in flight now.
    pub fn in_flight(&self) -> u64 {
        let reported = self.reported.load(Ordering::Acquire);
        self.sent.load(Ordering::Acquire).saturating_sub(reported)
    }

    /// Whether another record may be handed to librdkafka.
    pub fn has_room(&self) -> bool {
        self.in_flight() < self.max
    }

    /// Counts a record handed to librdkafka (before it is sent, so its report cannot come
    /// first). Called by the stream only.
    pub fn take_off(&self) {
        self.sent.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a record reported (or refused by `send`); wakes the stream when that made
    /// room or emptied the flight.
    pub fn land(&self) {
        let reported = self.reported.fetch_add(1, Ordering::AcqRel) + 1;
        let left = self.sent.load(Ordering::Acquire).saturating_sub(reported);
        if left + 1 == self.max || left == 0 {
            self.wake();
        }
    }

    /// Successful deliveries so far (the stream compares with what it saw last).
    pub fn succeeded(&self) -> u64 {
        self.succeeded.load(Ordering::Acquire)
    }

    /// Asks to be woken by every success (while the broker breaker is not closed).
    pub fn watch_successes(&self, on: bool) {
        self.watch.store(on, Ordering::Release);
    }

    fn wake(&self) {
        self.signal.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Resolves at the next wake-up (room again, flight empty, or a watched success).
    pub fn woken(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            self.waker.register(cx.waker());
            if self.signal.swap(false, Ordering::AcqRel) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }
}

impl Pending {
    /// Answers a successful delivery, or hands a failed one back to the stream. If the stream
    /// is gone (its actor restarted or stopped), the dropped `Reply` answers `Interrupted`
    /// (or `ShuttingDown`).
    fn report(self, result: &DeliveryResult<'_>) {
        let flight = self.flight.clone();
        match result {
            Ok(m) => {
                let latency = self.accepted.elapsed();
                self.produced.inc();
                flight.produce_latency.observe(latency.as_secs_f64());
                flight.succeeded.fetch_add(1, Ordering::AcqRel);
                self.reply.send(Ok(Ack {
                    topic: flight.topic.clone(),
                    partition: m.partition(),
                    offset: m.offset(),
                    latency,
                }));
                if flight.watch.load(Ordering::Acquire) {
                    flight.wake();
                }
            }
            Err((e, _)) => {
                let failed = Failed {
                    code: error_code(e),
                    message: e.to_string(),
                    pending: self,
                };
                // The stream's receiver wakes it.
                let _ = flight.failures.send(failed);
            }
        }
        flight.land();
    }
}

/// The producer context: routes each delivery report to its [`Delivery`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Reports;

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<Delivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, delivery: Box<Delivery>) {
        match *delivery {
            Delivery::Event(p) => p.report(result),
            Delivery::DeadLetter { topic, written } => match result {
                Ok(_) => {
                    written.inc();
                }
                Err((e, _)) => tracing::error!(%topic, error = %e, "dead-letter write failed"),
            },
        }
    }
}
