//! The tap: what else sees each record as it is handed to Kafka (the Redis latest-value sink).
//! It gets the very bytes produced (framed once, shared, not copied) and must not block: the
//! Kafka path never waits for it.

use bytes::Bytes;

use super::event::ProduceEvent;

/// Sees every framed record as the stream hands it to Kafka; must return at once.
pub trait RecordTap: Send + Sync + 'static {
    /// `framed` is the record's value exactly as produced (Confluent framing + protobuf).
    fn framed(&self, topic: &str, event: &ProduceEvent, framed: &Bytes);
}
