//! The supervisor: builds the shared dependencies from the config, spawns one supervised
//! `ProducerActor` per topic on first use, and stops them all gracefully. `ProducerHandle` is
//! what callers (feeds, the smoke harness, embedders) use to produce. The whole service (replay,
//! producers, feeds) is wired in `crate::service`, which keeps this module free of feeds.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use actix::prelude::*;
use futures::future::join_all;
use rustc_hash::FxHashMap;
use thiserror::Error;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::producer::client::{Door, GetDoor, Offered};
use crate::producer::kafka::SharedProducer;
use crate::producer::routing::Routing;
use crate::producer::tap::RecordTap;
use crate::producer::{Ack, Nack, NackReason, ProduceEvent, ProducerActor, ProducerDeps, Shutdown};
use crate::schema::registry::{Registry, RegistryError};
use crate::schema::DataType;
use tokio::sync::oneshot;

/// The system could not be started.
#[derive(Debug, Error)]
pub enum StartError {
    /// The rdkafka client could not be created (bad property, …).
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The registry client could not be created.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Asks the supervisor for a topic's producer actor, spawning it on first use.
#[derive(Debug, Message)]
#[rtype(result = "Addr<ProducerActor>")]
pub struct GetProducer(pub String);

/// Gracefully stops every producer actor; answers when all pending events are answered.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ShutdownAll;

/// Supervises the producer actors of one system.
pub struct Supervisor {
    deps: Arc<ProducerDeps>,
    producers: HashMap<String, Addr<ProducerActor>>,
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        // Ends by itself once the system's dependencies are gone.
        actix::spawn(crate::producer::recovery::watch(
            Arc::downgrade(&self.deps),
            self.deps.config.producer.recovery.clone(),
        ));
    }
}

impl Handler<GetProducer> for Supervisor {
    type Result = MessageResult<GetProducer>;

    fn handle(
        &mut self,
        GetProducer(topic): GetProducer,
        _ctx: &mut Context<Self>,
    ) -> Self::Result {
        let deps = self.deps.clone();
        let addr = self
            .producers
            .entry(topic.clone())
            .or_insert_with(|| {
                tracing::info!(%topic, "starting producer actor");
                actix::Supervisor::start(move |_| ProducerActor::new(topic, deps))
            })
            .clone();
        MessageResult(addr)
    }
}

impl Handler<ShutdownAll> for Supervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: ShutdownAll, _ctx: &mut Context<Self>) -> Self::Result {
        let all: Vec<_> = self.producers.values().cloned().collect();
        Box::pin(async move {
            join_all(all.iter().map(|a| a.send(Shutdown))).await;
        })
    }
}

/// An answer to come: its receiver, or first the wait for room (or for the topic's actor).
pub type Submitted = Result<Answer, Pin<Box<dyn Future<Output = Answer> + Send>>>;

/// The receiver of one event's answer.
pub type Answer = oneshot::Receiver<Result<Ack, Nack>>;

/// One submitter's own doors, by data type (consolidated topics): its records reach their
/// producer actor's queue with no topic name formatted and no lock taken per record. A feed
/// connection keeps one (see [`ProducerHandle::submit_via`]).
#[derive(Default)]
pub struct Doors {
    by_type: [Option<(String, Arc<Door>)>; DataType::ALL.len()],
}

impl std::fmt::Debug for Doors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doors").finish_non_exhaustive()
    }
}

/// A cheap, cloneable handle to a running producer system.
#[derive(Clone)]
pub struct ProducerHandle {
    supervisor: Addr<Supervisor>,
    deps: Arc<ProducerDeps>,
    /// The current door of each topic's producer actor, once looked up.
    doors: Arc<Mutex<FxHashMap<String, Arc<Door>>>>,
}

impl std::fmt::Debug for ProducerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerHandle").finish_non_exhaustive()
    }
}

impl ProducerHandle {
    /// Starts the supervisor (inside the current actix system) with a validated config.
    pub fn start(config: Config) -> Result<ProducerHandle, StartError> {
        Self::start_with_metrics(config, Metrics::new())
    }

    /// Like [`ProducerHandle::start`], recording into the given metrics.
    pub fn start_with_metrics(
        config: Config,
        metrics: Arc<Metrics>,
    ) -> Result<ProducerHandle, StartError> {
        Self::start_with_tap(config, metrics, None)
    }

