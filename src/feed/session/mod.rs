//! One feed's connection loop, split by job:
//!
//! | file | job |
//! |---|---|
//! | `connect.rs` | the venue's instrument list (paged, cached across connections, never waiting on a REST ban), the WebSocket connect with a timeout, both abandoned at once on `StopFeed` |
//! | `frames.rs` | the frame loop of one connection: read, parse, books, heartbeats, stall and rotation timers, all in one `select!` that never waits on anything else |
//! | `resync.rs` | every book snapshot asked for (REST or in band) has a deadline; failures and expiries are asked again with backoff and jitter, announced, and recycle the connection after 5 in a row |
//! | `outbox.rs` | messages to the venue (subscribes, resubscribes) paced at its message rate and hourly quota |
//! | `pollers.rs` | open interest polled over REST beside the loop; per-stream liveness of channels that tick by design |
//! | `audit.rs` | the periodic REST book audit (venues without sequence or checksum): each synced book compared with the venue's REST book in turn, a level wrong in two audits in a row with no update between resyncs it |
//! | `delivery.rs` | records to the producers: a bounded number awaiting their Ack, a submission that waits for queue room as one branch of the loop, loss counting and the recovery announcement |
//!
//! Around them, [`Feed::run`] reconnects with exponential backoff and jitter; every connection
//! attempt first waits for the venue's connection-rate budget ([`ConnectBudget`], shared by
//! the venue's feeds).

mod audit;
mod connect;
mod delivery;
mod frames;
mod outbox;
mod pollers;
mod resync;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use thiserror::Error;
use tokio::sync::watch;

use super::books::{feed_event, BookKeeper};
use super::outage::Outage;
use super::FeedStats;
use crate::config::FeedConfig;
use crate::feed::latency::Latency;
use crate::metrics::{FeedErrorLabels, FeedLabels, Metrics};
use crate::producer::ProduceEvent;
use crate::schema::v2beta1::feed_event::Kind;
use crate::schema::Normalized;
use crate::supervisor::ProducerHandle;
use crate::transport::{ConnectBudget, Proxy, ProxyError, RestClient};
use crate::venues::{Delivery, ParseError, Subscription, Venue};

pub use audit::{Difference, Verdict};
pub use connect::{connect_budget, rest_client, rest_client_via};

/// Why a session ended.
#[derive(Debug, Error)]
pub enum SessionError {
    /// The connection could not be opened.
    #[error("connect {url}: {source}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// The feed's proxy failed (unreachable, refused the tunnel or the credentials), or its
    /// setting could not be used; the text names the proxy, never its credentials.
    #[error("connect {url}: {source}")]
    Proxy {
        /// The URL.
        url: String,
        /// Why.
        source: ProxyError,
    },
    /// The connection did not open in time.
    #[error("connect {url}: no answer within {after:?}")]
    ConnectTimeout {
        /// The URL.
        url: String,
        /// The bound.
        after: Duration,
    },
    /// Reading or writing failed.
    #[error("websocket: {0}")]
    Socket(Box<tokio_tungstenite::tungstenite::Error>),
    /// No frame for the configured time.
    #[error("stale: no frame for {0:?}")]
    Stale(Duration),
    /// A stream that ticks by design went silent and the venue cannot resubscribe it alone.
    #[error("stale stream {stream}: nothing for {after:?}")]
    StaleStream {
        /// Channel and symbol.
        stream: String,
        /// How long it was silent.
        after: Duration,
    },
    /// The venue closed the connection.
    #[error("closed by the venue")]
    Closed,
    /// The venue refused a request (e.g. a bad subscription).
    #[error("venue refused: {0}")]
    Venue(ParseError),
    /// Subscriptions were not confirmed in time.
    #[error("{0} subscription(s) not confirmed within {1:?}")]
    SubscribeTimeout(usize, Duration),
    /// A book's snapshot failed or did not come too many times in a row.
    #[error("the book of {symbol} could not be synced after {failures} attempts; recycling the connection")]
    Resync {
        /// Normalized symbol.
        symbol: String,
        /// Consecutive failures.
        failures: u32,
    },
}

