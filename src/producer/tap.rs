//! The tap: what else sees each record Kafka stored (the Redis latest-value sink). As a record
//! is sent, the tap names the key it would keep it under (or none); when, and only when, the
//! broker acknowledges the record, the tap gets the very bytes produced (framed once, shared,
//! not copied) under that key. A record nacked, purged or timed out never reaches it. It must
//! not block: the Kafka path never waits for it.

use bytes::Bytes;

use super::event::ProduceEvent;

/// Sees every record Kafka stored; both calls must return at once.
pub trait RecordTap: Send + Sync + 'static {
    /// The key the tap keeps `event` under, written to `topic`; `None`: the tap does not want
    /// it. Called as the record is handed to Kafka (the key travels with the record).
    fn key(&self, topic: &str, event: &ProduceEvent) -> Option<String>;

    /// The record kept under `key` was acknowledged by the broker; `framed` is its value
    /// exactly as produced (Confluent framing + protobuf).
    fn stored(&self, key: String, framed: Bytes);
}
