//! The delivery step: librdkafka reports each record's fate on its polling thread, and the
//! answer goes from there straight to the event's sender. A success is answered right there
//! (Ack, counters, latency). A failure goes back to the topic's stream, the one place that
//! classifies errors, feeds the breaker, dead-letters and answers the Nack. Every record
//! holds one slot of the topic's bounded in-flight window until its report is handled.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use rdkafka::client::ClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use tokio::sync::{mpsc, Notify};

use super::event::{Ack, ProduceEvent};
use super::kafka::error_code;
use super::stream::Reply;

/// The rdkafka context of the shared producer: it routes each delivery report to its record.
#[derive(Debug, Default, Clone, Copy)]
pub struct DeliveryContext;

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Outstanding>;

    fn delivery(&self, result: &DeliveryResult<'_>, outstanding: Box<Outstanding>) {
        match *outstanding {
            Outstanding::Event(pending) => pending.delivered(result),
            Outstanding::DeadLetter(report) => report.delivered(result),
        }
    }
}

/// A record librdkafka holds.
pub enum Outstanding {
    /// A `ProduceEvent` whose sender awaits the answer.
    Event(Pending),
    /// A copy written to the dead-letter topic (its original was already Nacked).
    DeadLetter(DeadLetterReport),
}

/// The bounded in-flight window of one topic, shared with its records' delivery reports.
#[derive(Debug)]
pub struct Window {
    /// The topic (for Acks).
    pub topic: Arc<str>,
    count: AtomicUsize,
    max: usize,
    /// Woken when a slot frees up at the limit, and when the last one frees.
    room: Notify,
    /// Successful deliveries so far (the stream feeds them to the broker breaker).
    pub delivered: AtomicU64,
    failures: mpsc::UnboundedSender<Failed>,
    /// Produce latency of the topic.
    pub produce_latency: Histogram,
}

impl Window {
    /// A window of `max` records for `topic`; failed reports arrive on the returned receiver.
    pub fn new(
        topic: Arc<str>,
        max: usize,
        produce_latency: Histogram,
    ) -> (Arc<Window>, mpsc::UnboundedReceiver<Failed>) {
        let (failures, rx) = mpsc::unbounded_channel();
        let window = Window {
            topic,
            count: AtomicUsize::new(0),
            max: max.max(1),
            room: Notify::new(),
            delivered: AtomicU64::new(0),
            failures,
            produce_latency,
        };
        (Arc::new(window), rx)
    }

    /// Records in flight.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Whether no record is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the window is full.
    pub fn is_full(&self) -> bool {
        self.len() >= self.max
    }

    /// Takes a slot (the caller checked there is room).
    pub fn take(self: &Arc<Window>) -> Slot {
        self.count.fetch_add(1, Ordering::AcqRel);
        Slot(self.clone())
    }

    /// Waits until a slot frees up (or the last one does).
    pub async fn changed(&self) {
        self.room.notified().await;
    }
}

/// One record's place in the window, given back when it drops.
#[derive(Debug)]
pub struct Slot(Arc<Window>);

impl Drop for Slot {
    fn drop(&mut self) {
        let w = &self.0;
        let before = w.count.fetch_sub(1, Ordering::AcqRel);
        if before >= w.max || before == 1 {
            w.room.notify_one();
        }
    }
}

/// What a record needs to be answered when its report comes.
pub struct Pending {
    /// Where the answer goes.
    pub(crate) reply: Reply,
    /// When the producer actor accepted the event.
    pub(crate) accepted: Instant,
    /// The produced counter of the event's (data type, exchange).
    pub(crate) produced: Counter,
    /// Kept only when a dead-letter topic is configured.
    pub(crate) dead_letter: Option<Box<(ProduceEvent, Vec<u8>)>>,
    /// Its place in the window.
    pub(crate) slot: Slot,
}

/// A failed delivery, for the stream to classify and answer.
pub struct Failed {
    /// The record.
    pub(crate) pending: Pending,
    /// librdkafka's error code.
    pub(crate) code: RDKafkaErrorCode,
    /// The error's description.
    pub(crate) message: String,
}

impl Pending {
    fn delivered(self, result: &DeliveryResult<'_>) {
        match result {
            Ok(msg) => {
                let w = self.slot.0.clone();
                let latency = self.accepted.elapsed();
                self.produced.inc();
                w.produce_latency.observe(latency.as_secs_f64());
                w.delivered.fetch_add(1, Ordering::Release);
                self.reply.send(Ok(Ack {
                    topic: w.topic.clone(),
                    partition: msg.partition(),
                    offset: msg.offset(),
                    latency,
                }));
            }
            Err((e, _msg)) => {
                let failures = self.slot.0.failures.clone();
                let failed = Failed {
                    code: error_code(e),
                    message: e.to_string(),
                    pending: self,
                };
                // If the stream is gone (restart, shutdown deadline), dropping the record
                // answers it: Nack(Interrupted) or Nack(ShuttingDown).
                let _ = failures.send(failed);
            }
        }
    }
}

/// Counts a dead-letter write once librdkafka reports it.
pub struct DeadLetterReport {
    /// The dead-letter topic.
    pub topic: String,
    /// Incremented when the write succeeds.
    pub written: Counter,
}

impl DeadLetterReport {
    fn delivered(self, result: &DeliveryResult<'_>) {
        match result {
            Ok(_) => {
                self.written.inc();
            }
            Err((e, _)) => {
                tracing::error!(topic = %self.topic, error = %e, "dead-letter write failed")
            }
        }
    }
}