impl SessionError {
    /// Terminal errors are configuration problems a reconnect cannot fix; they are still
    /// retried with the longest backoff so the feed recovers if the venue changes its mind.
    pub fn is_terminal(&self) -> bool {
        matches!(self, SessionError::Venue(_))
    }
}

/// How a session ended without error.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// Asked to stop.
    Stopped,
    /// Rotated before the venue's forced disconnect.
    Rotated,
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Everything one feed needs; lives across sessions.
pub struct Feed {
    /// Its config.
    pub cfg: FeedConfig,
    /// The venue implementation.
    pub venue: Arc<dyn Venue>,
    /// Where records go.
    pub producer: ProducerHandle,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Counters for progress and readiness.
    pub stats: Arc<FeedStats>,
    labels: FeedLabels,
    /// The venue's REST budget, shared by every connection to the venue.
    http: RestClient,
    /// The (normalized, venue symbol) pairs of the last instrument list that answered, used
    /// when the venue's REST is unavailable (a ban must not hold back a reconnect).
    known: Mutex<Option<Vec<(String, String)>>>,
    /// The venue's connection-rate budget, shared by every feed of the venue.
    connects: Arc<ConnectBudget>,
    /// How often each book is audited against the venue's REST book (`None`: never).
    audit_every: Option<Duration>,
    /// The instance named in every `FeedEvent` (`[cluster]`; `None` when running alone).
    instance: Option<Arc<str>>,
    /// The proxy the WebSocket goes through (`Ok(None)`: direct); why it cannot be used,
    /// when its setting fails (then no connection is opened, never one direct).
    proxy: Result<Option<Proxy>, ProxyError>,
    /// Venue time → receipt → Ack, per channel.
    latency: Latency,
}

impl Feed {
    /// A feed for `cfg` (validated); REST calls go through `http`, the venue's budget.
    pub fn new(
        cfg: FeedConfig,
        venue: Arc<dyn Venue>,
        producer: ProducerHandle,
        stats: Arc<FeedStats>,
        http: RestClient,
    ) -> Feed {
        let metrics = producer.metrics();
        let labels = FeedLabels {
            exchange: venue.exchange().to_string(),
        };
        let connects = Arc::new(connect_budget(venue.as_ref()));
        // The feed's setting (0 = off) over the venue's default.
        let audit_every = match cfg.book_audit_every {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => venue.book_audit_every(),
        };
        let proxy = cfg.proxy().map_err(|e| ProxyError::Credentials {
            proxy: "of the feed".into(),
            reason: e.to_string(),
        });
        Feed {
            latency: Latency::new(metrics.clone(), venue.exchange()),
            proxy,
            cfg,
            venue,
            producer,
            metrics,
            stats,
            labels,
            http,
            known: Mutex::new(None),
            connects,
            audit_every,
            instance: None,
        }
    }

    /// Names `instance` in every `FeedEvent` this feed emits.
    pub fn with_instance(mut self, instance: Option<Arc<str>>) -> Feed {
        self.instance = instance;
        self
    }

    /// Connection attempts wait for `budget` (the venue's, shared with its other feeds)
    /// instead of a budget of this feed's own.
    pub fn with_connect_budget(mut self, budget: Arc<ConnectBudget>) -> Feed {
        self.connects = budget;
        self
    }

    /// Audits each book against the venue's REST book every `every` (`None`: never) instead
    /// of the venue's default ([`Venue::book_audit_every`]).
    pub fn with_book_audit_every(mut self, every: Option<Duration>) -> Feed {
        self.audit_every = every;
        self
    }

