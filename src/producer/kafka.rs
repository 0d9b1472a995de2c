//! The rdkafka step: one shared producer for every topic (one connection pool), rebuilt after
//! a fatal error or by the recovery watcher, and topic creation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::error::KafkaError;
use rdkafka::producer::{Producer, PurgeConfig};
use rdkafka::ClientConfig;

use super::delivery::{KafkaProducer, Reports, Routes};
use super::recovery::Health;

/// One rdkafka producer shared by all producer actors, with a generation number so that
/// several actors seeing the same fatal error rebuild it only once.
pub struct SharedProducer {
    config: ClientConfig,
    /// Where delivery reports go (every generation of the producer reports through it).
    routes: Arc<Routes>,
    current: Mutex<(u64, Arc<KafkaProducer>)>,
    /// Replaced producers kept alive until every record they sent is reported (dropping one
    /// would purge its in-flight records, which the broker may have stored: their Nack
    /// would lie). Pruned by [`SharedProducer::prune_retired`].
    retired: Mutex<Vec<Arc<KafkaProducer>>>,
    generation: AtomicU64,
    /// Delivery progress and recovery epoch, shared with the recovery watcher.
    pub health: Health,
}

impl std::fmt::Debug for SharedProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedProducer")
            .field("generation", &self.get().0)
            .finish_non_exhaustive()
    }
}

impl SharedProducer {
    /// Creates the producer from a client config.
    pub fn new(config: ClientConfig) -> Result<Arc<SharedProducer>, KafkaError> {
        let routes = Arc::new(Routes::default());
        let producer = Arc::new(config.create_with_context(Reports::new(routes.clone(), 0))?);
        Ok(Arc::new(SharedProducer {
            config,
            routes,
            current: Mutex::new((0, producer)),
            retired: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
            health: Health::default(),
        }))
    }

    /// Where streams open the route their delivery reports come back on.
    pub fn routes(&self) -> &Arc<Routes> {
        &self.routes
    }

    /// The current generation, without locking.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current producer and its generation.
    pub fn get(&self) -> (u64, Arc<KafkaProducer>) {
        let g = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        (g.0, g.1.clone())
    }

    /// Replaces the producer if `seen` is still the current generation; returns the current one.
    /// Streams of other topics switch to it before their next send.
    pub fn rebuild(&self, seen: u64) -> Result<(u64, Arc<KafkaProducer>), KafkaError> {
        let mut g = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if g.0 == seen {
            let fresh = Arc::new(
                self.config
                    .create_with_context(Reports::new(self.routes.clone(), seen + 1))?,
            );
            tracing::warn!(
                generation = seen + 1,
                "rebuilt the Kafka producer (the previous one was unusable)"
            );
            let old = std::mem::replace(&mut *g, (seen + 1, fresh)).1;
            self.generation.store(seen + 1, Ordering::Release);
            self.retired
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(old);
        }
        Ok((g.0, g.1.clone()))
    }

    /// Drops the replaced producers whose records are all reported; returns how many records
    /// the others still hold.
    pub fn prune_retired(&self) -> i32 {
        let mut r = self.retired.lock().unwrap_or_else(PoisonError::into_inner);
        r.retain(|p| p.in_flight_count() > 0);
        r.iter().map(|p| p.in_flight_count()).sum()
    }

    /// Whether the producer reports a fatal error.
    pub fn is_fatal(producer: &KafkaProducer) -> bool {
        producer.client().fatal_error().is_some()
    }

    /// Fails every record still queued or in flight in the current producer (each is reported
    /// as purged, so its event is answered now instead of when it times out).
    pub fn purge(&self) {
        let (_, producer) = self.get();
        producer.purge(PurgeConfig::default().queue().inflight());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use crate::config::Config;

    fn refused(toml: &str) -> String {
        match Config::from_toml_str(toml) {
            Ok(_) => panic!("accepted: {toml}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn acks_zero_is_refused_under_every_spelling_librdkafka_accepts() {
        for toml in [
            "[kafka.properties]\nacks = \"0\"\n",
            "[kafka.properties]\n\"request.required.acks\" = \"0\"\n",
            "[kafka.properties]\n\"topic.request.required.acks\" = \"0\"\n",
            "[kafka.properties]\n\"topic.acks\" = \"0\"\n",
            "[kafka]\nenable_idempotence = false\n[kafka.properties]\nacks = \" 0\"\n",
            "[kafka]\nenable_idempotence = false\n[kafka.properties]\nacks = \"+0\"\n",
            "[kafka]\nenable_idempotence = false\n[kafka.properties]\nacks = \"-0\"\n",
            "[kafka]\nenable_idempotence = false\n[kafka.properties]\n\"request.required.acks\" = \"0\"\nacks = \"0\"\n",
        ] {
            let err = refused(toml);
            assert!(err.contains("kafka.acks"), "{toml}: {err}");
        }
    }

    #[test]
    fn acks_all_in_any_spelling_is_accepted() {
        for toml in [
            "[kafka.properties]\n\"request.required.acks\" = \"-1\"\n",
            "[kafka.properties]\n\"request.required.acks\" = \"ALL\"\n",
            "[kafka.properties]\nacks = \"all\"\n\"topic.acks\" = \"-1\"\n",
        ] {
            Config::from_toml_str(toml).unwrap_or_else(|e| panic!("{toml}: {e}"));
        }
    }

    #[test]
    fn acks_leader_only_needs_the_opt_in_whatever_its_spelling() {
        let err = refused(
            "[kafka]\nenable_idempotence = false\n[kafka.properties]\n\"request.required.acks\" = \"1\"\nacks = \"1\"\n",
        );
        assert!(err.contains("allow_leader_only_acks"), "{err}");
        Config::from_toml_str(
            "[kafka]\nenable_idempotence = false\nallow_leader_only_acks = true\nacks = \"1\"\n[kafka.properties]\n\"request.required.acks\" = \"1\"\n",
        )
        .unwrap();
    }
}
