//! The producer pipeline, one step per file: `event` (ProduceEvent → Ack/Nack), `routing`
//! (topic, key, headers), `encode` (schema id + Confluent framing), `kafka` (shared rdkafka
//! producer, error classes), `stream` (the persistent bounded stream), `delivery` (delivery
//! reports answer events), `actor` (the supervised per-topic actor), `breaker` (circuit
//! breakers), `recovery` (notices a broker outage and makes deliveries resume after it).

pub mod actor;
pub mod breaker;
pub mod delivery;
pub mod encode;
pub mod event;
pub mod kafka;
pub mod recovery;
pub mod routing;
mod stream;

use std::sync::Arc;

pub use actor::{InjectFailure, ProducerActor, Shutdown};
pub use event::{Ack, Dependency, Nack, NackReason, Payload, ProduceEvent, RawSchema};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::schema::registry::Registry;
use kafka::SharedProducer;
use routing::Routing;

/// What every producer actor of a system shares.
#[derive(Debug)]
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
}
