//! The record step: what one event becomes in Kafka — its key and headers (the routing rules),
//! its framed value, the answer that travels with it through librdkafka, and, for an event
//! refused for good, its dead-letter copy. The stream only decides when records go out.

use bytes::Bytes;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;

use super::client::QueuedEvent;
use super::delivery::{Delivery, Pending, Produced};
use super::event::{Nack, Payload, ProduceEvent};
use super::ProducerDeps;
use crate::metrics::ErrorLabels;

/// One record ready for rdkafka.
pub(crate) struct Record {
    /// Partition key.
    pub key: Option<Vec<u8>>,
    /// The value exactly as produced (shared with the tap and the dead-letter copy).
    pub value: Bytes,
    /// Headers.
    pub headers: OwnedHeaders,
    /// What comes back in the delivery report.
    pub delivery: Box<Delivery>,
}

impl Record {
    /// The record of an accepted event framed as `value`; its report goes back to the stream
    /// whose route is `stream`.
    pub fn event(
        deps: &ProducerDeps,
        topic: &str,
        stream: u64,
        queued: QueuedEvent,
        value: Bytes,
        produced: Produced,
    ) -> Record {
        let QueuedEvent {
            event,
            accepted,
            reply,
        } = queued;
        let key = event
            .key
            .clone()
            .or_else(|| deps.routing.key(&event.payload));
        let headers = deps.routing.headers(&event);
        let tap = deps
            .tap
            .as_ref()
            .and_then(|tap| tap.key(topic, &event))
            .map(|key| Box::new((key, value.clone())));
        // Kept only when a dead-letter topic is configured (the bytes are shared, not copied).
        let dead_letter = deps
            .config
            .producer
            .dead_letter_topic
            .is_some()
            .then(|| Box::new((event, value.clone())));
        let pending = Pending {
            reply,
            accepted,
            produced,
            dead_letter,
            tap,
        };
        Record {
            key,
            value,
            headers,
            delivery: Box::new(Delivery::Event { stream, pending }),
        }
    }

    /// The dead-letter copy of `ev`, refused for good on `topic` with `nack`: its framed bytes
    /// when it got that far (else its payload as sent), the same key, and the error in
    /// headers. `None` when no dead-letter topic is configured; else the topic and the record.
    pub fn dead_letter(
        deps: &ProducerDeps,
        topic: &str,
        metric_topic: &str,
        ev: &ProduceEvent,
        framed: Option<&Bytes>,
        nack: &Nack,
    ) -> Option<(String, Record)> {
        let dlq = deps.config.producer.dead_letter_topic.clone()?;
        let value = match (framed, &ev.payload) {
            (Some(b), _) => b.clone(),
            (None, Payload::Typed(n)) => Bytes::from(n.encode_to_vec()),
            (None, Payload::Normalized(e)) => Bytes::from(e.bytes.clone()),
            (None, Payload::Encoded { bytes, .. }) => Bytes::from(bytes.clone()),
        };
        let reason = nack.reason.to_string();
        let headers = [
            ("error", reason.as_str()),
            ("error_kind", nack.reason.kind()),
            ("original_topic", topic),
        ]
        .into_iter()
        .fold(deps.routing.headers(ev), |h, (key, v)| {
            h.insert(Header {
                key,
                value: Some(v),
            })
        });
        let key = ev.key.clone().or_else(|| deps.routing.key(&ev.payload));
        let delivery = Box::new(Delivery::DeadLetter {
            topic: dlq.clone(),
            written: deps.metrics.dead_lettered.clone(),
            labels: ErrorLabels {
                topic: metric_topic.to_string(),
                reason: nack.reason.kind().to_string(),
            },
        });
        Some((
            dlq,
            Record {
                key,
                value,
                headers,
                delivery,
            },
        ))
    }

    /// The rdkafka record to `topic`, borrowing the key and value from `key` and `value`
    /// (taken out of the record first, so the delivery can move into rdkafka).
    pub fn base<'a>(
        topic: &'a str,
        key: &'a Option<Vec<u8>>,
        value: &'a Bytes,
        headers: OwnedHeaders,
        delivery: Box<Delivery>,
    ) -> BaseRecord<'a, [u8], [u8], Box<Delivery>> {
        let record = BaseRecord::with_opaque_to(topic, delivery)
            .payload(&value[..])
            .headers(headers);
        match key {
            Some(k) => record.key(&k[..]),
            None => record,
        }
    }
}
