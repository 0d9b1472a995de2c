//! The persistent stream of one producer actor: a bounded queue feeds one long-lived loop that
//! encodes, hands records to rdkafka (its `QueueFull` is waited out, never dropped) and keeps
//! at most `max_in_flight` of them unreported. Their delivery reports come back here (see
//! `delivery`) and answer the events, each exactly once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{Producer, PurgeConfig};
use tokio::sync::{mpsc, oneshot};

use super::breaker::{Breaker, State};
use super::classify::{classify, error_code, ErrorClass};
use super::client::{Queued, Reply};
use super::delivery::{Delivery, Inbox, KafkaProducer, Outcome, Pending, Produced, Report, Route};
use super::encode::Encoder;
use super::event::{Ack, Dependency, Nack, NackReason, Payload, ProduceEvent};
use super::kafka::SharedProducer;
use super::record::Record;
use super::topics::create_topics;
use super::ProducerDeps;
use crate::metrics::{CircuitLabels, DependencyLabel, RecordLabels, TopicLabels};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

/// Everything the stream of one topic owns.
pub(crate) struct TopicStream {
    pub topic: Arc<str>,
    pub deps: Arc<ProducerDeps>,
    pub producer: Arc<KafkaProducer>,
    pub generation: u64,
    pub encoder: Encoder,
    pub broker: Breaker,
    /// Called once with the producer generation when a fatal producer error is seen.
    pub on_fatal: Box<dyn Fn(u64) + Send>,
    pub fatal_reported: bool,
    pub metric_topic: String,
    pub nack_log: NackLog,
    pub handles: MetricHandles,
    /// Where this stream's delivery reports come back (closed when the stream is dropped).
    pub route: Route,
    /// Records handed to rdkafka and not reported yet.
    pub in_flight: usize,
    /// The recovery epoch last seen (see `recovery`).
    pub epoch: u64,
}

/// Metric handles of one topic, looked up once instead of per event.
#[derive(Default)]
pub(crate) struct MetricHandles {
    encode_latency: Option<Histogram>,
    message_bytes: Option<Histogram>,
    produce_latency: Option<Histogram>,
    circuits: Option<(Gauge, Gauge)>,
    last_states: Option<(State, State)>,
    produced: Vec<(&'static str, String, Counter)>,
}

impl TopicStream {
    fn topic_labels(&self) -> TopicLabels {
        TopicLabels {
            topic: self.metric_topic.clone(),
        }
    }

    fn init_metrics(&mut self) {
        let m = self.deps.metrics.clone();
        let t = self.topic_labels();
        let circuit = |dependency| {
            m.circuit_state
                .get_or_create(&CircuitLabels {
                    topic: self.metric_topic.clone(),
                    dependency,
                })
                .clone()
        };
        self.handles.circuits = Some((
            circuit(DependencyLabel::Broker),
            circuit(DependencyLabel::Registry),
        ));
        self.handles.encode_latency = Some(m.encode_latency.get_or_create(&t).clone());
        self.handles.message_bytes = Some(m.message_bytes.get_or_create(&t).clone());
        self.handles.produce_latency = Some(m.produce_latency.get_or_create(&t).clone());
    }

    /// Publishes the breakers' states when they changed.
    fn update_circuits(&mut self) {
        let states = (self.broker.state(), self.encoder.breaker().state());
        if self.handles.last_states == Some(states) {
            return;
        }
        if let Some((broker, registry)) = &self.handles.circuits {
            broker.set(states.0.gauge());
            registry.set(states.1.gauge());
            self.handles.last_states = Some(states);
        }
    }

    /// The produced counter of (data type, exchange), looked up once per pair: a record
    /// carries the index of its cached counter (no reference count per record).
    fn produced_counter(&mut self, data_type: &'static str, exchange: &str) -> Produced {
        let h = &mut self.handles.produced;
        if let Some(i) = h
            .iter()
            .position(|(d, e, _)| *d == data_type && e == exchange)
        {
            return Produced::Cached(i);
        }
        let c = self
            .deps
            .metrics
            .produced
            .get_or_create(&RecordLabels {
                topic: self.metric_topic.clone(),
                data_type: data_type.to_string(),
                exchange: exchange.to_string(),
            })
            .clone();
        // Bounded: a topic sees few (data type, exchange) pairs; past that, look up each time.
        if h.len() < 64 {
            h.push((data_type, exchange.to_string(), c));
            return Produced::Cached(h.len() - 1);
        }
        Produced::Other(c)
    }

