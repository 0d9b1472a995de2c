//! Scaling out: the subscriptions of one config shared by many instances, statically (each
//! instance knows its ordinal) or dynamically (instances of a Kafka consumer group own the
//! shards the group assigns them, and take over a dead instance's shards). See ADR 0010.

pub mod config;
pub mod group;
pub mod plan;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::feed::FeedStats;
use crate::metrics::Metrics;

pub use config::{ClusterConfig, Mode};

/// Starts and stops the feeds of a shard; called by the group membership from its own thread.
pub trait ShardRunner: Send + Sync + 'static {
    /// Starts the feeds of `shard` (nothing when they run already).
    fn start(&self, shard: u32);
    /// Stops the feeds of `shard`; returns once everything they read has been produced and
    /// answered.
    fn stop(&self, shard: u32);
}

/// One running feed as `/status` and `/readyz` show it.
#[derive(Clone)]
pub struct OwnedFeed {
    /// Its name.
    pub name: String,
    /// Its counters.
    pub stats: Arc<FeedStats>,
    /// How long it may stay disconnected.
    pub budget: Duration,
}

/// What this instance owns now: its shards and their feeds (dynamic sharding), shared by the
/// membership, the service and the HTTP endpoint.
pub struct Status {
    /// This instance's name.
    pub instance: String,
    /// The sharding mode.
    pub mode: Mode,
    owned: Mutex<BTreeMap<u32, Vec<OwnedFeed>>>,
    /// The group's rebalance protocol as the client last saw it (`cooperative`, `eager`).
    protocol: Mutex<Option<&'static str>>,
    metrics: Arc<Metrics>,
}

impl Status {
    /// The status of an instance that owns nothing yet.
    pub fn new(instance: String, mode: Mode, metrics: Arc<Metrics>) -> Status {
        Status {
            instance,
            mode,
            owned: Mutex::new(BTreeMap::new()),
            protocol: Mutex::new(None),
            metrics,
        }
    }

    /// Records that `shard` is owned and runs `feeds`.
    pub fn own(&self, shard: u32, feeds: Vec<OwnedFeed>) {
        let mut owned = self.owned.lock().unwrap_or_else(PoisonError::into_inner);
        owned.insert(shard, feeds);
        self.metrics.shards_owned.set(owned.len() as i64);
    }

    /// Records that `shard` is no longer owned.
    pub fn release(&self, shard: u32) {
        let mut owned = self.owned.lock().unwrap_or_else(PoisonError::into_inner);
        owned.remove(&shard);
        self.metrics.shards_owned.set(owned.len() as i64);
    }

    /// Records the group's rebalance protocol.
    pub fn set_protocol(&self, protocol: &'static str) {
        *self.protocol.lock().unwrap_or_else(PoisonError::into_inner) = Some(protocol);
    }

    /// The group's rebalance protocol, once a rebalance happened.
    pub fn protocol(&self) -> Option<&'static str> {
        *self.protocol.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The owned shards and their feeds, now.
    pub fn owned(&self) -> BTreeMap<u32, Vec<OwnedFeed>> {
        self.owned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
