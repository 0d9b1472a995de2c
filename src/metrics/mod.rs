//! Prometheus metrics of one tickflow system. Each system owns its registry (no globals), so
//! embedders and tests can run several side by side. Labels are bounded: topic, data_type,
//! exchange, reason, dependency — never the symbol.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of per-record counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecordLabels {
    /// Topic (for per-symbol topics, the topic family `<prefix>.<data_type>.<exchange>.*`).
    pub topic: String,
    /// Normalized data type.
    pub data_type: String,
    /// Venue.
    pub exchange: String,
}

/// Labels of error counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Topic (family).
    pub topic: String,
    /// Nack reason kind, e.g. `queue_full`.
    pub reason: String,
}

/// Labels of per-topic gauges and histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    /// Topic (family).
    pub topic: String,
}

/// A dependency guarded by a circuit breaker.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum DependencyLabel {
    /// The schema registry.
    Registry,
    /// The Kafka broker.
    Broker,
}

/// Labels of the circuit-state gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CircuitLabels {
    /// Topic (family).
    pub topic: String,
    /// Guarded dependency.
    pub dependency: DependencyLabel,
}

/// Labels of the lost-record counter of a feed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LostLabels {
    /// Venue.
    pub exchange: String,
    /// Normalized data type of the lost record.
    pub data_type: String,
    /// `nacked` (answered with a Nack) or `shed` (not sent: Kafka was unavailable).
    pub cause: String,
}

/// Labels of per-feed counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabels {
    /// Venue, e.g. `BINANCE`.
    pub exchange: String,
}

/// Labels of the feed latency histograms: venue and channel (the record's data type).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    /// Venue, e.g. `BINANCE`.
    pub exchange: String,
    /// Data type, e.g. `trade`, `level2_delta`.
    pub channel: String,
}

/// Labels of per-symbol order-book counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BookSymbolLabels {
    /// Venue.
    pub exchange: String,
    /// Normalized symbol.
    pub symbol: String,
    /// Why: `out_of_order`, `bridge_rejected`, `buffer_overflow`.
    pub reason: String,
}

/// Labels of the REST book audit counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BookAuditLabels {
    /// Venue.
    pub exchange: String,
    /// `agreed` (no difference), `differed` (differences not confirmed yet), `diverged` (a
    /// confirmed divergence: the book resyncs), `fetch_failed` (retried next interval),
    /// `skipped` (the book resynced while the audit was in flight).
    pub result: String,
}

/// Labels of feed error counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedErrorLabels {
    /// Venue.
    pub exchange: String,
    /// Error kind, e.g. `malformed`, `unknown_symbol`, `oversized`.
    pub kind: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs .. ~26 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

fn size_histogram() -> Histogram {
    // 16 B .. 8 MiB
    Histogram::new(exponential_buckets(16.0, 2.0, 20))
}

