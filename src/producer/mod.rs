//! The producer pipeline, one step per file:
//! - `event`: ProduceEvent → Ack/Nack; `client`: how an event enters its actor's queue;
//! - `routing`: topic, key and headers rules; `encode`: schema id + Confluent framing;
//!   `record`: what one event becomes in Kafka (and its dead-letter copy);
//! - `stream`: the persistent bounded stream (flow control only); `kafka`: the shared rdkafka
//!   producer; `delivery`: delivery reports answer events; `classify`: what a Kafka error means;
//! - `actor`: the supervised per-topic actor; `breaker`: circuit breakers; `recovery`: notices a
//!   broker outage and makes deliveries resume after it; `tap`: what else sees each record.

pub mod actor;
pub mod breaker;
pub mod classify;
pub(crate) mod client;
pub mod delivery;
pub mod encode;
pub mod event;
pub mod kafka;
mod record;
pub mod recovery;
pub mod routing;
mod stream;
pub mod tap;
pub mod topics;

use std::sync::Arc;

#[cfg(feature = "test-hooks")]
pub use actor::InjectFailure;
pub use actor::{ProducerActor, Shutdown};
pub use event::{Ack, Dependency, Nack, NackReason, Payload, ProduceEvent, RawSchema};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::schema::registry::Registry;
use kafka::SharedProducer;
use routing::Routing;

impl std::fmt::Debug for ProducerDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerDeps")
            .field("shared", &self.shared)
            .field("tap", &self.tap.is_some())
            .finish_non_exhaustive()
    }
}

/// What every producer actor of a system shares.
pub struct ProducerDeps {
    /// The validated config.
    pub config: Config,
    /// The one rdkafka producer (rebuilt after fatal errors).
    pub shared: Arc<SharedProducer>,
    /// Schema-registry client.
    pub registry: Registry,
    /// Topic, key and header rules.
    pub routing: Routing,
    /// The system's metrics.
    pub metrics: Arc<Metrics>,
    /// What else sees each produced record (none by default).
    pub tap: Option<Arc<dyn tap::RecordTap>>,
}
