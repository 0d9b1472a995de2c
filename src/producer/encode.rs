//! The encode step: resolve the schema id for the topic's subject (registered once, then
//! cached; guarded by the registry circuit breaker) and frame the payload in the Confluent format.

use std::collections::HashMap;

use super::breaker::Breaker;
use super::event::{Dependency, Nack, NackReason, Payload};
use crate::schema::registry::{Registry, SubjectStrategy};
use crate::schema::{wire, DataType};

/// Resolves schema ids and frames records for one topic.
#[derive(Debug)]
pub struct Encoder {
    registry: Registry,
    strategy: SubjectStrategy,
    /// (subject, full message name) → schema id.
    ids: HashMap<(String, String), u32>,
    /// Hot path for typed records: schema id per data type for the last topic seen.
    typed: Option<(String, [Option<u32>; DataType::ALL.len()])>,
    breaker: Breaker,
}

const FIRST_MESSAGE: &[i32] = &[0];

impl Encoder {
    /// An encoder with an empty id cache.
    pub fn new(registry: Registry, strategy: SubjectStrategy, breaker: Breaker) -> Encoder {
        Encoder {
            registry,
            strategy,
            ids: HashMap::new(),
            typed: None,
            breaker,
        }
    }

    /// The registry breaker, for the circuit-state metric.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Registers the schema of `dt` for `topic` ahead of the first event (best effort).
    pub async fn warm_up(&mut self, topic: &str, dt: DataType) -> Result<u32, Nack> {
        let (subject, name) = (self.strategy.subject(topic, dt), dt.full_name());
        self.register(subject, name, dt.proto_source()).await
    }

    async fn register(&mut self, subject: String, name: String, proto: &str) -> Result<u32, Nack> {
        if let Some(id) = self.ids.get(&(subject.clone(), name.clone())) {
            return Ok(*id);
        }
        if !self.breaker.allow() {
            return Err(Nack::new(
                NackReason::CircuitOpen(Dependency::Registry),
                true,
            ));
        }
        match self.registry.register_proto(&subject, &name, proto).await {
            Ok(id) => {
                self.breaker.success();
                tracing::info!(%subject, id, "schema registered");
                self.ids.insert((subject, name), id);
                Ok(id)
            }
            Err(e) => {
                if e.retriable {
                    self.breaker.failure();
                } else {
                    // The registry answered: it is up, the schema is refused.
                    self.breaker.success();
                }
                Err(Nack::new(
                    NackReason::SchemaRegistry(e.message),
                    e.retriable,
                ))
            }
        }
    }

    fn cached_id(&self, topic: &str, dt: DataType) -> Option<u32> {
        match &self.typed {
            Some((t, ids)) if t == topic => ids[dt as usize],
            _ => None,
        }
    }

    /// The schema id of a normalized data type under `topic` (registered on first use).
    async fn typed_id(&mut self, topic: &str, dt: DataType) -> Result<u32, Nack> {
        if let Some(id) = self.cached_id(topic, dt) {
            return Ok(id);
        }
        let subject = self.strategy.subject(topic, dt);
        let id = self
            .register(subject, dt.full_name(), dt.proto_source())
            .await?;
        let ids = match &mut self.typed {
            Some((t, ids)) if t == topic => ids,
            other => &mut other.insert((topic.to_string(), Default::default())).1,
        };
        ids[dt as usize] = Some(id);
        Ok(id)
    }

    /// Frames a normalized `payload` whose schema id is already known, without waiting;
    /// `false` when it needs [`Encoder::encode`] (a first record, or a pre-encoded payload).
    pub fn encode_cached(&self, topic: &str, payload: &Payload, buf: &mut Vec<u8>) -> bool {
        let id = match payload {
            Payload::Typed(record) => self.cached_id(topic, record.data_type()),
            Payload::Normalized(record) => self.cached_id(topic, record.data_type),
            Payload::Encoded { .. } => None,
        };
        match id {
            Some(id) => {
                frame(buf, id, payload);
                true
            }
            None => false,
        }
    }

    /// Frames `payload` for `topic` into `buf` (cleared first): header + protobuf bytes,
    /// registering its schema first when its id is not known yet.
    pub async fn encode(
        &mut self,
        topic: &str,
        payload: &Payload,
        buf: &mut Vec<u8>,
    ) -> Result<(), Nack> {
        let id = match payload {
            Payload::Typed(record) => self.typed_id(topic, record.data_type()).await?,
            Payload::Normalized(record) => self.typed_id(topic, record.data_type).await?,
            Payload::Encoded { schema, .. } => {
                let subject = match self.strategy {
                    SubjectStrategy::TopicName => format!("{topic}-value"),
                    SubjectStrategy::RecordName => schema.full_name.clone(),
                };
                self.register(subject, schema.full_name.clone(), &schema.proto)
                    .await?
            }
        };
        frame(buf, id, payload);
        Ok(())
    }
}

/// Writes the Confluent header for schema `id` and the payload's protobuf bytes into `buf`
/// (cleared first).
fn frame(buf: &mut Vec<u8>, id: u32, payload: &Payload) {
    buf.clear();
    match payload {
        Payload::Typed(record) => {
            wire::write_header(buf, id, FIRST_MESSAGE);
            record.encode_into(buf);
        }
        Payload::Normalized(record) => {
            wire::write_header(buf, id, FIRST_MESSAGE);
            buf.extend_from_slice(&record.bytes);
        }
        Payload::Encoded { schema, bytes, .. } => {
            wire::write_header(buf, id, &schema.message_indexes);
            buf.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::SchemaRegistryConfig;
    use crate::schema::Normalized;

    /// The registry is down and its URL carries credentials and a query: the Nack a feed gets
    /// back (and logs, and counts) says the registry failed without repeating either.
    #[tokio::test]
    async fn a_registry_nack_reason_names_no_credentials_or_query() {
        let cfg = SchemaRegistryConfig {
            url: "http://dave:pa55word@127.0.0.1:1/?token=tok314".into(),
            timeout: std::time::Duration::from_millis(2_000),
            ..SchemaRegistryConfig::default()
        };
        let mut enc = Encoder::new(
            Registry::new(&cfg).unwrap(),
            SubjectStrategy::TopicName,
            Breaker::new(5, Duration::from_secs(1)),
        );
        let payload = Payload::Typed(Box::new(Normalized::Trade(Default::default())));
        let nack = enc
            .encode("t.trade", &payload, &mut Vec::new())
            .await
            .unwrap_err();
        assert!(nack.retriable);
        let NackReason::SchemaRegistry(why) = &nack.reason else {
            panic!("not a registry nack: {nack:?}")
        };
        let shown = nack.to_string();
        assert!(shown.contains("127.0.0.1:1"), "{shown}");
        for secret in ["dave", "pa55word", "token", "tok314"] {
            assert!(!why.contains(secret) && !shown.contains(secret), "{shown}");
        }
    }
}
