//! Feed actors: one supervised actor per exchange connection. The connection loop is in
//! `session`, the order books in `books`.

pub mod books;
pub mod latency;
pub mod outage;
pub mod session;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::watch;

use crate::config::FeedConfig;
use crate::supervisor::ProducerHandle;
use crate::venues::Venue;
use session::Feed;

/// Counters of one feed, for progress lines and readiness.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Frames received.
    pub frames: AtomicU64,
    /// Records acknowledged by Kafka.
    pub acked: AtomicU64,
    /// Records nacked.
    pub nacked: AtomicU64,
    /// Records lost (nacked, or shed while Kafka took nothing).
    pub lost: AtomicU64,
    /// Whether the feed sheds load now (Kafka took nothing for `shed_after_ms`).
    pub shedding: AtomicBool,
    /// Unusable frames.
    pub errors: AtomicU64,
    /// Book gaps.
    pub gaps: AtomicU64,
    /// Book (re)syncs.
    pub syncs: AtomicU64,
    /// Reconnects.
    pub reconnects: AtomicU64,
    /// Currently connected.
    pub connected: AtomicBool,
    /// When the feed last lost (or had not yet made) its connection, ms since the epoch.
    pub disconnected_since_ms: AtomicU64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl FeedStats {
    /// Counters of a feed that has not connected yet.
    pub fn new() -> FeedStats {
        let s = FeedStats::default();
        s.disconnected_since_ms.store(now_ms(), Ordering::Relaxed);
        s
    }

    /// Records a connection change.
    pub fn set_connected(&self, connected: bool) {
        if self.connected.swap(connected, Ordering::Relaxed) && !connected {
            self.disconnected_since_ms
                .store(now_ms(), Ordering::Relaxed);
        }
    }

    /// How long the feed has been without a connection (zero when connected).
    pub fn disconnected_for(&self) -> std::time::Duration {
        if self.connected.load(Ordering::Relaxed) {
            return std::time::Duration::ZERO;
        }
        let since = self.disconnected_since_ms.load(Ordering::Relaxed);
        std::time::Duration::from_millis(now_ms().saturating_sub(since))
    }
}

/// Stops the feed; answers once everything it read has been produced and answered.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct StopFeed;

/// The actor of one exchange connection.
pub struct FeedActor {
    cfg: FeedConfig,
    venue: Arc<dyn Venue>,
    producer: ProducerHandle,
    /// Shared with whoever reports progress.
    pub stats: Arc<FeedStats>,
    http: crate::transport::RestClient,
    /// The venue's connection-rate budget (shared with its other feeds when given).
    connects: Arc<crate::transport::ConnectBudget>,
    /// The book audit period when it is not the venue's default.
    audit_every: Option<Option<std::time::Duration>>,
    /// The instance named in its `FeedEvent`s (`[cluster]`).
    instance: Option<Arc<str>>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Which start of the actor the running task belongs to.
    generation: u64,
}

impl FeedActor {
    /// A feed actor; start it under an actix `Supervisor`.
    pub fn new(
        cfg: FeedConfig,
        venue: Arc<dyn Venue>,
        producer: ProducerHandle,
        stats: Arc<FeedStats>,
        http: crate::transport::RestClient,
    ) -> FeedActor {
        let connects = Arc::new(session::connect_budget(venue.as_ref()));
        FeedActor {
            cfg,
            venue,
            producer,
            stats,
            http,
            connects,
            audit_every: None,
            instance: None,
            stop: watch::channel(false).0,
            task: None,
            generation: 0,
        }
    }

    /// Connection attempts wait for `budget`, the venue's connection-rate budget shared by
    /// its feeds (default: a budget of this feed's own from the venue's limits).
    pub fn with_connect_budget(mut self, budget: Arc<crate::transport::ConnectBudget>) -> Self {
        self.connects = budget;
        self
    }

    /// Names `instance` in every `FeedEvent` the feed emits (an instance of a cluster).
    pub fn with_instance(mut self, instance: Option<Arc<str>>) -> Self {
        self.instance = instance;
        self
    }

    /// Audits each book against the venue's REST book every `every` (`None`: never) instead
    /// of the venue's default (`Venue::book_audit_every`).
    pub fn with_book_audit_every(mut self, every: Option<std::time::Duration>) -> Self {
        self.audit_every = Some(every);
        self
    }
}

impl Actor for FeedActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if *self.stop.borrow() {
            return;
        }
        let feed = Feed::new(
            self.cfg.clone(),
            self.venue.clone(),
            self.producer.clone(),
            self.stats.clone(),
            self.http.clone(),
        )
        .with_connect_budget(self.connects.clone())
        .with_instance(self.instance.clone());
        let feed = match self.audit_every {
            Some(every) => feed.with_book_audit_every(every),
            None => feed,
        };
        let stop = self.stop.subscribe();
        self.generation += 1;
        let guard = EndGuard {
            me: ctx.address().downgrade(),
            stats: self.stats.clone(),
            generation: self.generation,
        };
        self.task = Some(actix::spawn(async move {
            // The loop only returns when asked to stop; anything else (a panic unwinding
            // through it included) drops the guard, which tells the actor to restart.
            let _guard = guard;
            feed.run(stop).await;
        }));
    }
}

impl Supervised for FeedActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        tracing::warn!(venue = %self.cfg.venue, "feed actor restarting");
    }
}

/// The feed task of one generation ended.
#[derive(Message)]
#[rtype(result = "()")]
struct Ended(u64);

/// Dropped when the feed task ends, however it ends: the feed is marked disconnected (so
/// `/readyz` says so) and its actor is told, so the supervisor restarts it.
struct EndGuard {
    me: actix::WeakAddr<FeedActor>,
    stats: Arc<FeedStats>,
    generation: u64,
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.stats.set_connected(false);
        if let Some(addr) = self.me.upgrade() {
            addr.do_send(Ended(self.generation));
        }
    }
}

impl Handler<Ended> for FeedActor {
    type Result = ();

    fn handle(&mut self, Ended(generation): Ended, ctx: &mut Context<Self>) {
        // A task aborted by a restart reports too: only the current one counts.
        if generation == self.generation && !*self.stop.borrow() {
            tracing::error!(venue = %self.cfg.venue, "feed task ended unexpectedly; restarting the feed");
            ctx.stop();
        }
    }
}

impl Handler<StopFeed> for FeedActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopFeed, _ctx: &mut Context<Self>) -> Self::Result {
        self.stop.send_replace(true);
        let task = self.task.take();
        Box::pin(async move {
            if let Some(t) = task {
                let _ = t.await;
            }
        })
    }
}
