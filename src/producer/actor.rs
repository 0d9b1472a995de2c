//! `ProducerActor`: one per topic, supervised. It owns the bounded queue and the persistent
//! stream; the overflow policy is applied here, at the door.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use actix::dev::{MessageResponse, OneshotSender};
use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::breaker::Breaker;
use super::client::{Door, GetDoor, Queued};
use super::encode::Encoder;
use super::event::{Ack, Nack, ProduceEvent};
use super::stream::{self, NackLog, TopicStream};
use super::ProducerDeps;
use crate::metrics::TopicLabels;

/// Stop accepting, drain, answer every pending event (Ack, or `Nack(ShuttingDown)` after the
/// configured deadline). Later events are answered `Nack(ShuttingDown)`.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Test hook: makes the actor fail, so its supervisor restarts it (feature `test-hooks`).
#[cfg(feature = "test-hooks")]
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct InjectFailure;

/// Sent by the stream when the shared rdkafka producer reported a fatal error.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
struct ProducerFailed {
    generation: u64,
}

/// The producer actor of one topic.
pub struct ProducerActor {
    topic: Arc<str>,
    deps: Arc<ProducerDeps>,
    /// Where events enter; rebuilt whenever the queue is opened or closed.
    door: Arc<Door>,
    stream: Option<JoinHandle<()>>,
    /// Tells the stream to close its queue (shutdown): senders that still hold the old door
    /// are then refused, and the stream drains what was queued.
    close: Option<oneshot::Sender<()>>,
    closing: Arc<AtomicBool>,
    failed_generation: Option<u64>,
    waiting: Arc<AtomicUsize>,
}

impl ProducerActor {
    /// A producer actor for `topic`; start it under an actix `Supervisor`.
    pub fn new(topic: impl Into<Arc<str>>, deps: Arc<ProducerDeps>) -> ProducerActor {
        let mut actor = ProducerActor {
            topic: topic.into(),
            door: Arc::new(Door::new(
                None,
                Arc::default(),
                Arc::default(),
                String::new(),
                deps.clone(),
            )),
            deps,
            stream: None,
            close: None,
            closing: Arc::default(),
            failed_generation: None,
            waiting: Arc::default(),
        };
        actor.set_queue(None);
        actor
    }

    /// Opens (`Some`) or closes (`None`) the door onto the queue. The old door is retired, so
    /// handles still holding it ask for the new one instead of queueing into a queue that is
    /// about to be dropped.
    fn set_queue(&mut self, tx: Option<mpsc::Sender<Queued>>) {
        self.door.retire();
        self.door = Arc::new(Door::new(
            tx,
            self.closing.clone(),
            self.waiting.clone(),
            self.metric_topic(),
            self.deps.clone(),
        ));
    }

    fn metric_topic(&self) -> String {
        self.deps.routing.metric_topic(&self.topic)
    }
}

impl Actor for ProducerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.closing.load(Ordering::Acquire) {
            return;
        }
        let cfg = &self.deps.config;
        let (tx, rx) = mpsc::channel(cfg.producer.queue_capacity);
        let (generation, producer) = self.deps.shared.get();
        let cb = &cfg.producer.circuit_breaker;
        let breaker = || Breaker::new(cb.failure_threshold, cb.cooldown);
        let me = ctx.address().downgrade();
        let routes = self.deps.shared.routes();
        routes.count_orphans(&self.deps.metrics.producer_orphan_reports);
        let (route, reports) = routes.open(self.topic.clone());
        let parts = TopicStream {
            topic: self.topic.clone(),
            deps: self.deps.clone(),
            producer,
            generation,
            encoder: Encoder::new(
                self.deps.registry.clone(),
                cfg.schema_registry.subject_strategy,
                breaker(),
            ),
            broker: breaker(),
            on_fatal: Box::new(move |generation| {
                if let Some(addr) = me.upgrade() {
                    addr.do_send(ProducerFailed { generation });
                }
            }),
            fatal_reported: false,
            metric_topic: self.metric_topic(),
            nack_log: NackLog::default(),
            handles: Default::default(),
            route,
            in_flight: 0,
            epoch: self.deps.shared.health.epoch(),
        };
        // Events sent to the actor's address (not through a `ProducerHandle`, which uses the
        // door) wait in the mailbox first: bounded like the queue, so at most
        // 2 × queue_capacity of them wait, and many can be in flight without parking on
        // actix's default of 16.
        ctx.set_mailbox_capacity(cfg.producer.queue_capacity.max(16));
        let (close, closed) = oneshot::channel();
        self.close = Some(close);
        self.stream = Some(actix::spawn(stream::run(
            rx,
            closed,
            reports,
            parts,
            self.closing.clone(),
        )));
        self.set_queue(Some(tx));
        tracing::debug!(topic = %self.topic, generation, "producer actor started");
    }
}

