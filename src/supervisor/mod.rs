//! The supervisor: builds the shared dependencies from the config, spawns one supervised
//! `ProducerActor` per topic on first use, and stops them all gracefully. `ProducerHandle` is
//! what callers (feeds, the smoke harness, embedders) use to produce.

pub mod service;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use actix::prelude::*;
use futures::future::join_all;
use thiserror::Error;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::producer::kafka::SharedProducer;
use crate::producer::routing::Routing;
use crate::producer::{
    Ack, Nack, NackReason, ProduceEvent, ProducerActor, ProducerDeps, Shutdown, Submit,
};
use crate::schema::registry::{Registry, RegistryError};
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

/// A cheap, cloneable handle to a running producer system.
#[derive(Clone)]
pub struct ProducerHandle {
    supervisor: Addr<Supervisor>,
    deps: Arc<ProducerDeps>,
    cache: Arc<Mutex<HashMap<String, Addr<ProducerActor>>>>,
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
        let deps = Arc::new(ProducerDeps {
            shared: SharedProducer::new(config.kafka.client_config())?,
            registry: Registry::new(&config.schema_registry)?,
            routing: Routing::new(&config.producer),
            metrics,
            config,
        });
        let supervisor = Supervisor {
            deps: deps.clone(),
            producers: HashMap::new(),
        }
        .start();
        Ok(ProducerHandle {
            supervisor,
            deps,
            cache: Arc::default(),
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
        if let Some(a) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
        {
            return Ok(a.clone());
        }
        let addr = self
            .supervisor
            .send(GetProducer(topic.to_string()))
            .await
            .map_err(|_| Nack::new(NackReason::ShuttingDown, true))?;
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_string(), addr.clone());
        Ok(addr)
    }

    /// Produces one event; the answer is its Ack or its Nack.
    ///
    /// The event is handed to its producer actor before this returns (as a [`Submit`] whose
    /// answer the actor's stream sends back), so the returned future holds only the answer's
    /// receiver: cheap to keep thousands in flight. When the actor's mailbox is full, or the
    /// topic's actor is not known yet, the future waits for room instead (backpressure).
    pub fn produce(
        &self,
        mut event: ProduceEvent,
    ) -> impl Future<Output = Result<Ack, Nack>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let slow = match self.deps.routing.route(&mut event) {
            Err(nack) => {
                let _ = reply.send(Err(nack));
                None
            }
            Ok(()) => {
                // Hand the event over under the cache's lock, through the cached address
                // itself (no clone of it per event).
                let tried = {
                    let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                    match cache.get(event.topic.as_deref().unwrap_or_default()) {
                        Some(addr) => match addr.try_send(Submit { event, reply }) {
                            Ok(()) => Ok(None),
                            Err(SendError::Full(msg)) => Ok(Some((Some(addr.clone()), msg))),
                            Err(SendError::Closed(msg)) => Err(msg),
                        },
                        None => Ok(Some((None, Submit { event, reply }))),
                    }
                };
                match tried {
                    Ok(None) => None,
                    Ok(Some((addr, msg))) => Some(self.clone().send_waiting(addr, msg)),
                    Err(msg) => {
                        self.forget(msg.event.topic.as_deref().unwrap_or_default());
                        Some(self.clone().send_waiting(None, msg))
                    }
                }
            }
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

    fn forget(&self, topic: &str) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(topic);
    }

    /// The slow way in: looks the actor up (spawning it on first use) and waits for room in
    /// its mailbox. Boxed, so that the common path's future stays small.
    fn send_waiting(
        self,
        addr: Option<Addr<ProducerActor>>,
        msg: Submit,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let addr = match addr {
                Some(a) => a,
                None => {
                    let topic = msg.event.topic.clone().unwrap_or_default();
                    match self.producer_for(&topic).await {
                        Ok(a) => a,
                        Err(nack) => {
                            let _ = msg.reply.send(Err(nack));
                            return;
                        }
                    }
                }
            };
            // If the actor is gone, the Submit (and its reply) drops: the caller hears
            // Interrupted.
            let _ = addr.send(msg).await;
        })
    }

    /// Enqueues an event in call order and returns the receiver of its answer. Callers bound
    /// how many answers they await (feeds use this for ordered, backpressured production).
    pub async fn submit(&self, mut event: ProduceEvent) -> oneshot::Receiver<Result<Ack, Nack>> {
        let (reply, answer) = oneshot::channel();
        let addr = match self.deps.routing.route(&mut event) {
            Ok(()) => match self
                .producer_for(event.topic.as_deref().unwrap_or_default())
                .await
            {
                Ok(addr) => addr,
                Err(nack) => {
                    let _ = reply.send(Err(nack));
                    return answer;
                }
            },
            Err(nack) => {
                let _ = reply.send(Err(nack));
                return answer;
            }
        };
        // do_send enqueues in call order regardless of the mailbox size; the caller bounds its
        // outstanding answers. If the actor is gone the reply is dropped (an error at the caller).
        addr.do_send(Submit { event, reply });
        answer
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
