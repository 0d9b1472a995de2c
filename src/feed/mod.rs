//! Feed actors: one supervised actor per exchange connection. The connection loop is in
//! `session`, the order books in `books`.

pub mod books;
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
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FeedActor {
    /// A feed actor; start it under an actix `Supervisor`.
    pub fn new(
        cfg: FeedConfig,
        venue: Arc<dyn Venue>,
        producer: ProducerHandle,
        stats: Arc<FeedStats>,
    ) -> FeedActor {
        FeedActor {
            cfg,
            venue,
            producer,
            stats,
            stop: watch::channel(false).0,
            task: None,
        }
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
        );
        let stop = self.stop.subscribe();
        let me = ctx.address().downgrade();
        self.task = Some(actix::spawn(async move {
            feed.run(stop).await;
            // The loop only returns when asked to stop; anything else is a failure to restart.
            if let Some(addr) = me.upgrade() {
                addr.do_send(Ended);
            }
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

#[derive(Message)]
#[rtype(result = "()")]
struct Ended;

impl Handler<Ended> for FeedActor {
    type Result = ();

    fn handle(&mut self, _: Ended, ctx: &mut Context<Self>) {
        if !*self.stop.borrow() {
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
