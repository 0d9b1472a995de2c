//! The recovery step: one watcher per shared producer notices when the broker stops taking
//! records (a retriable failure, or records in flight with no delivery for a while), probes
//! it, and once it answers again makes sure deliveries resume within seconds:
//! - topics the broker lost (a restart on empty storage) are created again;
//! - if the producer still delivers nothing after a short grace (its idempotence state is gone,
//!   or its connections hang), and no topic delivers meanwhile, it is rebuilt: records it has
//!   not sent yet are purged (never stored: a retriable Nack is true), records already sent
//!   stay with the old producer until the broker or `message.timeout.ms` answers them (a purge
//!   of those could nack a record the broker stored);
//! - every stream's broker breaker is closed (the recovery epoch moves on).
//!
//! A restarted broker is not waited for through `message.timeout.ms` and a half-open probe
//! that must itself time out (ADR 0002, "Broker restarts").

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use rdkafka::producer::Producer;

use super::topics::create_topics;
use super::ProducerDeps;
use crate::config::RecoveryConfig;

/// What the streams tell the watcher, and what it tells them back.
#[derive(Debug, Default)]
pub struct Health {
    /// Records delivered, all streams and generations.
    delivered: AtomicU64,
    /// Records failed with a retriable (broker) error.
    failed: AtomicU64,
    /// Moves on at each recovery: streams close their broker breaker when it does.
    epoch: AtomicU64,
    /// Topics the streams write to (re-created after a broker lost them).
    topics: Mutex<BTreeSet<String>>,
}

impl Health {
    /// Counts `n` delivered records (once per batch of reports).
    pub fn delivered(&self, n: u64) {
        if n > 0 {
            self.delivered.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts one record failed by the broker or the network.
    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// The current recovery epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Remembers a topic a stream writes to.
    pub fn topic(&self, topic: &str) {
        let mut t = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if !t.contains(topic) {
            t.insert(topic.to_string());
        }
    }

    fn topics(&self) -> Vec<String> {
        let t = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        t.iter().cloned().collect()
    }

    fn recovered(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

/// What the watcher believes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Deliveries progress (or nothing is in flight).
    Healthy,
    /// Deliveries stopped at `since`; `reachable` is when the broker answered again.
    Troubled {
        since: Instant,
        reachable: Option<Instant>,
    },
}

/// Watches the shared producer of `deps` until the system is gone.
pub async fn watch(deps: Weak<ProducerDeps>, cfg: RecoveryConfig) {
    let probe_every = cfg.probe_interval.max(Duration::from_millis(10));
    let stall_after = cfg.stall_after;
    let grace = cfg.grace;
    let mut tick = tokio::time::interval(probe_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut state = State::Healthy;
    let (mut delivered, mut failed) = (0u64, 0u64);
    let mut progress = Instant::now();
    loop {
        tick.tick().await;
        let Some(deps) = deps.upgrade() else { return };
        let health = &deps.shared.health;
        let now = Instant::now();
        let (d, f) = (
            health.delivered.load(Ordering::Relaxed),
            health.failed.load(Ordering::Relaxed),
        );
        let delivering = d != delivered;
        let failing = f != failed;
        (delivered, failed) = (d, f);
        let (_, producer) = deps.shared.get();
        let in_flight = producer.in_flight_count();
        deps.shared.prune_retired();
        if delivering || in_flight == 0 {
            progress = now;
        }
        state = match state {
            State::Healthy if failing || now.duration_since(progress) >= stall_after => {
                tracing::warn!(
                    in_flight,
                    failing,
                    "the broker stopped taking records; probing it"
                );
                deps.metrics.broker_outages.inc();
                State::Troubled {
                    since: now,
                    reachable: None,
                }
            }
            State::Healthy => State::Healthy,
            State::Troubled { since, .. } if delivering && !failing => {
                tracing::info!(
                    after = ?now.duration_since(since),
                    "the broker takes records again"
                );
                health.recovered();
                State::Healthy
            }
            // Some topic delivers while another fails (or the broker is merely slow): the
            // producer works, so it is not rebuilt; the grace starts again.
            State::Troubled { since, .. } if delivering => State::Troubled {
                since,
                reachable: None,
            },
            State::Troubled { since, reachable } => {
                let missing = probe(&deps, probe_every).await;
                match (missing, reachable) {
                    (None, _) => State::Troubled {
                        since,
                        reachable: None,
                    },
                    (Some(missing), reachable) => {
                        if !missing.is_empty() && deps.config.producer.create_topics {
                            recreate(&deps, &missing).await;
                        }
                        let reachable = reachable.unwrap_or(now);
                        if now.duration_since(reachable) >= grace {
                            rebuild(&deps);
                            health.recovered();
                            progress = now;
                            State::Healthy
                        } else {
                            State::Troubled {
                                since,
                                reachable: Some(reachable),
                            }
                        }
                    }
                }
            }
        };
    }
}

/// Asks the broker for metadata through the current producer's own client. `None` when it
/// does not answer, or a partition of a known topic has no leader yet (an election in
/// progress is the broker still recovering, not a stuck producer: nothing is rebuilt then);
/// otherwise the known topics it does not hold.
async fn probe(deps: &ProducerDeps, timeout: Duration) -> Option<Vec<String>> {
    let (_, producer) = deps.shared.get();
    let known = deps.shared.health.topics();
    let wanted = known.clone();
    let held = tokio::task::spawn_blocking(move || {
        producer.client().fetch_metadata(None, timeout).map(|m| {
            let mut held = BTreeSet::new();
            let mut leaderless = false;
            for t in m.topics() {
                if t.error().is_some() || t.partitions().is_empty() {
                    continue;
                }
                if wanted.iter().any(|w| w == t.name()) {
                    leaderless |= t
                        .partitions()
                        .iter()
                        .any(|p| p.leader() < 0 || p.error().is_some());
                }
                held.insert(t.name().to_string());
            }
            (!leaderless).then_some(held)
        })
    })
    .await
    .ok()?
    .ok()??;
    Some(known.into_iter().filter(|t| !held.contains(t)).collect())
}

/// Creates the topics a restarted broker lost.
async fn recreate(deps: &ProducerDeps, topics: &[String]) {
    let p = &deps.config.producer;
    let cfg = deps.config.kafka.client_config();
    match create_topics(&cfg, topics, p.partitions, p.replication_factor).await {
        Ok(()) => tracing::warn!(?topics, "the broker had lost these topics; created again"),
        Err(e) => tracing::warn!(?topics, error = %e, "cannot create the lost topics yet"),
    }
}

/// Replaces a producer that delivers nothing although the broker answers: records the old one
/// has not sent are purged (each answered with a retriable Nack as its report arrives);
/// records it sent stay with it until answered (see [`super::kafka::SharedProducer::prune_retired`]).
fn rebuild(deps: &ProducerDeps) {
    let (generation, old) = deps.shared.get();
    match deps.shared.rebuild(generation) {
        Ok(_) => {
            old.purge(rdkafka::producer::PurgeConfig::default().queue());
            deps.metrics.producer_rebuilds.inc();
            tracing::warn!(
                generation = generation + 1,
                "the broker answers but the producer delivered nothing; rebuilt it"
            );
        }
        Err(e) => tracing::error!(error = %e, "cannot rebuild the Kafka producer; retrying"),
    }
}
