//! The Kafka side: a consumer in a consumer group (partitions shared by every recorder of the
//! group, moved to the others when one dies), offsets stored by nobody but the recorder, and
//! committed only after the batch they cover is in PostgreSQL.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rdkafka::consumer::stream_consumer::StreamConsumer;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::config::RecorderConfig;
use crate::config::KafkaConfig;
use crate::metrics::Metrics;

/// librdkafka properties that only mean something to a producer.
const PRODUCER_ONLY: &[&str] = &[
    "acks",
    "request.required.acks",
    "topic.acks",
    "topic.request.required.acks",
    "enable.idempotence",
    "linger.ms",
    "batch.size",
    "compression.type",
    "message.timeout.ms",
];

/// Counts rebalances (so the loop can drop a batch whose partitions were revoked) and commit
/// failures.
pub struct RecorderContext {
    revocations: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
}

impl ClientContext for RecorderContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // -1 is librdkafka's internal "unassigned" partition; a lag of -1 is unknown.
                if *partition < 0 || p.consumer_lag < 0 {
                    continue;
                }
                self.metrics
                    .recorder_lag
                    .get_or_create(&crate::metrics::PartitionLabels {
                        topic: topic.clone(),
                        partition: partition.to_string(),
                    })
                    .set(p.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for RecorderContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                self.revocations.fetch_add(1, Ordering::SeqCst);
                // The eager protocol revokes the whole assignment.
                self.metrics.recorder_assigned_partitions.set(0);
                tracing::info!(partitions = tpl.count(), "recorder: partitions revoked");
            }
            Rebalance::Assign(tpl) => {
                self.metrics
                    .recorder_assigned_partitions
                    .set(i64::try_from(tpl.count()).unwrap_or(i64::MAX));
                tracing::info!(partitions = tpl.count(), "recorder: partitions assigned");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "recorder: rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // Harmless for correctness: the rows are stored, a replay inserts nothing twice.
            self.metrics.recorder_commit_errors.inc();
            tracing::warn!(error = %e, "recorder: offset commit failed; the records will be replayed and skipped");
        }
    }
}

/// The group consumer of the recorder.
pub struct GroupConsumer {
    /// The rdkafka consumer.
    pub inner: StreamConsumer<RecorderContext>,
    revocations: Arc<AtomicU64>,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer").finish_non_exhaustive()
    }
}

impl GroupConsumer {
    /// Creates the consumer and subscribes to `topics`.
    pub fn start(
        kafka: &KafkaConfig,
        cfg: &RecorderConfig,
        topics: &[String],
        metrics: Arc<Metrics>,
    ) -> KafkaResult<GroupConsumer> {
        let mut c = rdkafka::ClientConfig::new();
        for (k, v) in kafka.librdkafka_properties() {
            if PRODUCER_ONLY.contains(&k.as_str()) {
                continue;
            }
            if let Some(why) = unsafe_for_the_batch(&k, &v) {
                tracing::warn!(key = %k, value = %v, why, "recorder: consumer property overridden");
                continue;
            }
            c.set(k, v);
        }
        // The eager protocol: a rebalance revokes every partition, and each one starts again
        // from its committed offset, so the uncommitted batch dropped then is read again.
        // (Incremental protocols keep partitions across a rebalance: the dropped batch of a
        // kept partition would never be read again.)
        c.set("group.protocol", "classic")
            .set("partition.assignment.strategy", "range,roundrobin");
        c.set("group.id", &cfg.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", cfg.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (cfg.session_timeout_ms / 3).max(100).to_string(),
            )
            .set(
                "queued.max.messages.kbytes",
                cfg.queued_max_kbytes.to_string(),
            )
            .set("fetch.wait.max.ms", "100")
            // For the consumer-lag metric.
            .set("statistics.interval.ms", "5000");
        let revocations = Arc::new(AtomicU64::new(0));
        let inner: StreamConsumer<RecorderContext> = c.create_with_context(RecorderContext {
            revocations: revocations.clone(),
            metrics,
        })?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        inner.subscribe(&names)?;
        Ok(GroupConsumer { inner, revocations })
    }

    /// How many revocations happened so far (a batch started under another count holds
    /// records of partitions this recorder may no longer own).
    pub fn revocations(&self) -> u64 {
        self.revocations.load(Ordering::SeqCst)
    }

    /// The group's committed offset of one partition (`None` when there is none or the
    /// broker does not answer within 5 s).
    pub fn committed(&self, topic: &str, partition: i32) -> Option<i64> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        let got = self
            .inner
            .committed_offsets(tpl, std::time::Duration::from_secs(5))
            .ok()?;
        match got.find_partition(topic, partition)?.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }
    }

    /// Commits `next` (the offset after the last stored record, per topic and partition).
    pub fn commit(&self, next: &BTreeMap<(String, i32), i64>, mode: CommitMode) -> KafkaResult<()> {
        if next.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
        }
        self.inner.commit(&tpl, mode)
    }
}

/// Why a consumer property from `kafka.properties` is not applied (`None`: it is): settings
/// that keep partitions across a rebalance (the dropped uncommitted batch of a kept partition
/// would be lost), or that let librdkafka commit or store offsets by itself.
fn unsafe_for_the_batch(key: &str, value: &str) -> Option<&'static str> {
    match key {
        "group.protocol" if !value.trim().eq_ignore_ascii_case("classic") => {
            Some("the consumer protocol keeps partitions across a rebalance; classic is used")
        }
        "partition.assignment.strategy" if value.contains("cooperative") => Some(
            "an incremental strategy keeps partitions across a rebalance; range,roundrobin is used",
        ),
        "enable.auto.commit" | "enable.auto.offset.store" | "group.id" => {
            Some("the recorder commits only what it stored")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_keep_partitions_across_a_rebalance_are_not_applied() {
        assert!(
            unsafe_for_the_batch("partition.assignment.strategy", "cooperative-sticky").is_some()
        );
        assert!(unsafe_for_the_batch("group.protocol", "consumer").is_some());
        assert!(unsafe_for_the_batch("group.protocol", "classic").is_none());
        assert!(unsafe_for_the_batch("partition.assignment.strategy", "roundrobin").is_none());
        assert!(unsafe_for_the_batch("enable.auto.commit", "true").is_some());
        assert!(unsafe_for_the_batch("fetch.wait.max.ms", "10").is_none());
    }
}