    fn error(&self, kind: &str) {
        self.metrics
            .feed_errors
            .get_or_create(&FeedErrorLabels {
                exchange: self.labels.exchange.clone(),
                kind: kind.to_string(),
            })
            .inc();
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs sessions until `stop` turns true, reconnecting with backoff and jitter.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        let backoff = || {
            ExponentialBuilder::new()
                .with_min_delay(self.cfg.reconnect_min)
                .with_max_delay(self.cfg.reconnect_max)
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut delays = backoff();
        let mut books = BookKeeper::new(
            self.venue.exchange(),
            self.venue.sequencer(self.cfg.snapshot_limit),
            self.cfg.book_snapshot_every,
            self.cfg.depth_limit,
        )
        .with_buffer_budget(self.cfg.book_buffer_bytes);
        // When the previous connection ended and why: announced once the next one is up.
        let mut lost: Option<(i64, String)> = None;
        let mut outage = Outage::new(self.cfg.shed_after, now_us());
        loop {
            let started = Instant::now();
            let result = self
                .session(&mut books, &mut stop, &mut lost, &mut outage)
                .await;
            self.metrics
                .feed_connected
                .get_or_create(&self.labels)
                .set(0);
            self.stats.set_connected(false);
            match result {
                Ok(SessionEnd::Stopped) => return,
                Ok(SessionEnd::Rotated) => {
                    tracing::info!(exchange = %self.labels.exchange, "rotating the connection before the venue's forced disconnect");
                    self.metrics
                        .feed_reconnects
                        .get_or_create(&self.labels)
                        .inc();
                    lost.get_or_insert((
                        now_us(),
                        "rotated before the venue's forced disconnect".into(),
                    ));
                    delays = backoff();
                    continue;
                }
                Err(e) => {
                    if started.elapsed() > Duration::from_secs(30) {
                        delays = backoff();
                    }
                    let delay = if e.is_terminal() {
                        self.cfg.reconnect_max
                    } else {
                        delays.next().unwrap_or(self.cfg.reconnect_max)
                    };
                    self.metrics
                        .feed_reconnects
                        .get_or_create(&self.labels)
                        .inc();
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(exchange = %self.labels.exchange, error = %e, ?delay, "feed disconnected; reconnecting");
                    let why = &mut lost.get_or_insert_with(|| (now_us(), e.to_string())).1;
                    // A proxy failing the reconnects after the loss is named in the
                    // announcement too (once).
                    if let SessionError::Proxy { source, .. } = &e {
                        if !why.contains("proxy") {
                            why.push_str(&format!("; reconnecting failed: {source}"));
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    }

    /// The subscriptions of this feed for the resolved (normalized, venue symbol) pairs;
    /// channels the venue serves over REST (open interest on Binance) are polled, not
    /// subscribed.
    fn subscriptions(&self, pairs: &[(String, String)]) -> Vec<Subscription> {
        pairs
            .iter()
            .flat_map(|(n, v)| {
                self.cfg
                    .channels
                    .iter()
                    .filter(|c| self.venue.delivery(**c) == Delivery::Stream)
                    .map(move |c| Subscription {
                        channel: *c,
                        symbol: n.clone(),
                        venue_symbol: v.clone(),
                    })
            })
            .collect()
    }

    fn feed_event(&self, symbol: &str, kind: Kind, reason: String, action: &str) -> ProduceEvent {
        ProduceEvent::typed(Normalized::FeedEvent(feed_event(
            self.venue.exchange(),
            symbol,
            kind,
            reason,
            action,
            now_us(),
        )))
    }

    /// Largest frame taken: the configured cap, else the venue's.
    fn frame_cap(&self) -> usize {
        self.cfg
            .max_frame_bytes
            .unwrap_or(self.venue.limits().max_frame_bytes)
    }

    fn rest_base(&self) -> String {
        self.cfg
            .rest_url
            .clone()
            .or_else(|| self.venue.default_rest_url().map(str::to_string))
            .unwrap_or_default()
    }
}

/// Aborts a spawned helper task when the session that owns it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