    /// Creates the topic and registers its schema before the first event (best effort: a
    /// failure here is retried per event, and answered with a typed Nack).
    async fn prepare(&mut self, first: Option<&Payload>) {
        self.deps.shared.health.topic(&self.topic);
        let p = &self.deps.config.producer;
        if p.create_topics {
            let cfg = self.deps.config.kafka.client_config();
            if let Err(e) = create_topics(
                &cfg,
                &[self.topic.to_string()],
                p.partitions,
                p.replication_factor,
            )
            .await
            {
                tracing::warn!(topic = %self.topic, error = %e, "topic creation failed; relying on the broker");
            }
        }
        if let Some(dt) = first.and_then(Payload::data_type) {
            if let Err(nack) = self.encoder.warm_up(&self.topic, dt).await {
                tracing::warn!(topic = %self.topic, %nack, "schema not registered yet");
            }
        }
        self.update_circuits();
    }

    fn nack(&mut self, reply: Reply, nack: Nack) {
        let m = &self.deps.metrics;
        m.count_nack(&self.metric_topic, nack.reason.kind());
        self.nack_log.record(&self.topic, &nack);
        reply.send(Err(nack));
    }

    /// Encodes one event and hands it to rdkafka, or answers it at once. Its delivery report
    /// answers it later (see `delivery`).
    async fn send(&mut self, q: Queued) {
        if self.deps.shared.generation() != self.generation {
            // Another actor rebuilt the shared producer: switch to it.
            (self.generation, self.producer) = self.deps.shared.get();
            self.fatal_reported = false;
        }
        let epoch = self.deps.shared.health.epoch();
        if epoch != self.epoch {
            // The recovery watcher saw the broker take records again: close the breaker now
            // rather than after a half-open probe.
            self.epoch = epoch;
            self.broker.success();
            self.update_circuits();
        }
        if !self.broker.allow() {
            self.update_circuits();
            self.nack(
                q.reply,
                Nack::new(NackReason::CircuitOpen(Dependency::Broker), true),
            );
            return;
        }
        let started = Instant::now();
        let mut buf = Vec::with_capacity(256);
        let encoded = if self
            .encoder
            .encode_cached(&self.topic, &q.event.payload, &mut buf)
        {
            Ok(())
        } else {
            let encoded = self
                .encoder
                .encode(&self.topic, &q.event.payload, &mut buf)
                .await;
            self.update_circuits();
            encoded
        };
        if let Err(nack) = encoded {
            if !nack.retriable {
                self.dead_letter(&q.event, None, &nack);
            }
            self.nack(q.reply, nack);
            return;
        }
        if let (Some(lat), Some(size)) = (&self.handles.encode_latency, &self.handles.message_bytes)
        {
            lat.observe(started.elapsed().as_secs_f64());
            size.observe(buf.len() as f64);
        }

        let produced =
            self.produced_counter(q.event.payload.data_type_name(), q.event.payload.exchange());
        let value = Bytes::from(buf);
        let Record {
            key,
            value,
            headers,
            delivery,
        } = Record::event(
            &self.deps,
            &self.topic,
            self.route.id(),
            *q,
            value,
            produced,
        );
        let mut record = Record::base(&self.topic, &key, &value, headers, delivery);
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.in_flight += 1;
                    if self.deps.shared.generation() != self.generation {
                        // The producer was replaced (and perhaps purged) while this record
                        // went in: fail what the old one has not sent yet (never stored; each
                        // is answered with a retriable Nack) rather than let it wait there
                        // for its timeout.
                        self.producer.purge(PurgeConfig::default().queue());
                    }
                    return;
                }
                Err((e, r)) if error_code(&e) == RDKafkaErrorCode::QueueFull => {
                    // librdkafka's queue is full: wait for room (backpressure, never loss).
                    record = r;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, r)) => {
                    // Refused outright: no report will come, so it is answered here.
                    let Delivery::Event { pending, .. } = *r.delivery_opaque else {
                        return;
                    };
                    let generation = self.generation;
                    self.failed(pending, error_code(&e), &e.to_string(), generation);
                    return;
                }
            }
        }
    }

    /// Answers one reported record: Ack, or (classified, counted against the breaker,
    /// dead-lettered when permanent) Nack. `now` is read once per batch of reports.
    fn reported(&mut self, report: Report, now: Instant) {
        let Delivery::Event { pending, .. } = *report.delivery else {
            return;
        };
        match report.outcome {
            Outcome::Delivered { partition, offset } => {
                self.broker.success();
                self.update_circuits();
                let latency = now.saturating_duration_since(pending.accepted);
                match &pending.produced {
                    Produced::Cached(i) => {
                        if let Some((_, _, c)) = self.handles.produced.get(*i) {
                            c.inc();
                        }
                    }
                    Produced::Other(c) => {
                        c.inc();
                    }
                }
                if let Some(h) = &self.handles.produce_latency {
                    h.observe(latency.as_secs_f64());
                }
                if let (Some(tap), Some(kept)) = (&self.deps.tap, pending.tap) {
                    let (key, framed) = *kept;
                    tap.stored(key, framed);
                }
                pending.reply.send(Ok(Ack {
                    topic: self.topic.clone(),
                    partition,
                    offset,
                    latency,
                }));
            }
            Outcome::Failed { code, message } => {
                self.failed(pending, code, &message, report.generation)
            }
        }
    }

    /// Answers a record that was not written.
    fn failed(&mut self, pending: Pending, code: RDKafkaErrorCode, message: &str, generation: u64) {
        let nack = self.delivery_failed(code, message, generation);
        if !nack.retriable {
            if let Some((ev, bytes)) = pending.dead_letter.as_deref() {
                self.dead_letter(ev, Some(bytes), &nack);
            }
        }
        self.nack(pending.reply, nack);
    }

    /// Classifies a failed delivery (the one place that decides), feeds the broker breaker,
    /// asks for a producer rebuild on fatal errors, and returns the Nack. `generation` is the
    /// producer that sent the record: a fatal error of one already replaced is answered
    /// (retriable) but rebuilds nothing.
    fn delivery_failed(&mut self, code: RDKafkaErrorCode, message: &str, generation: u64) -> Nack {
        let current = generation == self.generation && generation == self.deps.shared.generation();
        let class = if current && SharedProducer::is_fatal(&self.producer) {
            ErrorClass::Fatal
        } else {
            match classify(code) {
                ErrorClass::Fatal if !current => ErrorClass::Retriable,
                class => class,
            }
        };
        // A purge is ours (shutdown deadline, or the recovery watcher replacing a producer
        // that delivered nothing): it says nothing about the broker.
        let purged = matches!(
            code,
            RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight
        );
        if class != ErrorClass::Permanent && !purged {
            self.broker.failure();
            self.deps.shared.health.failed();
        }
        if class == ErrorClass::Fatal && !self.fatal_reported {
            self.fatal_reported = true;
            tracing::error!(topic = %self.topic, ?code, message, "producer unusable; restarting the producer actor to rebuild it");
            (self.on_fatal)(self.generation);
        }
        self.update_circuits();
        Nack::new(
            NackReason::Delivery {
                code: format!("{code:?}"),
                message: message.to_string(),
            },
            class != ErrorClass::Permanent,
        )
    }

    /// Writes an undeliverable event to the dead-letter topic (if configured). Its own
    /// delivery report counts it (or logs the failure).
    fn dead_letter(&self, ev: &ProduceEvent, framed: Option<&Bytes>, nack: &Nack) {
        let Some((dlq, r)) = Record::dead_letter(
            &self.deps,
            &self.topic,
            &self.metric_topic,
            ev,
            framed,
            nack,
        ) else {
            return;
        };
        let record = Record::base(&dlq, &r.key, &r.value, r.headers, r.delivery);
        if let Err((e, _)) = self.producer.send(record) {
            tracing::error!(topic = %dlq, error = %e, "dead-letter write refused");
        }
    }
}

