//! The whole service: replay servers (when configured), producer actors, and one supervised
//! feed actor per exchange connection (a `[[feeds]]` entry with more streams than the venue
//! allows on one connection opens several) of the subscriptions this instance carries (all of
//! them, or its share under `[cluster]`); progress lines; graceful stop.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix::prelude::*;
use futures::future::join_all;

use crate::cluster;
use crate::cluster::group::Membership;
use crate::cluster::plan::{self, FeedPlan};
use crate::config::Config;
use crate::feed::{FeedActor, FeedStats, StopFeed};
use crate::redact::redact;
use crate::replay::{ReplayError, ReplayServer};
use crate::supervisor::{ProducerHandle, StartError};
use crate::venues;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Producers could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A replay server could not start.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The metrics endpoint could not listen.
    #[error("http endpoint on {0}: {1}")]
    Http(String, std::io::Error),
    /// A feed names an unknown venue (caught by config validation first).
    #[error("unknown venue {0:?}")]
    Venue(String),
    /// The Redis sink could not be built.
    #[error(transparent)]
    Redis(#[from] crate::sinks::redis::SinkError),
    /// A feed's proxy setting cannot be used (e.g. its credentials' variable is unset).
    #[error(transparent)]
    Proxy(#[from] crate::config::ConfigError),
    /// The `[cluster]` section cannot be used (e.g. the ordinal's variable is unset), or the
    /// consumer group of dynamic sharding could not be joined.
    #[error("cluster: {0}")]
    Cluster(String),
}

/// One running feed.
pub struct RunningFeed {
    /// `venue` and symbols, for logs.
    pub name: String,
    /// Its actor.
    pub addr: Addr<FeedActor>,
    /// Its counters.
    pub stats: Arc<FeedStats>,
    /// How long it may stay disconnected before `/readyz` fails.
    pub budget: Duration,
}

/// What feed actors share per venue, to start them at any time: the venue, its REST budget
/// (the venue's limit per IP) and its connection-rate budget (new connections per IP).
#[derive(Clone)]
struct Launcher {
    producer: ProducerHandle,
    venues: HashMap<String, Arc<dyn venues::Venue>>,
    /// One REST client per venue and egress (see [`egress`]).
    rest: HashMap<(String, Option<String>), crate::transport::RestClient>,
    connects: HashMap<String, Arc<crate::transport::ConnectBudget>>,
    threads: Arc<FeedThreads>,
    /// Named in every `FeedEvent` when the instance is one of many.
    instance: Option<Arc<str>>,
}

impl Launcher {
    fn new(
        config: &Config,
        producer: ProducerHandle,
        instance: Option<Arc<str>>,
    ) -> Result<Launcher, ServiceError> {
        let mut l = Launcher {
            instance,
            producer,
            venues: HashMap::new(),
            rest: HashMap::new(),
            connects: HashMap::new(),
            threads: Arc::new(FeedThreads::new(config.run.feed_threads())),
        };
        for f in &config.feeds {
            let venue: Arc<dyn venues::Venue> = match l.venues.get(&f.venue) {
                Some(v) => v.clone(),
                None => venues::by_name(&f.venue)
                    .ok_or_else(|| ServiceError::Venue(f.venue.clone()))?
                    .into(),
            };
            // One REST budget per venue and egress proxy (it is the venue's limit per IP),
            // shared by the feeds that use both.
            if let std::collections::hash_map::Entry::Vacant(e) =
                l.rest.entry((f.venue.clone(), egress(f)))
            {
                let proxy = f.proxy()?;
                let configured = config
                    .feeds
                    .iter()
                    .filter(|g| g.venue == f.venue)
                    .filter_map(|g| g.rest_weight_per_minute)
                    .min();
                e.insert(crate::feed::session::rest_client_via(
                    venue.as_ref(),
                    configured,
                    proxy,
                ));
            }
            // One connection-rate budget per venue (new connections per IP).
            l.connects
                .entry(f.venue.clone())
                .or_insert_with(|| Arc::new(crate::feed::session::connect_budget(venue.as_ref())));
            l.venues.insert(f.venue.clone(), venue);
        }
        Ok(l)
    }

    /// Starts one supervised feed actor (on the next feed thread, from any thread).
    fn start(&self, plan: FeedPlan) -> Result<RunningFeed, ServiceError> {
        let venue_name = plan.cfg.venue.clone();
        let missing = || ServiceError::Venue(venue_name.clone());
        let v = self.venues.get(&venue_name).ok_or_else(missing)?.clone();
        let h = self
            .rest
            .get(&(venue_name.clone(), egress(&plan.cfg)))
            .ok_or_else(missing)?
            .clone();
        let b = self.connects.get(&venue_name).ok_or_else(missing)?.clone();
        let stats = Arc::new(FeedStats::new());
        let (p, s, cfg, i) = (
            self.producer.clone(),
            stats.clone(),
            plan.cfg,
            self.instance.clone(),
        );
        let addr = actix::Supervisor::start_in_arbiter(&self.threads.next(), move |_| {
            FeedActor::new(cfg, v, p, s, h)
                .with_connect_budget(b)
                .with_instance(i)
        });
        Ok(RunningFeed {
            name: plan.name,
            addr,
            stats,
            budget: plan.budget,
        })
    }
}

/// The threads feed actors run on: arbiters of their own, taken in turn, or the arbiter that
/// started the service (the producers' thread) when there are none. Stopped when dropped.
struct FeedThreads {
    own: Vec<actix::Arbiter>,
    current: actix::ArbiterHandle,
    next: std::sync::atomic::AtomicUsize,
}

impl FeedThreads {
    fn new(n: usize) -> FeedThreads {
        if n > 0 {
            tracing::info!(threads = n, "feed actors run on threads of their own");
        }
        FeedThreads {
            own: (0..n).map(|_| actix::Arbiter::new()).collect(),
            current: actix::Arbiter::current(),
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Where the next feed actor starts.
    fn next(&self) -> actix::ArbiterHandle {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.own.get(i % self.own.len().max(1)) {
            Some(a) => a.handle(),
            None => self.current.clone(),
        }
    }
}

impl FeedThreads {
    /// Ends the threads of their own (their feed actors stopped first).
    fn stop(&self) {
        for a in &self.own {
            a.stop();
        }
    }
}

impl Drop for FeedThreads {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What tells the REST clients of a venue apart: feeds share one when they share the proxy, its
/// exceptions and credentials (`None`: direct).
fn egress(f: &crate::config::FeedConfig) -> Option<String> {
    f.proxy.as_ref().map(|_| {
        let (n, u, p) = (&f.no_proxy, &f.proxy_username_env, &f.proxy_password_env);
        format!("{:?}", (&f.proxy, n, u, p))
    })
}

/// The feeds of the shards this instance owns (dynamic sharding), started and stopped by the
/// group membership as shards are assigned and revoked.
struct ShardFeeds {
    launcher: Launcher,
    plans: BTreeMap<u32, Vec<FeedPlan>>,
    running: Mutex<BTreeMap<u32, Vec<RunningFeed>>>,
    status: Arc<cluster::Status>,
}

impl ShardFeeds {
    /// Visits every running feed.
    fn each(&self, mut f: impl FnMut(&RunningFeed)) {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.values().flatten().for_each(&mut f);
    }

    /// Stops every shard still running (after the membership has left the group).
    async fn stop_all(&self) {
        let all: Vec<RunningFeed> = {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            let shards: Vec<u32> = running.keys().copied().collect();
            shards.iter().for_each(|s| self.status.release(*s));
            std::mem::take(&mut *running)
                .into_values()
                .flatten()
                .collect()
        };
        join_all(all.iter().map(|f| f.addr.send(StopFeed))).await;
    }
}

impl cluster::ShardRunner for ShardFeeds {
    fn start(&self, shard: u32) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running.contains_key(&shard) {
            return;
        }
        let mut feeds = Vec::new();
        for plan in self.plans.get(&shard).into_iter().flatten() {
            match self.launcher.start(plan.clone()) {
                Ok(f) => feeds.push(f),
                Err(e) => {
                    tracing::error!(shard, feed = %plan.name, error = %e, "cluster: cannot start a feed")
                }
            }
        }
        tracing::info!(instance = %self.status.instance, shard, feeds = feeds.len(), "cluster: shard started");
        self.status.own(
            shard,
            feeds
                .iter()
                .map(|f| cluster::OwnedFeed {
                    name: f.name.clone(),
                    stats: f.stats.clone(),
                    budget: f.budget,
                })
                .collect(),
        );
        running.insert(shard, feeds);
    }

    fn stop(&self, shard: u32) {
        let feeds = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&shard);
        if let Some(feeds) = feeds {
            // Called on the membership's thread: the feeds drain on the service's arbiter.
            futures::executor::block_on(join_all(feeds.iter().map(|f| f.addr.send(StopFeed))));
            tracing::info!(instance = %self.status.instance, shard, feeds = feeds.len(), "cluster: shard stopped (everything read produced and answered)");
        }
    }
}

/// A running service.
pub struct Service {
    /// The producers.
    pub producer: ProducerHandle,
    /// The feeds started with the service (all of them, or this instance's share with static
    /// sharding; with dynamic sharding they start and stop with the shards, see `cluster`).
    pub feeds: Vec<RunningFeed>,
    /// The replay servers.
    pub replays: Vec<ReplayServer>,
    /// Where `/metrics`, `/healthz`, `/readyz`, `/status` are served, when enabled.
    pub http: Option<std::net::SocketAddr>,
    /// The Redis latest-value sink, when `redis.enabled`.
    pub redis: Option<Arc<crate::sinks::redis::RedisSink>>,
    /// This instance's name, sharding mode and owned shards.
    pub cluster: Arc<cluster::Status>,
    shards: Option<(Arc<ShardFeeds>, Membership)>,
    /// The feeds' threads, kept until the service is dropped.
    threads: Arc<FeedThreads>,
    config: Config,
}

/// The feeds of `config` that instance `instance` of `instances` carries (all of them when
/// `instances` is 1).
pub fn instance_feeds(
    config: &Config,
    instance: u32,
    instances: u32,
) -> Result<Vec<FeedPlan>, ServiceError> {
    let subs = plan::subscriptions(config).map_err(|e| ServiceError::Venue(e.0))?;
    let mine = subs
        .iter()
        .filter(|s| instances <= 1 || plan::owner(&s.key(), instances) == instance);
    plan::feeds(config, mine).map_err(|e| ServiceError::Venue(e.0))
}

impl Service {
    /// Starts everything inside the current actix system.
    pub async fn start(config: Config) -> Result<Service, ServiceError> {
        let mode = config
            .cluster
            .mode()
            .map_err(|e| ServiceError::Cluster(e.to_string()))?;
        let mut replays = Vec::new();
        for r in &config.replay.servers {
            replays.push(crate::venues::replay_server(r.clone()).await?);
        }
        // The Redis sink is fed beside the producer streams through their tap, never in series.
        let metrics = crate::metrics::Metrics::new();
        let redis = if config.redis.enabled {
            let sink =
                crate::sinks::redis::RedisSink::start(config.redis.clone(), metrics.clone())?;
            Some(Arc::new(sink))
        } else {
            None
        };
        let tap = redis.as_ref().map(|s| s.tap());
        let producer = ProducerHandle::start_with_tap(config.clone(), metrics, tap)?;
        let status = Arc::new(cluster::Status::new(
            config.cluster.instance_id(&mode),
            mode.clone(),
            producer.metrics(),
        ));
        let named = (mode != cluster::Mode::Single).then(|| Arc::from(status.instance.as_str()));
        let launcher = Launcher::new(&config, producer.clone(), named)?;
        let mut feeds = Vec::new();
        let mut shards = None;
        match &mode {
            cluster::Mode::Single => {
                for p in instance_feeds(&config, 0, 1)? {
                    feeds.push(launcher.start(p)?);
                }
            }
            cluster::Mode::Static {
                instance,
                instances,
            } => {
                let mine = instance_feeds(&config, *instance, *instances)?;
                tracing::info!(instance = %status.instance, ordinal = instance, instances, feeds = mine.len(), "cluster: static sharding");
                for p in mine {
                    feeds.push(launcher.start(p)?);
                }
            }
            cluster::Mode::Dynamic {
                group,
                shards: count,
            } => {
                let subs = plan::subscriptions(&config).map_err(|e| ServiceError::Venue(e.0))?;
                let mut plans = BTreeMap::new();
                for shard in 0..*count {
                    let of_shard = subs
                        .iter()
                        .filter(|s| plan::owner(&s.key(), *count) == shard);
                    let p = plan::feeds(&config, of_shard).map_err(|e| ServiceError::Venue(e.0))?;
                    plans.insert(shard, p);
                }
                let runner = Arc::new(ShardFeeds {
                    launcher: launcher.clone(),
                    plans,
                    running: Mutex::new(BTreeMap::new()),
                    status: status.clone(),
                });
                let topic = config
                    .cluster
                    .control_topic(&config.producer.topic_prefix, group);
                let membership = Membership::start(
                    &config.kafka,
                    &config.cluster,
                    group,
                    &topic,
                    *count,
                    runner.clone(),
                    status.clone(),
                )
                .await
                .map_err(|e| ServiceError::Cluster(redact(&e.to_string())))?;
                shards = Some((runner, membership));
            }
        }
        let http = if config.http.enabled {
            let observed = crate::http::Observed {
                metrics: producer.metrics(),
                config: config.clone(),
                feeds: feeds
                    .iter()
                    .map(|f| (f.name.clone(), f.stats.clone(), f.budget))
                    .collect(),
                sinks: redis
                    .iter()
                    .map(|s| {
                        let s: Arc<dyn crate::http::SinkReadiness> = s.clone();
                        ("redis".to_string(), s)
                    })
                    .collect(),
                cluster: Some(status.clone()),
            };
            Some(
                crate::http::serve(&config.http.listen, observed)
                    .await
                    .map_err(|e| ServiceError::Http(config.http.listen.clone(), e))?,
            )
        } else {
            None
        };
        tracing::info!(
            instance = %status.instance,
            feeds = feeds.len(),
            replays = replays.len(),
            "tickflow running"
        );
        Ok(Service {
            producer,
            feeds,
            replays,
            http,
            redis,
            cluster: status,
            shards,
            threads: launcher.threads.clone(),
            config,
        })
    }

    /// One progress line per feed.
    pub fn log_progress(&self) {
        self.feeds.iter().for_each(Self::log_feed);
        if let Some((shards, _)) = &self.shards {
            shards.each(Self::log_feed);
        }
        let m = self.producer.metrics();
        tracing::info!(
            produced = m.sample("tickflow_produced_total"),
            nacks = m.sample("tickflow_produce_errors_total"),
            "progress (all topics)"
        );
    }

    fn log_feed(f: &RunningFeed) {
        {
            let s = &f.stats;
            tracing::info!(
                feed = %f.name,
                connected = s.connected.load(Ordering::Relaxed),
                frames = s.frames.load(Ordering::Relaxed),
                acked = s.acked.load(Ordering::Relaxed),
                nacked = s.nacked.load(Ordering::Relaxed),
                syncs = s.syncs.load(Ordering::Relaxed),
                gaps = s.gaps.load(Ordering::Relaxed),
                errors = s.errors.load(Ordering::Relaxed),
                reconnects = s.reconnects.load(Ordering::Relaxed),
                "progress"
            );
        }
    }

    /// Runs until `stop` resolves or, with `run.exit_after_replay`, the replay has been played
    /// and drained; logs progress meanwhile; then stops gracefully.
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()>) {
        let every = self
            .config
            .run
            .progress_interval
            .max(Duration::from_millis(100));
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        let exit_after_replay = self.config.run.exit_after_replay && !self.replays.is_empty();
        let replay_done = async {
            if exit_after_replay {
                join_all(self.replays.iter().map(ReplayServer::finished)).await;
                tracing::info!("replay finished; draining");
                tokio::time::sleep(self.config.run.drain_after_replay).await;
            } else {
                futures::future::pending::<()>().await;
            }
        };
        tokio::pin!(stop);
        tokio::pin!(replay_done);
        loop {
            tokio::select! {
                _ = tick.tick() => self.log_progress(),
                () = &mut stop => break,
                () = &mut replay_done => break,
            }
        }
        self.shutdown().await;
        self.log_progress();
    }

    /// Stops feeds first (what they read is produced and answered; with dynamic sharding, the
    /// shards' feeds, then the group is left), then the producers.
    pub async fn shutdown(&self) {
        tracing::info!("stopping feeds");
        if let Some((shards, membership)) = &self.shards {
            membership.shutdown().await;
            shards.stop_all().await;
        }
        join_all(self.feeds.iter().map(|f| f.addr.send(StopFeed))).await;
        self.threads.stop();
        tracing::info!("stopping producers");
        self.producer.shutdown().await;
        if let Some(redis) = &self.redis {
            tracing::info!("stopping the redis sink");
            redis.shutdown().await;
        }
    }
}
