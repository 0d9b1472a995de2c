//! The records the audit reads, each with its place in its topic, and the chain rule shared by
//! the delta-chain check and the book rebuild.

use crate::schema::{Level2Book, Level2Delta, Trade};

/// A delta's place in its topic and what the chain needs of it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaAt {
    /// Kafka partition and offset, for the report.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// The record.
    pub delta: Level2Delta,
}

/// A trade's place in its topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TradeAt {
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// The record.
    pub trade: Trade,
}

/// A full book's place in its topic.
#[derive(Debug, Clone, PartialEq)]
pub struct BookAt {
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// The record.
    pub book: Level2Book,
}

/// Whether delta `d` continues a chain whose last venue id is `last`.
pub fn continues(last: i64, d: &Level2Delta) -> bool {
    if d.prev_update_id == Some(last) {
        return true;
    }
    match (d.first_update_id, d.last_update_id) {
        (Some(first), Some(end)) => first <= last.saturating_add(1) && end > last,
        _ => false,
    }
}