/// Most events taken from the queue, or failures answered, per turn of the stream.
const BATCH: usize = 64;

/// Answers the reports that have come back, up to [`BATCH`]; `None` when the route is gone.
async fn answer_reports(
    s: &mut TopicStream,
    reports: &mut Inbox,
    batch: &mut Vec<Report>,
) -> Option<()> {
    if reports.recv_many(batch, BATCH).await == 0 {
        return None;
    }
    // Reports arrive in batches (one produce response): one clock read serves them all.
    let now = Instant::now();
    let mut delivered = 0;
    for r in batch.drain(..) {
        s.in_flight = s.in_flight.saturating_sub(1);
        delivered += u64::from(matches!(r.outcome, Outcome::Delivered { .. }));
        s.reported(r, now);
    }
    s.deps.shared.health.delivered(delivered);
    Some(())
}

/// Runs the stream until its queue is closed (by `close`, or when every sender is gone) and
/// drained, and every record handed to rdkafka is reported; every event gets one answer.
pub(crate) async fn run(
    mut rx: mpsc::Receiver<Queued>,
    mut close: oneshot::Receiver<()>,
    mut reports: Inbox,
    mut s: TopicStream,
    closing: Arc<AtomicBool>,
) {
    s.init_metrics();
    let mut closed = false;
    let first = tokio::select! {
        q = rx.recv() => q,
        _ = &mut close => {
            closed = true;
            rx.close();
            rx.recv().await
        }
    };
    s.prepare(first.as_ref().map(|q| &q.event.payload)).await;
    let max_in_flight = s.deps.config.producer.max_in_flight;
    let depth = s
        .deps
        .metrics
        .queue_depth
        .get_or_create(&s.topic_labels())
        .clone();
    if let Some(q) = first {
        s.send(q).await;
    }
    let mut batch = Vec::with_capacity(BATCH);
    let mut queued = Vec::with_capacity(BATCH);
    let mut turns = 0u32;
    loop {
        turns = turns.wrapping_add(1);
        if turns % 16 == 0 {
            // Answers wake their senders on this same thread: let them run (and send more)
            // instead of draining a long burst of reports first.
            tokio::task::yield_now().await;
        }
        let room = max_in_flight.saturating_sub(s.in_flight).min(BATCH);
        // Not `biased`: when reports and queued events are both ready, either may go first
        // (tokio picks at random), so neither waits for the other to run dry. With reports
        // always first, a burst of reports held back every queued event until it was all
        // answered, and the pipeline ran in bursts (ADR 0002, "Fair turns", has the figures).
        tokio::select! {
            Some(()) = answer_reports(&mut s, &mut reports, &mut batch), if s.in_flight > 0 => {}
            _ = &mut close, if !closed => {
                // Refuse new events (senders still holding this queue are told it is
                // closed); what is already queued is still sent.
                closed = true;
                rx.close();
            }
            // Take what is queued in one go (bounded, so reports are still answered
            // promptly, and by the room left in flight).
            n = rx.recv_many(&mut queued, room), if room > 0 => {
                if n == 0 {
                    break;
                }
                for q in queued.drain(..) {
                    s.send(q).await;
                }
                depth.set(rx.len() as i64);
            }
        }
    }
    // The queue is closed and drained: answer what is still in flight as it is reported.
    while s.in_flight > 0 {
        if answer_reports(&mut s, &mut reports, &mut batch)
            .await
            .is_none()
        {
            break;
        }
    }
    depth.set(0);
    tracing::debug!(topic = %s.topic, closing = closing.load(Ordering::Relaxed), "producer stream finished");
}

/// Logs nacks as bursts: the first of a kind at once, then at most one summary line per kind
/// every few seconds — never one line per message.
#[derive(Debug, Default)]
pub(crate) struct NackLog {
    last: HashMap<&'static str, (Option<Instant>, u64)>,
}

impl NackLog {
    const EVERY: Duration = Duration::from_secs(5);

    fn record(&mut self, topic: &str, nack: &Nack) {
        let kind = nack.reason.kind();
        let now = Instant::now();
        let entry = self.last.entry(kind).or_insert((None, 0));
        entry.1 += 1;
        if entry.0.is_none_or(|t| now.duration_since(t) >= Self::EVERY) {
            tracing::warn!(topic, reason = kind, count = entry.1, last = %nack, "events nacked");
            *entry = (Some(now), 0);
        }
    }
}
