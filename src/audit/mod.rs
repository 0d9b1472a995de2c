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

pub mod books;
pub mod check;
pub mod records;

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use thiserror::Error;

use crate::config::{Config, TopicMode};
use crate::schema::{wire, DataType, Normalized};
use check::Report;
use records::{BookAt, DeltaAt, TradeAt};

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

/// How long a read waits for more records before it takes a topic as read to its end.
const IDLE: Duration = Duration::from_secs(2);

/// Reads `topic` from `range.from_ms` (or the beginning) until nothing more comes for
/// [`IDLE`] (records at or after `range.to_ms` are left out), in offset order per partition.
fn read_topic(cfg: &Config, topic: &str, range: &AuditRange) -> Result<Vec<Read>, AuditError> {
    let kafka = |e: rdkafka::error::KafkaError| AuditError::Kafka(format!("{topic}: {e}"));
    let mut c = rdkafka::ClientConfig::new();
    for (k, v) in cfg.kafka.librdkafka_properties() {
        if k.starts_with("sasl.") || k.starts_with("ssl.") || k == "security.protocol" {
            c.set(k, v);
        }
    }
    c.set("bootstrap.servers", &cfg.kafka.bootstrap_servers)
        // A group id librdkafka needs for a consumer (one per read, never joined: partitions
        // are assigned); nothing is ever committed under it.
        .set(
            "group.id",
            format!(
                "tickflow-audit-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ),
        )
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
    // Every partition from its start. The end is where nothing more comes for `IDLE`: a
    // broker's high watermark can lag what it serves (tansu's did, by a record, under load).
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        let start = match range.from_ms {
            Some(ms) => Offset::Offset(ms),
            None => Offset::Beginning,
        };
        tpl.add_partition_offset(topic, p.id(), start)
            .map_err(kafka)?;
    }
    if range.from_ms.is_some() {
        tpl = consumer.offsets_for_times(tpl, timeout).map_err(kafka)?;
    }
    consumer.assign(&tpl).map_err(kafka)?;
    let mut out = Vec::new();
    let mut last = std::time::Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            None if last.elapsed() >= IDLE => break,
            None => {}
            Some(Err(e)) => return Err(kafka(e)),
            Some(Ok(m)) => {
                last = std::time::Instant::now();
                let in_range = match (range.to_ms, m.timestamp()) {
                    (Some(to), Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t)) => t < to,
                    _ => true,
                };
                if in_range {
                    out.push(Read {
                        partition: m.partition(),
                        offset: m.offset(),
                        value: m.payload().unwrap_or_default().to_vec(),
                    });
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
    /// Records read, per topic.
    pub read: std::collections::BTreeMap<String, u64>,
    /// Records that did not decode as their topic's type (counted, not audited).
    pub undecodable: u64,
    /// Whether nothing unannounced was found (and every record decoded).
    pub clean: bool,
}

/// Reads the `level2_delta`, `level2_book`, `feed_event` and `trade` topics of `cfg` and audits them.
pub fn run(cfg: &Config, range: &AuditRange) -> Result<Audit, AuditError> {
    if cfg.producer.topic_mode != TopicMode::Consolidated {
        return Err(AuditError::Unsupported(
            "tickflow audit reads consolidated topics (<prefix>.<data_type>) only".into(),
        ));
    }
    let topic = |dt: DataType| format!("{}.{}", cfg.producer.topic_prefix, dt.as_str());
    let mut bad = 0;
    let mut read = std::collections::BTreeMap::new();
    let mut read_counted = |dt: DataType| -> Result<Vec<Read>, AuditError> {
        let t = topic(dt);
        let r = read_topic(cfg, &t, range)?;
        read.insert(t, r.len() as u64);
        Ok(r)
    };
    let delta_reads = read_counted(DataType::Level2Delta)?;
    let book_reads = read_counted(DataType::Level2Book)?;
    let event_reads = read_counted(DataType::FeedEvent)?;
    let trade_reads = read_counted(DataType::Trade)?;
    let deltas: Vec<DeltaAt> = decoded(delta_reads, DataType::Level2Delta, &mut bad)
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
    let books: Vec<BookAt> = decoded(book_reads, DataType::Level2Book, &mut bad)
        .into_iter()
        .filter_map(|(partition, offset, n)| match n {
            Normalized::Level2Book(book) => Some(BookAt {
                partition,
                offset,
                book,
            }),
            _ => None,
        })
        .collect();
    let events: Vec<_> = decoded(event_reads, DataType::FeedEvent, &mut bad)
        .into_iter()
        .filter_map(|(_, _, n)| match n {
            Normalized::FeedEvent(e) => Some(e),
            _ => None,
        })
        .collect();
    let trades: Vec<TradeAt> = decoded(trade_reads, DataType::Trade, &mut bad)
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
    let report = check::audit(&deltas, &books, &events, &trades);
    let clean = report.is_clean() && bad == 0;
    Ok(Audit {
        report,
        read,
        undecodable: bad,
        clean,
    })
}