/// All metrics of a tickflow system.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Records acknowledged by the broker.
    pub produced: Family<RecordLabels, Counter>,
    /// Nacks by reason.
    pub errors: Family<ErrorLabels, Counter>,
    /// Time from ProduceEvent accepted to Ack, seconds.
    pub produce_latency: HistogramFamily<TopicLabels>,
    /// Venue's time of a record (its event time, else its timestamp) to its receipt here,
    /// seconds, per venue and channel (a venue clock ahead of this one counts as 0).
    pub feed_exchange_to_receipt: HistogramFamily<ChannelLabels>,
    /// Records whose venue time was after their receipt here (this clock behind the venue's).
    pub feed_exchange_time_ahead: Family<ChannelLabels, Counter>,
    /// Receipt of a record's message to the broker's Ack of the record, seconds, per venue
    /// and channel.
    pub feed_receipt_to_ack: HistogramFamily<ChannelLabels>,
    /// Time to encode and frame one record, seconds.
    pub encode_latency: HistogramFamily<TopicLabels>,
    /// Framed record size, bytes.
    pub message_bytes: HistogramFamily<TopicLabels>,
    /// Events waiting in a producer actor's queue.
    pub queue_depth: Family<TopicLabels, Gauge>,
    /// Circuit state: 0 closed, 1 half-open, 2 open.
    pub circuit_state: Family<CircuitLabels, Gauge>,
    /// Producer actor restarts by the supervisor.
    pub actor_restarts: Family<TopicLabels, Counter>,
    /// Records written to the dead-letter topic.
    pub dead_lettered: Family<ErrorLabels, Counter>,
    /// WebSocket frames received.
    pub feed_frames: Family<FeedLabels, Counter>,
    /// Frames or REST answers that could not be used, by kind.
    pub feed_errors: Family<FeedErrorLabels, Counter>,
    /// Reconnects (including rotations).
    pub feed_reconnects: Family<FeedLabels, Counter>,
    /// Whether the feed is connected (1) or not (0).
    pub feed_connected: Family<FeedLabels, Gauge>,
    /// Sequence gaps detected in order books.
    pub book_gaps: Family<FeedLabels, Counter>,
    /// Order-book (re)syncs from a snapshot (REST or in band).
    pub book_syncs: Family<FeedLabels, Counter>,
    /// Diffs older than the book (or arriving before an in-band snapshot), not applied.
    pub book_diffs_dropped: Family<FeedLabels, Counter>,
    /// Records a feed could not deliver, by data type and cause (`nacked`, `shed`).
    pub feed_records_lost: Family<LostLabels, Counter>,
    /// Periodic REST book audits, by result (`agreed`, `differed`, `diverged`,
    /// `fetch_failed`, `skipped`).
    pub book_audits: Family<BookAuditLabels, Counter>,
    /// Connection attempts that waited for the venue's connection-rate budget.
    pub feed_connect_waits: Family<FeedLabels, Counter>,
    /// Order-book diffs whose levels never reached the book, by symbol and reason
    /// (`out_of_order` and `bridge_rejected`: skipped while bridging a snapshot;
    /// `buffer_overflow`: pushed out of the snapshot-wait buffers).
    pub book_diffs_skipped: Family<BookSymbolLabels, Counter>,
    /// Times the broker stopped taking records (the recovery watcher started probing it).
    pub broker_outages: Counter,
    /// Shared producers rebuilt after the broker came back and the old one delivered nothing.
    pub producer_rebuilds: Counter,
    /// Delivery reports that found their stream gone (an actor restart) and answered the
    /// event from the outcome itself.
    pub producer_orphan_reports: Counter,
    /// Latest values written to Redis by the Redis sink.
    pub redis_written: Counter,
    /// Values replaced by a newer one of the same key before they were written (writes saved).
    pub redis_coalesced: Counter,
    /// Redis write attempts (pipelines) that failed; their values stay pending and are retried.
    pub redis_write_failures: Counter,
    /// Values dropped because the pending map was full and their key was not in it.
    pub redis_dropped: Counter,
    /// Keys taken by the Redis writer and not written yet.
    pub redis_pending: Gauge,
    /// Whether the Redis sink's last ping or write succeeded (1) or not (0).
    pub redis_ready: Gauge,
    /// Redis writer tasks started again after a panic.
    pub redis_sink_restarts: Counter,
    /// Rows the PostgreSQL recorder inserted, by table.
    pub recorder_rows: Family<KindLabels, Counter>,
    /// Rows the recorder sent that were already stored (a replay, or a trade seen twice).
    pub recorder_rows_skipped: Family<KindLabels, Counter>,
    /// Recorder batches stored (one transaction each).
    pub recorder_batches: Counter,
    /// Time to store one recorder batch, retries included, seconds.
    pub recorder_batch_seconds: Histogram,
    /// Recorder retries by cause (`connection`, `statement`, `registry`, `dead_letter`).
    pub recorder_retries: Family<KindLabels, Counter>,
    /// Records the recorder could not store, by kind (`undecodable`, `bad_frame`, …).
    pub recorder_bad_records: Family<KindLabels, Counter>,
    /// Recorder batches dropped uncommitted on a rebalance.
    pub recorder_batches_dropped: Counter,
    /// Partitions the recorder stopped at a record it cannot store (no dead-letter topic,
    /// `recorder.bad_records = "stop"`); the log says which and why.
    pub recorder_stopped_partitions: Gauge,
    /// Partitions the group assigned to this recorder now (0 between a revocation and the
    /// next assignment).
    pub recorder_assigned_partitions: Gauge,
    /// The recorder's consumer lag per partition (records between its position and the
    /// partition's end), from librdkafka's statistics every 5 s.
    pub recorder_lag: Family<PartitionLabels, Gauge>,
    /// Recorder offset commits that failed (harmless: replays are skipped).
    pub recorder_commit_errors: Counter,
    /// Recorder consumer errors (broker unreachable, missing topic, …).
    pub recorder_consumer_errors: Counter,
    /// Recorder loops restarted by its supervisor.
    pub recorder_restarts: Counter,
    /// Shards this instance owns now (dynamic sharding, `[cluster] group`).
    pub shards_owned: Gauge,
}

