//! Dynamic sharding: this instance as a member of a Kafka consumer group on the control topic.
//! Partition p of the control topic is shard p; the group's assignor decides who owns which.
//! Nothing is ever produced to or read from the control topic: the group protocol is the whole
//! point (membership, failure detection by session timeout, assignment).
//!
//! The consumer runs on a thread of its own, so that its rebalance callback may block: on a
//! revocation it stops the shards' feeds (everything they read is produced and answered)
//! before it returns, and the rebalance does not complete before it returns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;

use super::config::ClusterConfig;
use super::{ShardRunner, Status};
use crate::config::KafkaConfig;

/// The group's consumer context: starts and stops shards as they are assigned and revoked.
struct GroupContext {
    runner: Arc<dyn ShardRunner>,
    status: Arc<Status>,
    closing: Arc<AtomicBool>,
}

impl ClientContext for GroupContext {}

fn shards(tpl: &rdkafka::TopicPartitionList) -> Vec<u32> {
    tpl.elements()
        .iter()
        .filter_map(|e| u32::try_from(e.partition()).ok())
        .collect()
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let revoked = shards(tpl);
                if consumer.assignment_lost() {
                    // The session timed out from this side: the group may already have given
                    // these shards to another instance, which may publish beside this one
                    // until the feeds below have stopped.
                    tracing::warn!(instance = %self.status.instance, shards = ?revoked, "cluster: shards lost (session timed out); stopping their feeds");
                } else {
                    tracing::info!(instance = %self.status.instance, shards = ?revoked, "cluster: shards revoked; stopping their feeds");
                }
                for s in revoked {
                    self.runner.stop(s);
                    self.status.release(s);
                }
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => {
                tracing::warn!(instance = %self.status.instance, error = %e, "cluster: rebalance error")
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let assigned = shards(tpl);
            self.status
                .set_protocol(match consumer.rebalance_protocol() {
                    RebalanceProtocol::Cooperative => "cooperative",
                    RebalanceProtocol::Eager => "eager",
                    RebalanceProtocol::None => "none",
                });
            if self.closing.load(Ordering::SeqCst) {
                tracing::info!(instance = %self.status.instance, shards = ?assigned, "cluster: shards assigned while leaving; not started");
                return;
            }
            tracing::info!(instance = %self.status.instance, shards = ?assigned, "cluster: shards assigned; starting their feeds");
            for s in assigned {
                self.runner.start(s);
            }
        }
    }
}

/// librdkafka properties of `kafka.properties` that mean nothing to a consumer, or that the
/// membership sets itself.
const NOT_FOR_THE_GROUP: &[&str] = &[
    "acks",
    "request.required.acks",
    "enable.idempotence",
    "linger.ms",
    "batch.size",
    "compression.type",
    "message.timeout.ms",
    "group.id",
    "group.protocol",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "enable.auto.commit",
];

/// How long a graceful stop waits for the group to be left (the revoked feeds drained, the
/// consumer closed) before the service stops the rest itself.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(60);

/// The membership of this instance in the group: a thread polling the group's consumer.
pub struct Membership {
    stop: Arc<AtomicBool>,
    closing: Arc<AtomicBool>,
    done: std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership").finish_non_exhaustive()
    }
}

impl Membership {
    /// Creates the control topic `topic` with `shards` partitions if missing, joins `group` on
    /// it and starts polling; shards are started through `runner` as they are assigned.
    pub async fn start(
        kafka: &KafkaConfig,
        cluster: &ClusterConfig,
        group: &str,
        topic: &str,
        shards: u32,
        runner: Arc<dyn ShardRunner>,
        status: Arc<Status>,
    ) -> Result<Membership, KafkaError> {
        let partitions = i32::try_from(shards).unwrap_or(i32::MAX);
        // A broker that cannot create it now is not fatal: the subscription waits for the topic
        // (and for the broker), and no shard is owned meanwhile (`/status` says so).
        if let Err(e) = crate::producer::topics::create_topics(
            &kafka.client_config(),
            &[topic.to_string()],
            partitions,
            1,
        )
        .await
        {
            tracing::warn!(topic, error = %crate::redact::redact(&e.to_string()), "cluster: cannot create the control topic; joining anyway");
        }
        let mut c = rdkafka::ClientConfig::new();
        for (k, v) in kafka.librdkafka_properties() {
            if !NOT_FOR_THE_GROUP.contains(&k.as_str()) {
                c.set(k, v);
            }
        }
        c.set("group.id", group)
            .set("group.protocol", "classic")
            .set("partition.assignment.strategy", &cluster.assignor)
            .set("session.timeout.ms", cluster.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (cluster.session_timeout_ms / 3).max(100).to_string(),
            )
            // The instance name as the member's client id: the group's members say who they are.
            .set("client.id", format!("tickflow-{}", status.instance))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest");
        let closing = Arc::new(AtomicBool::new(false));
        let consumer: BaseConsumer<GroupContext> = c.create_with_context(GroupContext {
            runner,
            status: status.clone(),
            closing: closing.clone(),
        })?;
        consumer.subscribe(&[topic])?;
        tracing::info!(instance = %status.instance, group, topic, shards, assignor = %cluster.assignor, "cluster: joining the group");
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, done) = tokio::sync::oneshot::channel();
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("tickflow-cluster".into())
            .spawn(move || {
                poll_until(&consumer, &flag);
                leave(&consumer);
                drop(consumer);
                let _ = tx.send(());
            });
        if let Err(e) = spawned {
            return Err(KafkaError::Subscription(format!(
                "cannot start the group thread: {e}"
            )));
        }
        Ok(Membership {
            stop,
            closing,
            done: std::sync::Mutex::new(Some(done)),
        })
    }

    /// Stops owning shards: stops their feeds (everything read is produced and answered), then
    /// leaves the group, so that the others take the shards over with nothing read twice.
    pub async fn shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
        let done = self
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(done) = done {
            if tokio::time::timeout(LEAVE_TIMEOUT, done).await.is_err() {
                tracing::warn!(
                    "cluster: the group was not left within {LEAVE_TIMEOUT:?}; stopping anyway"
                );
            }
        }
    }
}

fn poll_until(consumer: &BaseConsumer<GroupContext>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match consumer.poll(Duration::from_millis(100)) {
            None | Some(Ok(_)) => {}
            Some(Err(e)) => tracing::warn!(error = %e, "cluster: group consumer error"),
        }
    }
}

/// Unsubscribes (the revocation stops every owned shard's feeds in the rebalance callback) and
/// waits up to 30 s for the assignment to be empty; dropping the consumer then leaves the group.
fn leave(consumer: &BaseConsumer<GroupContext>) {
    consumer.unsubscribe();
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < until {
        let _ = consumer.poll(Duration::from_millis(100));
        match consumer.assignment() {
            Ok(a) if a.count() == 0 => return,
            Ok(_) => {}
            Err(_) => return,
        }
    }
    tracing::warn!("cluster: shards still assigned after 30 s of leaving; leaving anyway");
}
