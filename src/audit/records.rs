//! The records the audit reads, each with its place in its topic, and the chain rule shared by
//! the delta-chain check and the book rebuild.

use crate::schema::v2beta1::feed_event::Kind;
use crate::schema::{FeedEvent, Level2Book, Level2Delta, Trade};

/// A `FeedEvent` kind's name, as reports show it.
pub fn kind_name(kind: i32) -> String {
    Kind::try_from(kind).map_or_else(|_| format!("KIND_{kind}"), |k| k.as_str_name().to_string())
}

/// The rule that makes a disagreement *announced*: the kinds of the non-`SYNCED` events whose
/// interval (`since` or `timestamp` .. `timestamp`, widened to their receipt) overlaps
/// `from..=to` (µs), sorted, each once. Shared by the chain check and the checksum check.
pub fn announced(events: &[&FeedEvent], from: i64, to: i64) -> Vec<String> {
    let mut by: Vec<String> = events
        .iter()
        .filter(|e| e.kind != Kind::Synced as i32)
        .filter(|e| {
            let start = e.since.unwrap_or(e.timestamp).min(e.receipt_time);
            let stop = e.timestamp.max(e.receipt_time);
            start <= to && stop >= from
        })
        .map(|e| kind_name(e.kind))
        .collect();
    by.sort();
    by.dedup();
    by
}

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