impl Supervised for ProducerActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        tracing::warn!(topic = %self.topic, "producer actor restarting");
        self.deps
            .metrics
            .actor_restarts
            .get_or_create(&TopicLabels {
                topic: self.metric_topic(),
            })
            .inc();
        // Dropping the stream answers what it held with Nack(Interrupted): its queue, and
        // (its route closing) the records still in rdkafka as their reports arrive.
        if let Some(h) = self.stream.take() {
            h.abort();
        }
        self.close = None;
        self.set_queue(None);
        if let Some(generation) = self.failed_generation.take() {
            if let Err(e) = self.deps.shared.rebuild(generation) {
                tracing::error!(error = %e, "cannot rebuild the Kafka producer; the next restart retries");
            }
        }
    }
}

impl Handler<GetDoor> for ProducerActor {
    type Result = MessageResult<GetDoor>;

    fn handle(&mut self, _: GetDoor, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.door.clone())
    }
}

/// The response to a `ProduceEvent`: actix's own reply channel goes into the queue with the
/// event, so the stream answers the sender directly (no task or extra channel per event).
pub struct Accepted {
    door: Arc<Door>,
    event: ProduceEvent,
}

impl MessageResponse<ProducerActor, ProduceEvent> for Accepted {
    fn handle(
        self,
        _ctx: &mut Context<ProducerActor>,
        tx: Option<OneshotSender<Result<Ack, Nack>>>,
    ) {
        let reply = self.door.reply(tx);
        self.door.accept(self.event, reply);
    }
}

impl Handler<ProduceEvent> for ProducerActor {
    type Result = Accepted;

    fn handle(&mut self, event: ProduceEvent, _ctx: &mut Context<Self>) -> Accepted {
        Accepted {
            door: self.door.clone(),
            event,
        }
    }
}

impl Handler<Shutdown> for ProducerActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        self.closing.store(true, Ordering::Release);
        // The stream closes its queue (senders holding the old door are refused), drains what
        // was queued and finishes.
        self.set_queue(None);
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
        let stream = self.stream.take();
        let deadline = self.deps.config.producer.shutdown_deadline;
        let topic = self.topic.clone();
        let shared = self.deps.shared.clone();
        Box::pin(async move {
            let Some(stream) = stream else { return };
            let abort = stream.abort_handle();
            if tokio::time::timeout(deadline, stream).await.is_err() {
                tracing::warn!(%topic, ?deadline, "shutdown deadline passed; answering the rest with ShuttingDown");
                abort.abort();
                // Records still in rdkafka are failed now (their reports find the stream
                // gone and answer ShuttingDown) instead of when they time out. The producer
                // is shared: other topics' records in flight are failed too (a retriable
                // Nack); in the service a deadline passes only when the whole system stops.
                shared.purge();
            }
        })
    }
}

#[cfg(feature = "test-hooks")]
impl Handler<InjectFailure> for ProducerActor {
    type Result = ();

    fn handle(&mut self, _: InjectFailure, ctx: &mut Context<Self>) {
        tracing::warn!(topic = %self.topic, "injected failure");
        ctx.stop();
    }
}

impl Handler<ProducerFailed> for ProducerActor {
    type Result = ();

    fn handle(&mut self, msg: ProducerFailed, ctx: &mut Context<Self>) {
        self.failed_generation = Some(msg.generation);
        ctx.stop();
    }
}
