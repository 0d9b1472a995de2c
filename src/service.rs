//! The whole service: replay servers (when configured), producer actors, and one supervised
//! feed actor per exchange connection (a `[[feeds]]` entry with more streams than the venue
//! allows on one connection opens several); progress lines; graceful stop.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::future::join_all;

use crate::config::Config;
use crate::feed::{FeedActor, FeedStats, StopFeed};
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
}

/// One running feed.
pub struct RunningFeed {
    /// `venue` and symbols, for logs.
    pub name: String,
    /// Its actor.
    pub addr: Addr<FeedActor>,
    /// Its counters.
    pub stats: Arc<FeedStats>,
}

/// A running service.
pub struct Service {
    /// The producers.
    pub producer: ProducerHandle,
    /// The feeds.
    pub feeds: Vec<RunningFeed>,
    /// The replay servers.
    pub replays: Vec<ReplayServer>,
    /// Where `/metrics`, `/healthz`, `/readyz` are served, when enabled.
    pub http: Option<std::net::SocketAddr>,
    /// The Redis latest-value sink, when `redis.enabled`.
    pub redis: Option<Arc<crate::sinks::redis::RedisSink>>,
    config: Config,
}

impl Service {
    /// Starts everything inside the current actix system.
    pub async fn start(config: Config) -> Result<Service, ServiceError> {
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
        let mut feeds = Vec::new();
        let mut budgets = Vec::new();
        // One REST budget per venue and egress proxy (it is the venue's limit per IP), shared
        // by the feeds that use both.
        let mut rest: std::collections::HashMap<
            (&str, Option<String>),
            crate::transport::RestClient,
        > = std::collections::HashMap::new();
        // One connection-rate budget per venue too (new connections per IP), shared likewise.
        let mut connects: std::collections::HashMap<&str, Arc<crate::transport::ConnectBudget>> =
            std::collections::HashMap::new();
        for f in &config.feeds {
            let venue: Arc<dyn venues::Venue> = venues::by_name(&f.venue)
                .ok_or_else(|| ServiceError::Venue(f.venue.clone()))?
                .into();
            // Channels a venue serves on different endpoints go to different connections
            // (`Venue::connection_group`), and one connection carries at most the venue's
            // streams: more symbols open more connections, each its own supervised feed actor.
            // Channels polled over REST ride with the first group that streams something (a
            // group of polls alone would be a connection with nothing to subscribe).
            let mut groups: Vec<(&str, Vec<venues::Channel>)> = Vec::new();
            let (streamed, polled): (Vec<venues::Channel>, Vec<venues::Channel>) = f
                .channels
                .iter()
                .copied()
                .partition(|c| venue.delivery(*c) == venues::Delivery::Stream);
            for c in streamed {
                let g = venue.connection_group(c);
                match groups.iter_mut().find(|(name, _)| *name == g) {
                    Some((_, cs)) => cs.push(c),
                    None => groups.push((g, vec![c])),
                }
            }
            match groups.first_mut() {
                Some((_, cs)) => cs.extend(polled),
                None => groups.push(("", polled)),
            }
            let proxy = f.proxy()?;
            // Feeds share a client when they share the proxy, its exceptions and credentials.
            let egress = f.proxy.as_ref().map(|_| {
                let (n, u, p) = (&f.no_proxy, &f.proxy_username_env, &f.proxy_password_env);
                format!("{:?}", (&f.proxy, n, u, p))
            });
            let http = rest
                .entry((f.venue.as_str(), egress))
                .or_insert_with(|| {
                    let configured = config
                        .feeds
                        .iter()
                        .filter(|g| g.venue == f.venue)
                        .filter_map(|g| g.rest_weight_per_minute)
                        .min();
                    crate::feed::session::rest_client_via(venue.as_ref(), configured, proxy)
                })
                .clone();
            let budget = connects
                .entry(f.venue.as_str())
                .or_insert_with(|| Arc::new(crate::feed::session::connect_budget(venue.as_ref())))
                .clone();
            for (group, channels) in groups {
                let streams_per_symbol = channels
                    .iter()
                    .filter(|c| venue.delivery(**c) == venues::Delivery::Stream)
                    .count()
                    .max(1);
                let per_connection =
                    (venue.limits().max_streams_per_connection / streams_per_symbol).max(1);
                // Symbols a venue serves on different endpoints (Bybit's categories) go to
                // different connections too (`Venue::symbol_group`), in config order.
                let mut by_symbol: Vec<(&str, Vec<String>)> = Vec::new();
                for s in &f.symbols {
                    let g = venue.symbol_group(s);
                    match by_symbol.iter_mut().find(|(name, _)| *name == g) {
                        Some((_, ss)) => ss.push(s.clone()),
                        None => by_symbol.push((g, vec![s.clone()])),
                    }
                }
                let chunks = by_symbol
                    .iter()
                    .flat_map(|(sg, ss)| ss.chunks(per_connection).map(move |c| (*sg, c.to_vec())));
                for (symbol_group, symbols) in chunks {
                    let mut cfg = f.clone();
                    cfg.symbols = symbols;
                    cfg.channels = channels.clone();
                    let stats = Arc::new(FeedStats::new());
                    let label = [group, symbol_group]
                        .iter()
                        .filter(|g| !g.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join("/");
                    let name = if label.is_empty() {
                        format!("{}[{}]", f.venue, cfg.symbols.join(","))
                    } else {
                        format!("{}/{label}[{}]", f.venue, cfg.symbols.join(","))
                    };
                    let (v, p, s, h, b) = (
                        venue.clone(),
                        producer.clone(),
                        stats.clone(),
                        http.clone(),
                        budget.clone(),
                    );
                    let addr = actix::Supervisor::start(move |_| {
                        FeedActor::new(cfg, v, p, s, h).with_connect_budget(b)
                    });
                    budgets.push(f.stale_after + 2 * f.reconnect_max);
                    feeds.push(RunningFeed { name, addr, stats });
                }
            }
        }
        let http = if config.http.enabled {
            let observed = crate::http::Observed {
                metrics: producer.metrics(),
                config: config.clone(),
                feeds: feeds
                    .iter()
                    .zip(&budgets)
                    .map(|(f, budget)| (f.name.clone(), f.stats.clone(), *budget))
                    .collect(),
                sinks: redis
                    .iter()
                    .map(|s| {
                        let s: Arc<dyn crate::http::SinkReadiness> = s.clone();
                        ("redis".to_string(), s)
                    })
                    .collect(),
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
            config,
        })
    }

    /// One progress line per feed.
    pub fn log_progress(&self) {
        for f in &self.feeds {
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
        let m = self.producer.metrics();
        tracing::info!(
            produced = m.sample("tickflow_produced_total"),
            nacks = m.sample("tickflow_produce_errors_total"),
            "progress (all topics)"
        );
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

    /// Stops feeds first (what they read is produced and answered), then the producers.
    pub async fn shutdown(&self) {
        tracing::info!("stopping feeds");
        join_all(self.feeds.iter().map(|f| f.addr.send(StopFeed))).await;
        tracing::info!("stopping producers");
        self.producer.shutdown().await;
        if let Some(redis) = &self.redis {
            tracing::info!("stopping the redis sink");
            redis.shutdown().await;
        }
    }
}
