//! `ProduceEvent` in, `Ack` or `Nack` out.

use std::sync::Arc;
use std::time::Duration;

use actix::Message;
use thiserror::Error;

use crate::schema::borrowed::EncodedRecord;
use crate::schema::{DataType, Normalized};

/// A protobuf schema supplied with pre-encoded payloads (registered under the topic's subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSchema {
    /// Fully qualified message name, e.g. `my.pkg.Quote`.
    pub full_name: String,
    /// Self-contained `.proto` text (no imports).
    pub proto: String,
    /// Message indexes of `full_name` in `proto` (`[0]` = first top-level message).
    pub message_indexes: Vec<i32>,
}

/// What an event carries.
#[derive(Debug, Clone)]
pub enum Payload {
    /// A typed normalized record; encoded with its `tickflow.normalized.v2beta1` schema.
    /// Boxed: an event is moved several times on its way (mailbox, queue, stream), and a
    /// record is up to ~300 bytes.
    Typed(Box<Normalized>),
    /// A normalized record already encoded (a feed's hot path); framed with its data type's
    /// `tickflow.normalized.v2beta1` schema, like `Typed`.
    Normalized(EncodedRecord),
    /// Protobuf bytes already encoded for `schema`.
    Encoded {
        /// The schema the bytes were encoded with.
        schema: Arc<RawSchema>,
        /// Protobuf payload (no framing).
        bytes: Vec<u8>,
        /// Exchange, for headers and keys.
        exchange: String,
        /// Symbol, for headers and keys.
        symbol: String,
    },
}

impl Payload {
    /// The venue.
    pub fn exchange(&self) -> &str {
        match self {
            Payload::Typed(n) => n.exchange(),
            Payload::Normalized(e) => e.exchange,
            Payload::Encoded { exchange, .. } => exchange,
        }
    }

    /// The symbol.
    pub fn symbol(&self) -> &str {
        match self {
            Payload::Typed(n) => n.symbol(),
            Payload::Normalized(e) => &e.symbol,
            Payload::Encoded { symbol, .. } => symbol,
        }
    }

    /// The normalized data type, when typed.
    pub fn data_type(&self) -> Option<DataType> {
        match self {
            Payload::Typed(n) => Some(n.data_type()),
            Payload::Normalized(e) => Some(e.data_type),
            Payload::Encoded { .. } => None,
        }
    }

    /// Its data type, when the venue timed it and when its message was received (µs since the
    /// epoch); `None` for bytes encoded elsewhere.
    pub fn times(&self) -> Option<(DataType, Option<i64>, i64)> {
        match self {
            Payload::Typed(n) => Some((n.data_type(), n.exchange_time_us(), n.receipt_time_us())),
            Payload::Normalized(e) => Some((e.data_type, e.venue_us, e.receipt_us)),
            Payload::Encoded { .. } => None,
        }
    }

    /// Name used in the `data_type` header and metrics (`raw` for pre-encoded payloads).
    pub fn data_type_name(&self) -> &'static str {
        self.data_type().map_or("raw", DataType::as_str)
    }
}

/// One record to produce. Its actix result is `Result<Ack, Nack>`, answered exactly once.
#[derive(Debug, Clone)]
pub struct ProduceEvent {
    /// Explicit topic; `None` routes by data type, exchange and symbol (see `producer.topic_mode`).
    pub topic: Option<String>,
    /// Explicit record key; `None` uses `producer.partition_key`.
    pub key: Option<Vec<u8>>,
    /// Extra headers, after the standard ones.
    pub headers: Vec<(String, String)>,
    /// The record.
    pub payload: Payload,
}

impl ProduceEvent {
    /// A typed event routed by the config.
    pub fn typed(record: Normalized) -> ProduceEvent {
        ProduceEvent {
            topic: None,
            key: None,
            headers: Vec::new(),
            payload: Payload::Typed(Box::new(record)),
        }
    }

    /// An already-encoded normalized record routed by the config.
    pub fn encoded(record: EncodedRecord) -> ProduceEvent {
        ProduceEvent {
            topic: None,
            key: None,
            headers: Vec::new(),
            payload: Payload::Normalized(record),
        }
    }

    /// The same event sent to an explicit topic.
    pub fn to_topic(mut self, topic: impl Into<String>) -> ProduceEvent {
        self.topic = Some(topic.into());
        self
    }
}

impl Message for ProduceEvent {
    type Result = Result<Ack, Nack>;
}

/// The broker stored the record: with `acks = all` (the default, and required with
/// idempotence) every in-sync replica has it; with `acks = 1`, accepted only with
/// `kafka.allow_leader_only_acks`, only the partition leader had it when it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Topic written.
    pub topic: Arc<str>,
    /// Partition written.
    pub partition: i32,
    /// Offset in the partition; `None` when the broker stored the record but librdkafka did
    /// not learn where (e.g. a retried batch the broker already held, reported as a
    /// duplicate sequence). Never a negative placeholder.
    pub offset: Option<i64>,
    /// From acceptance by the producer actor to the broker's acknowledgement.
    pub latency: Duration,
}

/// A dependency guarded by a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// The schema registry.
    Registry,
    /// The Kafka broker.
    Broker,
}

/// Why an event was not produced.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NackReason {
    /// The topic's queue was full and the overflow policy is `nack`.
    #[error("queue full")]
    QueueFull,
    /// The schema could not be registered or looked up.
    #[error("schema registry: {0}")]
    SchemaRegistry(String),
    /// The record could not be encoded or routed.
    #[error("encode: {0}")]
    Encode(String),
    /// The broker did not take the record; librdkafka's error code and message.
    #[error("delivery failed: {code} ({message})")]
    Delivery {
        /// librdkafka error code name, e.g. `MessageSizeTooLarge`.
        code: String,
        /// Human description.
        message: String,
    },
    /// The dependency's circuit breaker is open; the event was not attempted.
    #[error("circuit open: {0:?}")]
    CircuitOpen(Dependency),
    /// The producer is stopping (or stopped) and did not deliver the event in time.
    #[error("shutting down")]
    ShuttingDown,
    /// The producer actor failed and was restarted while the event was pending.
    #[error("interrupted by a producer restart")]
    Interrupted,
}

impl NackReason {
    /// A short, bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            NackReason::QueueFull => "queue_full",
            NackReason::SchemaRegistry(_) => "schema_registry",
            NackReason::Encode(_) => "encode",
            NackReason::Delivery { .. } => "delivery",
            NackReason::CircuitOpen(Dependency::Registry) => "circuit_open_registry",
            NackReason::CircuitOpen(Dependency::Broker) => "circuit_open_broker",
            NackReason::ShuttingDown => "shutting_down",
            NackReason::Interrupted => "interrupted",
        }
    }
}

/// The event was not produced; `retriable` says whether sending it again may succeed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason} (retriable: {retriable})")]
pub struct Nack {
    /// What happened.
    pub reason: NackReason,
    /// True when the same event may succeed later.
    pub retriable: bool,
}

impl Nack {
    /// A nack with the given reason and retriability.
    pub fn new(reason: NackReason, retriable: bool) -> Nack {
        Nack { reason, retriable }
    }
}
