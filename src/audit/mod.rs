//! `tickflow audit`: reads the normalized topics back (a plain consumer: assigned partitions,
//! no group, nothing committed) and checks what a consumer of them can check with the
//! `FeedEvent`s (ADR 0006, "Continuity as records"): per (exchange, symbol), the intervals
//! whose `Level2Delta` chain is contiguous, every break and whether a `FeedEvent` announced
//! it, and trades stored twice under one venue id (see `check`). Anything unannounced makes
//! the command exit non-zero.
//!
//! First version: consolidated topics (`<prefix>.<data_type>`) only; books rebuilt from
//! `Level2Book` + `Level2Delta` and compared with later full books or venue checksums are not
//! checked yet.

pub mod check;

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use thiserror::Error;

use crate::config::{Config, TopicMode};
use crate::schema::{wire, DataType, Normalized};
use check::{DeltaAt, Report, TradeAt};

/// The audit could not run.
#[derive(Debug, Error)]
pub enum AuditError {
    /// The broker could not be read.
    #[error("kafka: {0}")]
    Kafka(String),
    /// The config asks for something the audit does not read yet.
    #[error("{0}")]
    Unsupported(String),
}

/// What to audit.
#[derive(Debug, Clone, Default)]
pub struct AuditRange {
    /// Only records whose Kafka timestamp is at or after this (ms since the epoch).
    pub from_ms: Option<i64>,
    /// Only records whose Kafka timestamp is before this (ms since the epoch).
    pub to_ms: Option<i64>,
}

/// One record read back.
struct Read {
    partition: i32,
    offset: i64,
    value: Vec<u8>,
}

/// Reads `topic` from `range.from_ms` (or the beginning) up to the end it had when the read
/// started (records at or after `range.to_ms` are left out), in offset order per partition.
fn read_topic(cfg: &Config, topic: &str, range: &AuditRange) -> Result<Vec<Read>, AuditError> {
    let kafka = |e: rdkafka::error::KafkaError| AuditError::Kafka(format!("{topic}: {e}"));
    let mut c = rdkafka::ClientConfig::new();
    for (k, v) in cfg.kafka.librdkafka_properties() {
        if k.starts_with("sasl.") || k.starts_with("ssl.") || k == "security.protocol" {
            c.set(k, v);
        }
    }
    c.set("bootstrap.servers", &cfg.kafka.bootstrap_servers)
        // A group id librdkafka needs for a consumer; nothing is ever committed under it.
        .set("group.id", "tickflow-audit")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = c.create().map_err(kafka)?;
    let timeout = Duration::from_secs(10);
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(kafka)?;
    let Some(t) = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
    else {
        return Ok(Vec::new());
    };
    let mut ends = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(topic, p.id(), timeout)
            .map_err(kafka)?;
        if high > low {
            ends.push((p.id(), high));
            let start = match range.from_ms {
                Some(ms) => Offset::Offset(ms),
                None => Offset::Offset(low),
            };
            tpl.add_partition_offset(topic, p.id(), start)
                .map_err(kafka)?;
        }
    }
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    if range.from_ms.is_some() {
        tpl = consumer.offsets_for_times(tpl, timeout).map_err(kafka)?;
    }
    // Partitions whose start is already at (or past) their end are done.
    let mut open: Vec<(i32, i64)> = Vec::new();
    for (p, high) in ends {
        let start = tpl
            .find_partition(topic, p)
            .map(|e| e.offset())
            .unwrap_or(Offset::End);
        match start {
            Offset::Offset(o) if o < high => open.push((p, high)),
            _ => {}
        }
    }
    consumer.assign(&tpl).map_err(kafka)?;
    let mut out = Vec::new();
    let mut idle = std::time::Instant::now();
    while !open.is_empty() {
        match consumer.poll(Duration::from_millis(200)) {
            None => {
                if idle.elapsed() > Duration::from_secs(30) {
                    return Err(AuditError::Kafka(format!(
                        "{topic}: nothing read for 30 s with {} partition(s) unfinished",
                        open.len()
                    )));
                }
            }
            Some(Err(e)) => return Err(kafka(e)),
            Some(Ok(m)) => {
                idle = std::time::Instant::now();
                let (p, o) = (m.partition(), m.offset());
                let Some(i) = open.iter().position(|(q, _)| *q == p) else {
                    continue;
                };
                let in_range = match (range.to_ms, m.timestamp()) {
                    (Some(to), Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t)) => t < to,
                    _ => true,
                };
                if in_range {
                    out.push(Read {
                        partition: p,
                        offset: o,
                        value: m.payload().unwrap_or_default().to_vec(),
                    });
                }
                if o + 1 >= open[i].1 {
                    open.swap_remove(i);
                }
            }
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    Ok(out)
}

/// Decodes the framed records of `dt`'s topic; records that do not decode are counted.
fn decoded(reads: Vec<Read>, dt: DataType, bad: &mut u64) -> Vec<(i32, i64, Normalized)> {
    reads
        .into_iter()
        .filter_map(|r| {
            let n = wire::parse(&r.value)
                .ok()
                .and_then(|f| Normalized::decode(dt, f.payload).ok());
            if n.is_none() {
                *bad += 1;
            }
            n.map(|n| (r.partition, r.offset, n))
        })
        .collect()
}

/// The audit's result with what could not be read as records.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Audit {
    /// Per symbol.
    #[serde(flatten)]
    pub report: Report,
    /// Records that did not decode as their topic's type (counted, not audited).
    pub undecodable: u64,
    /// Whether nothing unannounced was found (and every record decoded).
    pub clean: bool,
}

/// Reads the `level2_delta`, `feed_event` and `trade` topics of `cfg` and audits them.
pub fn run(cfg: &Config, range: &AuditRange) -> Result<Audit, AuditError> {
    if cfg.producer.topic_mode != TopicMode::Consolidated {
        return Err(AuditError::Unsupported(
            "tickflow audit reads consolidated topics (<prefix>.<data_type>) only".into(),
        ));
    }
    let topic = |dt: DataType| format!("{}.{}", cfg.producer.topic_prefix, dt.as_str());
    let mut bad = 0;
    let deltas: Vec<DeltaAt> = decoded(
        read_topic(cfg, &topic(DataType::Level2Delta), range)?,
        DataType::Level2Delta,
        &mut bad,
    )
    .into_iter()
    .filter_map(|(partition, offset, n)| match n {
        Normalized::Level2Delta(delta) => Some(DeltaAt {
            partition,
            offset,
            delta,
        }),
        _ => None,
    })
    .collect();
    let events: Vec<_> = decoded(
        read_topic(cfg, &topic(DataType::FeedEvent), range)?,
        DataType::FeedEvent,
        &mut bad,
    )
    .into_iter()
    .filter_map(|(_, _, n)| match n {
        Normalized::FeedEvent(e) => Some(e),
        _ => None,
    })
    .collect();
    let trades: Vec<TradeAt> = decoded(
        read_topic(cfg, &topic(DataType::Trade), range)?,
        DataType::Trade,
        &mut bad,
    )
    .into_iter()
    .filter_map(|(partition, offset, n)| match n {
        Normalized::Trade(trade) => Some(TradeAt {
            partition,
            offset,
            trade,
        }),
        _ => None,
    })
    .collect();
    let report = check::audit(&deltas, &events, &trades);
    let clean = report.is_clean() && bad == 0;
    Ok(Audit {
        report,
        undecodable: bad,
        clean,
    })
}