    /// Like [`ProducerHandle::start_with_metrics`]; `tap` also sees every produced record.
    pub fn start_with_tap(
        config: Config,
        metrics: Arc<Metrics>,
        tap: Option<Arc<dyn RecordTap>>,
    ) -> Result<ProducerHandle, StartError> {
        let deps = Arc::new(ProducerDeps {
            shared: SharedProducer::new(config.kafka.client_config())?,
            registry: Registry::new(&config.schema_registry)?,
            routing: Routing::new(&config.producer),
            metrics,
            config,
            tap,
        });
        let supervisor = Supervisor {
            deps: deps.clone(),
            producers: HashMap::new(),
        }
        .start();
        Ok(ProducerHandle {
            supervisor,
            deps,
            doors: Arc::default(),
        })
    }

    /// The system's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.deps.metrics.clone()
    }

    /// The routing rules (topic names, keys, headers).
    pub fn routing(&self) -> &Routing {
        &self.deps.routing
    }

    /// The producer actor of `topic` (spawned on first use).
    pub async fn producer_for(&self, topic: &str) -> Result<Addr<ProducerActor>, Nack> {
        self.supervisor
            .send(GetProducer(topic.to_string()))
            .await
            .map_err(|_| Nack::new(NackReason::ShuttingDown, true))
    }

    /// The current door of `topic`'s producer actor, looked up through the supervisor (which
    /// spawns the actor on first use) and cached.
    async fn door_for(&self, topic: &str) -> Result<Arc<Door>, Nack> {
        // Only topics that pass this check are cached, so a cached door needs no check.
        Routing::checked(topic)?;
        let door = self
            .producer_for(topic)
            .await?
            .send(GetDoor)
            .await
            .map_err(|_| Nack::new(NackReason::Interrupted, true))?;
        self.doors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_string(), door.clone());
        Ok(door)
    }

    /// Produces one event; the answer is its Ack or its Nack.
    ///
    /// The event goes straight into its producer actor's queue before this returns (through
    /// the actor's cached door, see ADR 0002), so the returned future holds only the answer's
    /// receiver: cheap to keep thousands in flight. When the queue is full under the
    /// `backpressure` policy, or the topic's actor is not known yet, the returned future
    /// first waits for room (or looks the actor up) instead.
    pub fn produce(
        &self,
        mut event: ProduceEvent,
    ) -> impl Future<Output = Result<Ack, Nack>> + Send + 'static {
        let (tx, answer) = oneshot::channel();
        let slow = match self.route(&mut event) {
            Err(nack) => {
                let _ = tx.send(Err(nack));
                None
            }
            Ok(()) => self.offer(event, tx),
        };
        async move {
            if let Some(slow) = slow {
                slow.await;
            }
            // Outside tokio's cooperative budget: a caller awaiting thousands of answers in
            // one task (a `FuturesUnordered`) would otherwise get most of them back as
            // "pending, wake me again" once the budget is spent, and spin.
            tokio::task::unconstrained(answer)
                .await
                .unwrap_or_else(|_| Err(Nack::new(NackReason::Interrupted, true)))
        }
    }

    /// Derives the topic of an event that has none. An explicit topic is checked when its
    /// door is first looked up (`door_for`), not per event.
    fn route(&self, event: &mut ProduceEvent) -> Result<(), Nack> {
        if event.topic.is_some() {
            return Ok(());
        }
        self.deps.routing.route(event)
    }

    /// Offers a routed event at its topic's cached door; what cannot be done at once is
    /// returned as a (boxed, so the common path stays small) future to await.
    fn offer(
        &self,
        event: ProduceEvent,
        tx: oneshot::Sender<Result<Ack, Nack>>,
    ) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        let refused = {
            let doors = self.doors.lock().unwrap_or_else(PoisonError::into_inner);
            match doors.get(event.topic.as_deref().unwrap_or_default()) {
                Some(door) => match door.offer(event, door.reply(Some(tx))) {
                    Offered::Taken => return None,
                    Offered::Full(queued) => Ok((door.clone(), queued)),
                    Offered::Closed(queued) => Err((queued.event, queued.reply.into_tx())),
                },
                None => Err((event, Some(tx))),
            }
        };
        let this = self.clone();
        Some(Box::pin(async move {
            let (event, tx) = match refused {
                Ok((door, queued)) => return door.wait(queued).await,
                Err((event, Some(tx))) => (event, tx),
                Err((_, None)) => return,
            };
            // Not looked up yet, or its actor restarted since: ask for its current door.
            let topic = event.topic.as_deref().unwrap_or_default();
            match this.door_for(topic).await {
                Ok(door) => match door.offer(event, door.reply(Some(tx))) {
                    Offered::Taken => {}
                    Offered::Full(queued) => door.wait(queued).await,
                    // Restarted again meanwhile: the Reply answers Interrupted as it drops.
                    Offered::Closed(_) => {}
                },
                Err(nack) => {
                    let _ = tx.send(Err(nack));
                }
            }
        }))
    }

    /// Enqueues an event in call order and returns the receiver of its answer. Under the
    /// `backpressure` policy it first waits for room in the queue, so a caller that submits
    /// one event after another (a feed) is slowed by a slow broker and keeps its order.
    pub async fn submit(&self, mut event: ProduceEvent) -> oneshot::Receiver<Result<Ack, Nack>> {
        let (tx, answer) = oneshot::channel();
        match self.route(&mut event) {
            Ok(()) => {
                if let Some(slow) = self.offer(event, tx) {
                    slow.await;
                }
            }
            Err(nack) => {
                let _ = tx.send(Err(nack));
            }
        }
        answer
    }

    /// Like [`ProducerHandle::submit`], through `doors`: an event without a topic whose topic
    /// depends on its data type alone enters the door cached there (once looked up, no topic
    /// name formatted, no lock taken); the answer's receiver comes back at once when the queue
    /// took the event, else a future that first waits for room (or for the actor).
    // The waits yield the answer's receiver on purpose: the caller keeps it among the others.
    #[allow(clippy::async_yields_async)]
    pub fn submit_via(&self, doors: &mut Doors, mut event: ProduceEvent) -> Submitted {
        let (tx, answer) = oneshot::channel();
        let dt = match (&event.topic, event.payload.data_type()) {
            (None, Some(dt)) => dt,
            _ => return self.routed(event, tx, answer),
        };
        let slot = &mut doors.by_type[dt as usize];
        if slot.is_none() {
            // Once per data type (and again after the actor restarted): the topic's name,
            // and its door if it was looked up already.
            let Some(topic) = self.deps.routing.topic_of_type(dt) else {
                return self.routed(event, tx, answer);
            };
            let door = self
                .doors
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&topic)
                .cloned();
            match door {
                Some(door) => *slot = Some((topic, door)),
                None => {
                    event.topic = Some(topic);
                    return self.later(event, tx, answer);
                }
            }
        }
        let Some((topic, door)) = slot.as_ref() else {
            unreachable!("filled above")
        };
        match door.offer(event, door.reply(Some(tx))) {
            Offered::Taken => Ok(answer),
            Offered::Full(queued) => {
                let door = door.clone();
                Err(Box::pin(async move {
                    door.wait(queued).await;
                    answer
                }))
            }
            Offered::Closed(queued) => {
                // The actor restarted: its new door is looked up for this event, and cached
                // again by the next one.
                let topic = topic.clone();
                *slot = None;
                let mut event = queued.event;
                let Some(tx) = queued.reply.into_tx() else {
                    return Ok(answer);
                };
                event.topic = Some(topic);
                self.later(event, tx, answer)
            }
        }
    }

    /// Routes `event` (a typed Nack when it cannot be) and offers it through the shared doors.
    fn routed(
        &self,
        mut event: ProduceEvent,
        tx: oneshot::Sender<Result<Ack, Nack>>,
        answer: Answer,
    ) -> Submitted {
        match self.route(&mut event) {
            Ok(()) => self.later(event, tx, answer),
            Err(nack) => {
                let _ = tx.send(Err(nack));
                Ok(answer)
            }
        }
    }

    /// Offers a routed event through the shared doors (looking its actor up if need be).
    #[allow(clippy::async_yields_async)]
    fn later(
        &self,
        event: ProduceEvent,
        tx: oneshot::Sender<Result<Ack, Nack>>,
        answer: Answer,
    ) -> Submitted {
        match self.offer(event, tx) {
            None => Ok(answer),
            Some(slow) => Err(Box::pin(async move {
                slow.await;
                answer
            })),
        }
    }

    /// Produces events concurrently; answers in the same order.
    pub async fn produce_batch(&self, events: Vec<ProduceEvent>) -> Vec<Result<Ack, Nack>> {
        join_all(events.into_iter().map(|e| self.produce(e))).await
    }

    /// Stops every producer gracefully: pending events are delivered (or Nacked with
    /// `ShuttingDown` past the deadline); later events are Nacked.
    pub async fn shutdown(&self) {
        if self.supervisor.send(ShutdownAll).await.is_err() {
            tracing::warn!("supervisor already stopped");
        }
    }
}