/// Labels of a per-partition series: the topic and the partition number.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    /// Topic.
    pub topic: String,
    /// Partition number.
    pub partition: String,
}

/// Labels of the recorder's counters: a table, a cause or an error kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Table, cause or kind.
    pub kind: String,
}

impl KindLabels {
    /// Labels of `kind`.
    pub fn new(kind: &str) -> KindLabels {
        KindLabels {
            kind: kind.to_string(),
        }
    }
}

impl Metrics {
    /// A fresh set of metrics in its own registry.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("tickflow");
        let m = Metrics {
            produced: Family::default(),
            errors: Family::default(),
            produce_latency: Family::new_with_constructor(latency_histogram),
            encode_latency: Family::new_with_constructor(latency_histogram),
            feed_exchange_to_receipt: Family::new_with_constructor(latency_histogram),
            feed_exchange_time_ahead: Family::default(),
            feed_receipt_to_ack: Family::new_with_constructor(latency_histogram),
            message_bytes: Family::new_with_constructor(size_histogram),
            queue_depth: Family::default(),
            circuit_state: Family::default(),
            actor_restarts: Family::default(),
            dead_lettered: Family::default(),
            feed_frames: Family::default(),
            feed_errors: Family::default(),
            feed_reconnects: Family::default(),
            feed_connected: Family::default(),
            book_gaps: Family::default(),
            book_syncs: Family::default(),
            book_diffs_dropped: Family::default(),
            feed_records_lost: Family::default(),
            book_diffs_skipped: Family::default(),
            book_audits: Family::default(),
            feed_connect_waits: Family::default(),
            broker_outages: Counter::default(),
            producer_rebuilds: Counter::default(),
            producer_orphan_reports: Counter::default(),
            redis_written: Counter::default(),
            redis_coalesced: Counter::default(),
            redis_write_failures: Counter::default(),
            redis_dropped: Counter::default(),
            redis_pending: Gauge::default(),
            redis_ready: Gauge::default(),
            redis_sink_restarts: Counter::default(),
            recorder_rows: Family::default(),
            recorder_rows_skipped: Family::default(),
            recorder_batches: Counter::default(),
            recorder_batch_seconds: latency_histogram(),
            recorder_retries: Family::default(),
            recorder_bad_records: Family::default(),
            recorder_batches_dropped: Counter::default(),
            recorder_stopped_partitions: Gauge::default(),
            recorder_assigned_partitions: Gauge::default(),
            recorder_lag: Family::default(),
            recorder_commit_errors: Counter::default(),
            recorder_consumer_errors: Counter::default(),
            recorder_restarts: Counter::default(),
            shards_owned: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "produced",
            "Records acknowledged by the broker",
            m.produced.clone(),
        );
        registry.register(
            "produce_errors",
            "Nacked events by reason",
            m.errors.clone(),
        );
        registry.register(
            "produce_latency_seconds",
            "ProduceEvent accepted to Ack",
            m.produce_latency.clone(),
        );
        registry.register(
            "feed_exchange_to_receipt_seconds",
            "Venue time of a record to its receipt, per venue and channel",
            m.feed_exchange_to_receipt.clone(),
        );
        registry.register(
            "feed_exchange_time_ahead",
            "Records timed by the venue after their receipt here",
            m.feed_exchange_time_ahead.clone(),
        );
        registry.register(
            "feed_receipt_to_ack_seconds",
            "Receipt of a record's message to the broker's Ack, per venue and channel",
            m.feed_receipt_to_ack.clone(),
        );
        registry.register(
            "encode_latency_seconds",
            "Encode and frame one record",
            m.encode_latency.clone(),
        );
        registry.register(
            "message_bytes",
            "Framed record size",
            m.message_bytes.clone(),
        );
        registry.register(
            "queue_depth",
            "Events waiting in a producer queue",
            m.queue_depth.clone(),
        );
        registry.register(
            "circuit_state",
            "Circuit breaker state (0 closed, 1 half-open, 2 open)",
            m.circuit_state.clone(),
        );
        registry.register(
            "producer_restarts",
            "Producer actor restarts by the supervisor",
            m.actor_restarts.clone(),
        );
        registry.register(
            "dead_lettered",
            "Records written to the dead-letter topic",
            m.dead_lettered.clone(),
        );
        registry.register(
            "feed_frames",
            "WebSocket frames received",
            m.feed_frames.clone(),
        );
        registry.register(
            "feed_errors",
            "Unusable frames or REST answers by kind",
            m.feed_errors.clone(),
        );
        registry.register(
            "feed_reconnects",
            "Feed reconnects, rotations included",
            m.feed_reconnects.clone(),
        );
        registry.register(
            "feed_connected",
            "Feed connected (1) or not (0)",
            m.feed_connected.clone(),
        );
        registry.register("book_gaps", "Order-book sequence gaps", m.book_gaps.clone());
        registry.register(
            "book_syncs",
            "Order-book (re)syncs from a snapshot (REST or in band)",
            m.book_syncs.clone(),
        );
        registry.register(
            "book_diffs_dropped",
            "Order-book diffs older than the book or before its snapshot, not applied",
            m.book_diffs_dropped.clone(),
        );
        registry.register(
            "book_diffs_skipped",
            "Order-book diffs whose levels never reached the book (out of order or rejected while \
             bridging a snapshot, pushed out of the snapshot-wait buffers), by symbol",
            m.book_diffs_skipped.clone(),
        );
        registry.register(
            "book_audits",
            "Periodic comparisons of a kept book with the venue's REST book, by result",
            m.book_audits.clone(),
        );
        registry.register(
            "feed_connect_waits",
            "Connection attempts that waited for the venue's connection-rate budget",
            m.feed_connect_waits.clone(),
        );
        registry.register(
            "feed_records_lost",
            "Records a feed could not deliver (nacked, or shed while Kafka was unavailable)",
            m.feed_records_lost.clone(),
        );
        registry.register(
            "broker_outages",
            "Times the broker stopped taking records",
            m.broker_outages.clone(),
        );
        registry.register(
            "producer_orphan_reports",
            "Delivery reports answered from their outcome after their stream was gone",
            m.producer_orphan_reports.clone(),
        );
        registry.register(
            "producer_rebuilds",
            "Kafka producers rebuilt after a broker came back and the old one delivered nothing",
            m.producer_rebuilds.clone(),
        );
        registry.register(
            "redis_written",
            "Latest values written to Redis",
            m.redis_written.clone(),
        );
        registry.register(
            "redis_coalesced",
            "Values replaced by a newer one of the same key before being written to Redis",
            m.redis_coalesced.clone(),
        );
        registry.register(
            "redis_write_failures",
            "Failed Redis write attempts (the values are kept and retried)",
            m.redis_write_failures.clone(),
        );
        registry.register(
            "redis_dropped",
            "Values not kept for Redis: the pending map was full and their key new",
            m.redis_dropped.clone(),
        );
        registry.register(
            "redis_pending",
            "Keys taken by the Redis writer and not written yet",
            m.redis_pending.clone(),
        );
        registry.register(
            "redis_ready",
            "Redis sink's last ping or write succeeded (1) or not (0)",
            m.redis_ready.clone(),
        );
        registry.register(
            "redis_sink_restarts",
            "Redis writer tasks started again after a panic",
            m.redis_sink_restarts.clone(),
        );
        registry.register(
            "recorder_rows",
            "Rows the recorder inserted into PostgreSQL, by table",
            m.recorder_rows.clone(),
        );
        registry.register(
            "recorder_rows_skipped",
            "Rows already stored (replays, trades seen twice), by table",
            m.recorder_rows_skipped.clone(),
        );
        registry.register(
            "recorder_batches",
            "Recorder batches stored",
            m.recorder_batches.clone(),
        );
        registry.register(
            "recorder_batch_seconds",
            "Time to store one recorder batch, retries included",
            m.recorder_batch_seconds.clone(),
        );
        registry.register(
            "recorder_retries",
            "Recorder retries by cause",
            m.recorder_retries.clone(),
        );
        registry.register(
            "recorder_bad_records",
            "Records the recorder could not store, by kind",
            m.recorder_bad_records.clone(),
        );
        registry.register(
            "recorder_batches_dropped",
            "Recorder batches dropped uncommitted on a rebalance",
            m.recorder_batches_dropped.clone(),
        );
        registry.register(
            "recorder_lag",
            "Recorder consumer lag per partition, records",
            m.recorder_lag.clone(),
        );
        registry.register(
            "recorder_stopped_partitions",
            "Partitions the recorder stopped at a record it cannot store",
            m.recorder_stopped_partitions.clone(),
        );
        registry.register(
            "recorder_assigned_partitions",
            "Partitions the group assigned to this recorder now",
            m.recorder_assigned_partitions.clone(),
        );
        registry.register(
            "recorder_commit_errors",
            "Recorder offset commits that failed",
            m.recorder_commit_errors.clone(),
        );
        registry.register(
            "recorder_consumer_errors",
            "Recorder consumer errors",
            m.recorder_consumer_errors.clone(),
        );
        registry.register(
            "recorder_restarts",
            "Recorder loops restarted by the supervisor",
            m.recorder_restarts.clone(),
        );
        registry.register(
            "shards_owned",
            "Shards this instance owns now (dynamic sharding)",
            m.shards_owned.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "cannot render metrics");
        }
        out
    }

    /// Counts one Nack of `reason` (a `NackReason::kind`) on `topic` (its metric label).
    pub fn count_nack(&self, topic: &str, reason: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                topic: topic.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Current value of a counter in the rendered text, for tests and progress lines.
    pub fn sample(&self, name_and_labels_prefix: &str) -> f64 {
        self.render()
            .lines()
            .filter(|l| l.starts_with(name_and_labels_prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .fold(0.0, |a, b| a + b)
    }
}

#[cfg(test)]
mod tests {
    /// Every `tickflow_*` series the Grafana dashboard queries is one the service exports.
    #[test]
    fn the_dashboard_queries_only_exported_metrics() {
        let dashboard = include_str!("../../docs/grafana/tickflow.json");
        // Families without a series are not rendered: the registered names, from the source.
        let source = include_str!("mod.rs");
        let exported: std::collections::BTreeSet<String> = source
            .match_indices("registry.register(")
            .filter_map(|(i, _)| {
                let rest = &source[i..];
                let start = rest.find('"')? + 1;
                let len = rest[start..].find('"')?;
                Some(format!("tickflow_{}", &rest[start..start + len]))
            })
            .collect();
        assert!(exported.contains("tickflow_feed_receipt_to_ack_seconds"));
        let mut queried = std::collections::BTreeSet::new();
        for (i, _) in dashboard.match_indices("tickflow_") {
            let name: String = dashboard[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            queried.insert(name);
        }
        assert!(queried.contains("tickflow_feed_receipt_to_ack_seconds_bucket"));
        for name in &queried {
            let family = ["_bucket", "_sum", "_count", "_total"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(
                exported.contains(family) || exported.contains(name.as_str()),
                "the dashboard queries {name}, which is not exported"
            );
        }
    }
}
