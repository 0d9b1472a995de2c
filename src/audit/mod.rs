//! `tickflow audit`: reads the normalized topics back (a plain consumer: assigned partitions,
//! no group, nothing committed) and checks what a consumer of them can check with the
//! `FeedEvent`s (ADR 0006, "Continuity as records"): per (exchange, symbol), the intervals
//! whose `Level2Delta` chain is contiguous, every break and whether a `FeedEvent` announced
//! it, and trades stored twice under one venue id (see `check`). Anything unannounced makes
//! the command exit non-zero.
//!
//! Books are rebuilt from `Level2Book` + `Level2Delta`: compared with each later full book
//! where venue ids order the records (`books`), and checked against the venue's checksum on
//! every record that carries one (`checksums`, Kraken and OKX). Consolidated topics
//! (`<prefix>.<data_type>`) only.

pub mod books;
pub mod check;
pub mod checksums;
pub mod records;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use thiserror::Error;

use crate::book::Sequencer;
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

/// How long a read waits for more records, once at the high watermark, before it takes a
/// topic as read to its end.
const IDLE: Duration = Duration::from_secs(2);

/// How long a read waits for a record while short of the high watermark before it fails.
const STALLED: Duration = Duration::from_secs(180);

/// Reads `topic` from `range.from_ms` (or the beginning) to every partition's high watermark
/// and then until nothing more comes for [`IDLE`] (records at or after `range.to_ms` are left
/// out), in offset order per partition.
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
    // Every partition from its start to its high watermark as read now, and then until
    // nothing more comes for `IDLE`: a broker's high watermark can lag what it serves (tansu's
    // did, by a record, under load), and a broker may take long to answer a first fetch of
    // a large partition (tansu on sqlite: over 10 s), which a read that stopped at the first
    // quiet spell would take for the end.
    let mut tpl = TopicPartitionList::new();
    let mut behind: HashMap<i32, i64> = HashMap::new();
    for p in t.partitions() {
        let start = match range.from_ms {
            Some(ms) => Offset::Offset(ms),
            None => Offset::Beginning,
        };
        tpl.add_partition_offset(topic, p.id(), start)
            .map_err(kafka)?;
        let (low, high) = consumer
            .fetch_watermarks(topic, p.id(), timeout)
            .map_err(kafka)?;
        if high > low {
            behind.insert(p.id(), high);
        }
    }
    if range.from_ms.is_some() {
        tpl = consumer.offsets_for_times(tpl, timeout).map_err(kafka)?;
        // Partitions with nothing at or after `from_ms` start at their end.
        for e in tpl.elements() {
            let done = match e.offset() {
                Offset::Offset(o) => behind.get(&e.partition()).is_some_and(|high| o >= *high),
                _ => true,
            };
            if done {
                behind.remove(&e.partition());
            }
        }
    }
    consumer.assign(&tpl).map_err(kafka)?;
    let mut out = Vec::new();
    let mut last = std::time::Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            None if behind.is_empty() && last.elapsed() >= IDLE => break,
            None if last.elapsed() >= STALLED => {
                return Err(AuditError::Kafka(format!(
                    "{topic}: nothing read for {STALLED:?} before the end of partitions {:?}",
                    behind.keys().collect::<Vec<_>>()
                )));
            }
            None => {}
            Some(Err(e)) => return Err(kafka(e)),
            Some(Ok(m)) => {
                last = std::time::Instant::now();
                if behind
                    .get(&m.partition())
                    .is_some_and(|high| m.offset() + 1 >= *high)
                {
                    behind.remove(&m.partition());
                }
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

/// The book rules (checksum, depth window) of every configured (exchange, symbol), as its
/// feed builds them; under (exchange, "") the first feed's of each exchange, for symbols
/// the config does not list.
fn venue_rules(cfg: &Config) -> HashMap<(String, String), Arc<dyn Sequencer>> {
    let mut rules = HashMap::new();
    for f in &cfg.feeds {
        let Some(venue) = crate::venues::by_name(&f.venue) else {
            continue;
        };
        let seq = venue.sequencer(f.snapshot_limit);
        let exchange = venue.exchange().to_string();
        for s in &f.symbols {
            rules
                .entry((exchange.clone(), s.clone()))
                .or_insert_with(|| seq.clone());
        }
        rules.entry((exchange, String::new())).or_insert(seq);
    }
    rules
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
    let rules = venue_rules(cfg);
    let report = check::audit(&deltas, &books, &events, &trades, &|exchange, symbol| {
        rules
            .get(&(exchange.to_string(), symbol.to_string()))
            .or_else(|| rules.get(&(exchange.to_string(), String::new())))
            .cloned()
    });
    let clean = report.is_clean() && bad == 0;
    Ok(Audit {
        report,
        read,
        undecodable: bad,
        clean,
    })
}
