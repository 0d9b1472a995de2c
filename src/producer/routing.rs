//! Topic names, record keys and headers, decided from the config.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rdkafka::message::{Header, OwnedHeaders};

use super::event::{Nack, NackReason, Payload, ProduceEvent};
use crate::config::{PartitionKey, ProducerConfig, TopicMode};
use crate::schema::{DataType, RECORD_ID_HEADER, SCHEMA_VERSION};

/// The crate version, sent in the `producer_version` header.
pub const PRODUCER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Routing rules of one system.
#[derive(Debug, Clone)]
pub struct Routing {
    prefix: String,
    mode: TopicMode,
    key: PartitionKey,
    /// Random per producer system; with `next_id`, every record's [`RECORD_ID_HEADER`].
    instance: u64,
    /// Records named so far (shared by every clone).
    next_id: Arc<AtomicU64>,
}

fn slug(s: &str) -> String {
    s.to_ascii_lowercase().replace('_', "-")
}

/// Whether `t` is a legal Kafka topic name.
pub fn valid_topic(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Routing {
    /// Rules from the producer config.
    pub fn new(cfg: &ProducerConfig) -> Routing {
        Routing {
            prefix: cfg.topic_prefix.clone(),
            mode: cfg.topic_mode,
            key: cfg.partition_key,
            instance: rand::random(),
            next_id: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A fresh record id: this system's instance and the next sequence number, in hex.
    pub fn record_id(&self) -> String {
        let mut buf = [0u8; 32];
        self.record_id_into(&mut buf).to_string()
    }

    /// [`Routing::record_id`] written into `buf` (no allocation: a record's header is copied
    /// by librdkafka).
    fn record_id_into<'b>(&self, buf: &'b mut [u8; 32]) -> &'b str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let seq = self.next_id.fetch_add(1, Ordering::Relaxed);
        for (i, b) in buf.iter_mut().enumerate() {
            let (word, shift) = if i < 16 {
                (self.instance, 60 - 4 * i)
            } else {
                (seq, 60 - 4 * (i - 16))
            };
            *b = HEX[((word >> shift) & 0xf) as usize];
        }
        // Hex digits are ASCII.
        std::str::from_utf8(buf).unwrap_or_default()
    }

    /// The consolidated topic of a data type: `<prefix>.<data_type>`.
    pub fn consolidated_topic(&self, dt: DataType) -> String {
        format!("{}.{}", self.prefix, dt.as_str())
    }

    /// The topic every record of `dt` without an explicit topic goes to, when that depends on
    /// the data type alone (consolidated topics); `None` when it depends on the symbol too.
    pub fn topic_of_type(&self, dt: DataType) -> Option<String> {
        match self.mode {
            TopicMode::Consolidated => Some(self.consolidated_topic(dt)),
            TopicMode::PerSymbol => None,
        }
    }

    /// Fills in the event's topic (derived when absent) and checks it, without copying an
    /// explicit one.
    pub fn route(&self, ev: &mut ProduceEvent) -> Result<(), Nack> {
        match &ev.topic {
            Some(t) => Self::checked(t).map(|_| ()),
            None => {
                ev.topic = Some(self.derived_topic(&ev.payload)?);
                Ok(())
            }
        }
    }

    fn derived_topic(&self, p: &Payload) -> Result<String, Nack> {
        let Some(dt) = p.data_type() else {
            return Err(Nack::new(
                NackReason::Encode("a pre-encoded payload needs an explicit topic".into()),
                false,
            ));
        };
        let topic = match self.mode {
            TopicMode::Consolidated => self.consolidated_topic(dt),
            TopicMode::PerSymbol => format!(
                "{}.{}.{}.{}",
                self.prefix,
                slug(dt.as_str()),
                slug(p.exchange()),
                slug(p.symbol())
            ),
        };
        Self::checked(&topic)?;
        Ok(topic)
    }

    /// Checks an explicit topic name (a typed `Nack(Encode)` when Kafka would refuse it).
    pub fn checked(topic: &str) -> Result<&str, Nack> {
        if valid_topic(topic) {
            Ok(topic)
        } else {
            Err(Nack::new(
                NackReason::Encode(format!("invalid topic name {topic:?}")),
                false,
            ))
        }
    }

    /// The bounded metric label for a topic: per-symbol topics collapse to their family.
    pub fn metric_topic(&self, topic: &str) -> String {
        match self.mode {
            TopicMode::Consolidated => topic.to_string(),
            TopicMode::PerSymbol => match topic.rsplit_once('.') {
                Some((family, _symbol)) if topic.starts_with(&self.prefix) => format!("{family}.*"),
                _ => topic.to_string(),
            },
        }
    }

    /// The record key for a payload (`None` = no key, spread by the partitioner).
    pub fn key(&self, p: &Payload) -> Option<Vec<u8>> {
        match self.key {
            PartitionKey::Composite => {
                Some(format!("{}-{}", p.exchange(), p.symbol()).into_bytes())
            }
            PartitionKey::Symbol => Some(p.symbol().as_bytes().to_vec()),
            PartitionKey::Exchange => Some(p.exchange().as_bytes().to_vec()),
            PartitionKey::RoundRobin => None,
        }
    }

    /// Standard headers (`content-type`, `exchange`, `symbol`, `data_type`, `schema_version`,
    /// `producer_version`, a fresh `record_id`) followed by the event's own.
    pub fn headers(&self, ev: &ProduceEvent) -> OwnedHeaders {
        let p = &ev.payload;
        let mut id_buf = [0u8; 32];
        let id = self.record_id_into(&mut id_buf);
        let std_headers = [
            ("content-type", "application/x-protobuf"),
            ("exchange", p.exchange()),
            ("symbol", p.symbol()),
            ("data_type", p.data_type_name()),
            ("schema_version", SCHEMA_VERSION),
            ("producer_version", PRODUCER_VERSION),
            (RECORD_ID_HEADER, id),
        ];
        let mut h = OwnedHeaders::new_with_capacity(std_headers.len() + ev.headers.len());
        for (key, value) in std_headers {
            h = h.insert(Header {
                key,
                value: Some(value),
            });
        }
        for (key, value) in &ev.headers {
            h = h.insert(Header {
                key: key.as_str(),
                value: Some(value.as_str()),
            });
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Normalized, Trade};

    #[test]
    fn a_record_id_is_the_instance_then_the_sequence_in_hex() {
        let cfg = crate::config::Config::default();
        let r = Routing::new(&cfg.producer);
        r.next_id.store(0x0123_4567_89ab_cdef, Ordering::Relaxed);
        let id = r.record_id();
        assert_eq!(id, format!("{:016x}0123456789abcdef", r.instance));
        assert_eq!(
            r.record_id(),
            format!("{:016x}0123456789abcdf0", r.instance)
        );
    }

    fn ev() -> ProduceEvent {
        ProduceEvent::typed(Normalized::Trade(Trade {
            exchange: "BINANCE_FUTURES".into(),
            symbol: "BTC-USDT-PERP".into(),
            ..Default::default()
        }))
    }

    #[test]
    fn every_record_gets_its_own_id_and_clones_share_the_sequence() {
        let cfg = crate::config::Config::default();
        let r = Routing::new(&cfg.producer);
        let c = r.clone();
        let ids = [r.record_id(), c.record_id(), r.record_id()];
        let inst = &ids[0][..16];
        assert!(ids.iter().all(|i| i.len() == 32 && i.starts_with(inst)));
        assert_eq!(
            ids.iter().map(|i| &i[16..]).collect::<Vec<_>>(),
            ["0000000000000000", "0000000000000001", "0000000000000002"]
        );
        assert_ne!(&Routing::new(&cfg.producer).record_id()[..16], inst);
    }

    #[test]
    fn topics_keys_and_labels() {
        let topic_for = |r: &Routing, mut e: ProduceEvent| {
            r.route(&mut e).map(|()| e.topic.unwrap_or_default())
        };
        let mut cfg = ProducerConfig::default();
        let r = Routing::new(&cfg);
        assert_eq!(topic_for(&r, ev()).unwrap(), "tickflow.trade");
        assert_eq!(
            r.key(&ev().payload).unwrap(),
            b"BINANCE_FUTURES-BTC-USDT-PERP"
        );
        cfg.topic_mode = TopicMode::PerSymbol;
        cfg.partition_key = PartitionKey::RoundRobin;
        let r = Routing::new(&cfg);
        let t = topic_for(&r, ev()).unwrap();
        assert_eq!(t, "tickflow.trade.binance-futures.btc-usdt-perp");
        assert_eq!(r.metric_topic(&t), "tickflow.trade.binance-futures.*");
        assert_eq!(r.key(&ev().payload), None);
        assert!(topic_for(&r, ev().to_topic("bad topic!")).is_err());
    }
}
