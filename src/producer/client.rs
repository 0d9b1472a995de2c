//! The client fast path: how an event enters a producer actor. A caller (`ProducerHandle`, or
//! the actor's own `ProduceEvent` handler) puts it through the actor's current [`Door`]
//! straight into the bounded queue, applying the overflow policy there (ADR 0002); the event
//! carries its [`Reply`], which answers it exactly once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::event::{Ack, Nack, NackReason, ProduceEvent};
use super::ProducerDeps;
use crate::config::OverflowPolicy;

/// The answer slot of one event. It is answered exactly once: by [`Reply::send`], or, if it is
/// dropped unanswered (the stream was aborted by a restart or a shutdown deadline, or a
/// delivery report found its stream gone), with
/// `Nack(ShuttingDown)` while the actor closes and `Nack(Interrupted)` otherwise.
pub(crate) struct Reply {
    tx: Option<oneshot::Sender<Result<Ack, Nack>>>,
    closing: Arc<AtomicBool>,
}

impl Reply {
    /// Wraps the channel a caller awaits (`None`: nobody awaits this answer).
    pub fn new(tx: Option<oneshot::Sender<Result<Ack, Nack>>>, closing: Arc<AtomicBool>) -> Reply {
        Reply { tx, closing }
    }

    /// Answers the event (a caller that went away has nothing left to hear).
    pub fn send(mut self, answer: Result<Ack, Nack>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(answer);
        }
    }
}

impl Reply {
    /// Takes the channel back out unanswered (to answer it through another door).
    pub fn into_tx(mut self) -> Option<oneshot::Sender<Result<Ack, Nack>>> {
        self.tx.take()
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let reason = if self.closing.load(Ordering::Acquire) {
                NackReason::ShuttingDown
            } else {
                NackReason::Interrupted
            };
            let _ = tx.send(Err(Nack::new(reason, true)));
        }
    }
}

/// An accepted event waiting in the queue, with the slot its answer goes to.
pub(crate) struct QueuedEvent {
    pub event: ProduceEvent,
    pub accepted: Instant,
    pub reply: Reply,
}

/// What the queue carries: boxed, so the ~200 bytes are written once and then only a
/// pointer moves (into the queue, out of it, into the stream's send step).
pub(crate) type Queued = Box<QueuedEvent>;

/// The entrance of one producer actor: the queue's sender (none while closed) and what the
/// overflow policy needs. Shared with `ProducerHandle`s, which put events straight into the
/// queue (see ADR 0002), and with in-flight `ProduceEvent` answers.
pub(crate) struct Door {
    /// Set when the actor replaced this door (restart, shutdown).
    retired: AtomicBool,
    tx: Option<mpsc::Sender<Queued>>,
    closing: Arc<AtomicBool>,
    /// Senders waiting for room; while any waits, newcomers queue behind them (FIFO).
    waiting: Arc<AtomicUsize>,
    metric_topic: String,
    deps: Arc<ProducerDeps>,
}

/// What [`Door::offer`] did with an event.
pub(crate) enum Offered {
    /// Queued, or answered at once.
    Taken,
    /// The queue is full (or others wait for room) and the policy is `backpressure`: wait
    /// with [`Door::wait`].
    Full(Queued),
    /// This door's queue is gone (its actor restarted): ask the actor for its current door.
    Closed(Queued),
}

impl Door {
    /// A door onto `tx` (closed when `None`); `closing` and `waiting` are the actor's.
    pub(crate) fn new(
        tx: Option<mpsc::Sender<Queued>>,
        closing: Arc<AtomicBool>,
        waiting: Arc<AtomicUsize>,
        metric_topic: String,
        deps: Arc<ProducerDeps>,
    ) -> Door {
        Door {
            retired: AtomicBool::new(false),
            tx,
            closing,
            waiting,
            metric_topic,
            deps,
        }
    }

    /// Retires this door: handles holding it ask the actor for the new one.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// An answer slot for one event entering through this door.
    pub(crate) fn reply(&self, tx: Option<oneshot::Sender<Result<Ack, Nack>>>) -> Reply {
        Reply::new(tx, self.closing.clone())
    }

    fn answer_now(&self, reply: Reply, nack: Nack) {
        let m = &self.deps.metrics;
        m.count_nack(&self.metric_topic, nack.reason.kind());
        reply.send(Err(nack));
    }

    /// Applies the overflow policy without waiting: the event is queued, or answered here
    /// (closing: `ShuttingDown`; full under `nack`: `QueueFull`), or handed back.
    pub(crate) fn offer(&self, event: ProduceEvent, reply: Reply) -> Offered {
        let queued = Box::new(QueuedEvent {
            event,
            accepted: Instant::now(),
            reply,
        });
        if self.closing.load(Ordering::Acquire) {
            self.answer_now(queued.reply, Nack::new(NackReason::ShuttingDown, true));
            return Offered::Taken;
        }
        let Some(tx) = self
            .tx
            .as_ref()
            .filter(|_| !self.retired.load(Ordering::Acquire))
        else {
            return Offered::Closed(queued);
        };
        let policy = self.deps.config.producer.overflow;
        // While senders wait for room, newcomers queue behind them so order is kept.
        if policy == OverflowPolicy::Backpressure && self.waiting.load(Ordering::Acquire) > 0 {
            return Offered::Full(queued);
        }
        match tx.try_send(queued) {
            Ok(()) => Offered::Taken,
            Err(mpsc::error::TrySendError::Closed(queued)) => Offered::Closed(queued),
            Err(mpsc::error::TrySendError::Full(queued)) => match policy {
                OverflowPolicy::Backpressure => Offered::Full(queued),
                OverflowPolicy::Nack => {
                    self.answer_now(queued.reply, Nack::new(NackReason::QueueFull, true));
                    Offered::Taken
                }
            },
        }
    }

    /// Waits for room in the queue (FIFO with other waiters): the caller is slowed, nothing
    /// is dropped. If the queue closes meanwhile, the event's `Reply` answers it as it drops.
    pub(crate) async fn wait(&self, queued: Queued) {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let Some(tx) = &self.tx else { return };
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        let _ = tx.send(queued).await;
    }

    /// The actor's own way in (a `ProduceEvent` message): like [`Door::offer`],
    /// waiting for room in a task of its own.
    pub(crate) fn accept(self: &Arc<Self>, event: ProduceEvent, reply: Reply) {
        match self.offer(event, reply) {
            Offered::Taken => {}
            Offered::Full(queued) => {
                let door = self.clone();
                actix::spawn(async move { door.wait(queued).await });
            }
            Offered::Closed(queued) => {
                self.answer_now(queued.reply, Nack::new(NackReason::Interrupted, true))
            }
        }
    }
}

/// Asks a producer actor for its current [`Door`] (after a restart, the old one is closed).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Arc<Door>")]
pub(crate) struct GetDoor;
