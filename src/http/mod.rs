//! The observability endpoint: `/metrics` (Prometheus text), `/healthz` (alive), `/readyz`
//! (broker and registry reachable, every feed connected or within its reconnect budget) and
//! `/status` (this instance's name, sharding mode, owned shards and running feeds).
//! `/readyz` reuses one Kafka and one HTTP client and checks broker and registry at most once
//! per [`READY_CHECK_PERIOD`], however many requests come (see [`ReadyState`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;

use crate::config::Config;
use crate::feed::FeedStats;
use crate::metrics::Metrics;
use crate::redact::redact;

/// What the endpoint reports on.
#[derive(Clone)]
pub struct Observed {
    /// The system's metrics.
    pub metrics: Arc<Metrics>,
    /// The config (broker and registry addresses, feed budgets).
    pub config: Config,
    /// Feeds: name, counters, reconnect budget.
    pub feeds: Vec<(String, Arc<FeedStats>, Duration)>,
    /// Stores fed beside Kafka (the Redis sink): name and state.
    pub sinks: Vec<(String, Arc<dyn SinkReadiness>)>,
    /// This instance in a cluster: its shards and their feeds (which count as feeds above).
    pub cluster: Option<Arc<crate::cluster::Status>>,
}

/// One feed in `/status`.
#[derive(Debug, Serialize)]
pub struct FeedStatus {
    /// Its name (`venue[/group][symbols]`).
    pub name: String,
    /// The shard it belongs to (dynamic sharding only).
    pub shard: Option<u32>,
    /// Whether it is connected now.
    pub connected: bool,
}

/// The `/status` body.
#[derive(Debug, Serialize)]
pub struct ClusterStatus {
    /// This instance's name (as in its `FeedEvent`s).
    pub instance: String,
    /// `single`, `static` or `dynamic`.
    pub mode: &'static str,
    /// Static sharding: this instance's ordinal and the number of instances.
    pub ordinal: Option<u32>,
    /// Static sharding: how many instances.
    pub instances: Option<u32>,
    /// Dynamic sharding: the consumer group.
    pub group: Option<String>,
    /// Dynamic sharding: the group's rebalance protocol as last seen (`cooperative`: only
    /// moved shards stop; `eager`: every shard stops at each rebalance).
    pub rebalance_protocol: Option<&'static str>,
    /// Dynamic sharding: the shards owned now, ascending.
    pub shards: Vec<u32>,
    /// Every running feed.
    pub feeds: Vec<FeedStatus>,
}

impl Observed {
    /// The feeds now: those started with the service, then those of the owned shards.
    fn all_feeds(&self) -> Vec<(Option<u32>, String, Arc<FeedStats>, Duration)> {
        let mut out: Vec<_> = self
            .feeds
            .iter()
            .map(|(n, s, b)| (None, n.clone(), s.clone(), *b))
            .collect();
        if let Some(c) = &self.cluster {
            for (shard, feeds) in c.owned() {
                for f in feeds {
                    out.push((Some(shard), f.name, f.stats, f.budget));
                }
            }
        }
        out
    }

    /// The `/status` body now.
    pub fn status(&self) -> ClusterStatus {
        use crate::cluster::Mode;
        let (instance, mode) = match &self.cluster {
            Some(c) => (c.instance.clone(), c.mode.clone()),
            None => (String::new(), Mode::Single),
        };
        let (name, ordinal, instances, group) = match mode {
            Mode::Single => ("single", None, None, None),
            Mode::Static {
                instance,
                instances,
            } => ("static", Some(instance), Some(instances), None),
            Mode::Dynamic { group, .. } => ("dynamic", None, None, Some(group)),
        };
        ClusterStatus {
            instance,
            mode: name,
            ordinal,
            instances,
            group,
            rebalance_protocol: self.cluster.as_ref().and_then(|c| c.protocol()),
            shards: self
                .cluster
                .as_ref()
                .map(|c| c.owned().into_keys().collect())
                .unwrap_or_default(),
            feeds: self
                .all_feeds()
                .into_iter()
                .map(|(shard, name, s, _)| FeedStatus {
                    name,
                    shard,
                    connected: s.connected.load(Ordering::Relaxed),
                })
                .collect(),
        }
    }
}

/// A store fed beside Kafka whose state `/readyz` reports. The store's own writer keeps the
/// state current (no I/O here). A failing sink is always in the body; it makes the service not
/// ready only when `required` (a latest-value cache being down does not stop the Kafka path).
pub trait SinkReadiness: Send + Sync {
    /// Whether it can write now, and why not.
    fn check(&self) -> Check;
    /// Whether a failing check makes `/readyz` fail.
    fn required(&self) -> bool;
}

/// One readiness check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Whether it passed.
    pub ok: bool,
    /// Why, in a few words.
    pub detail: String,
}

/// The `/readyz` body.
#[derive(Debug, Serialize)]
pub struct Readiness {
    /// All checks passed.
    pub ready: bool,
    /// Broker metadata request.
    pub broker: Check,
    /// Registry `GET /subjects`.
    pub registry: Check,
    /// One entry per feed.
    pub feeds: Vec<(String, Check)>,
    /// One entry per sink (a sink that is not required says so in its detail).
    pub sinks: Vec<(String, Check)>,
    /// Which run of the broker and registry checks this answer carries (1 for the first run;
    /// answers that share a run carry the same number).
    pub check_run: u64,
}

/// How long one run of the dependency checks (broker, registry) answers `/readyz`: requests
/// within it share that run, so the endpoint cannot be used to load the process, the broker or
/// the registry.
pub const READY_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// How long one dependency check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The broker and registry checks of one run, shared by the requests it answers.
#[derive(Debug)]
struct DepChecks {
    /// Which run this was (1 for the first).
    run: u64,
    broker: Check,
    registry: Check,
}

/// `/readyz`'s state: the clients (created once, reused by every check) and the last check run.
///
/// A request is answered by a dependency check that started after the request arrived, so an
/// answer never predates its request (a broker that just went down is reported down). Checks
/// start at most once per period: requests that arrive while one runs, or within the period
/// after the last one started, wait for the next run and share it.
pub struct ReadyState {
    observed: Observed,
    period: Duration,
    /// The Kafka client of the broker check, created on first use.
    kafka: std::sync::OnceLock<Result<Arc<BaseConsumer>, String>>,
    http: reqwest::Client,
    /// The last run's start and result; the lock also makes one run at a time.
    last: tokio::sync::Mutex<Option<(tokio::time::Instant, Arc<DepChecks>)>>,
    runs: AtomicU64,
}

impl ReadyState {
    /// The readiness state of `observed`, running the dependency checks at most once per
    /// `period`.
    pub fn new(observed: Observed, period: Duration) -> ReadyState {
        let http = reqwest::Client::builder()
            .timeout(CHECK_TIMEOUT)
            .build()
            .unwrap_or_else(|e| {
                tracing::warn!(error = %redact(&e.without_url().to_string()), "readiness HTTP client: using defaults");
                reqwest::Client::new()
            });
        ReadyState {
            observed,
            period,
            kafka: std::sync::OnceLock::new(),
            http,
            last: tokio::sync::Mutex::new(None),
            runs: AtomicU64::new(0),
        }
    }

    /// How many times the dependency checks have run (each run checks broker and registry once).
    pub fn checks_run(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    fn kafka(&self) -> Result<Arc<BaseConsumer>, String> {
        self.kafka
            .get_or_init(|| {
                self.observed
                    .config
                    .kafka
                    .client_config()
                    .create::<BaseConsumer>()
                    .map(Arc::new)
                    .map_err(|e| redact(&e.to_string()))
            })
            .clone()
    }

    async fn broker_check(&self) -> Check {
        let consumer = match self.kafka() {
            Ok(c) => c,
            Err(detail) => return Check { ok: false, detail },
        };
        let result = tokio::task::spawn_blocking(move || {
            consumer
                .fetch_metadata(None, CHECK_TIMEOUT)
                .map(|m| m.brokers().len())
                .map_err(|e| e.to_string())
        })
        .await;
        match result {
            Ok(Ok(n)) => Check {
                ok: n > 0,
                detail: format!("{n} broker(s)"),
            },
            Ok(Err(e)) => Check {
                ok: false,
                detail: redact(&e),
            },
            Err(e) => Check {
                ok: false,
                detail: redact(&e.to_string()),
            },
        }
    }

    async fn registry_check(&self) -> Check {
        let cfg = &self.observed.config.schema_registry;
        let url = format!("{}/subjects", cfg.url.trim_end_matches('/'));
        let mut req = self.http.get(&url);
        if let Some(user) = &cfg.username {
            req = req.basic_auth(user, cfg.password.as_ref().map(|p| p.expose()));
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => Check {
                ok: true,
                detail: "reachable".into(),
            },
            Ok(r) => Check {
                ok: false,
                detail: format!("HTTP {}", r.status()),
            },
            // The error without its URL; anything URL-like left in its text is redacted too.
            Err(e) => Check {
                ok: false,
                detail: redact(&e.without_url().to_string()),
            },
        }
    }

    /// The dependency checks for a request that arrived at `arrived`: a run that started at or
    /// after it, or a new one (no sooner than one period after the last run started).
    async fn dependencies(&self, arrived: tokio::time::Instant) -> Arc<DepChecks> {
        let mut last = self.last.lock().await;
        if let Some((started, checks)) = last.as_ref() {
            if *started >= arrived {
                return checks.clone();
            }
            tokio::time::sleep_until(*started + self.period).await;
        }
        let started = tokio::time::Instant::now();
        let run = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        let (broker, registry) = tokio::join!(self.broker_check(), self.registry_check());
        let checks = Arc::new(DepChecks {
            run,
            broker,
            registry,
        });
        *last = Some((started, checks.clone()));
        checks
    }

    /// The readiness now: dependency checks as above, feeds as they are at this moment.
    pub async fn readiness(&self) -> Readiness {
        let deps = self.dependencies(tokio::time::Instant::now()).await;
        let feeds: Vec<(String, Check)> = self
            .observed
            .all_feeds()
            .into_iter()
            .map(|(_, name, s, budget)| {
                let down_for = s.disconnected_for();
                let ok = s.connected.load(Ordering::Relaxed) || down_for < budget;
                let detail = if s.connected.load(Ordering::Relaxed) {
                    "connected".to_string()
                } else {
                    format!("disconnected for {down_for:?} (budget {budget:?})")
                };
                (name, Check { ok, detail })
            })
            .collect();
        let mut sinks_ok = true;
        let sinks: Vec<(String, Check)> = self
            .observed
            .sinks
            .iter()
            .map(|(name, s)| {
                let mut c = s.check();
                if !c.ok && !s.required() {
                    c.detail.push_str(" (not required)");
                }
                sinks_ok &= c.ok || !s.required();
                (name.clone(), c)
            })
            .collect();
        Readiness {
            ready: deps.broker.ok
                && deps.registry.ok
                && feeds.iter().all(|(_, c)| c.ok)
                && sinks_ok,
            broker: deps.broker.clone(),
            registry: deps.registry.clone(),
            feeds,
            sinks,
            check_run: deps.run,
        }
    }
}

/// Runs every readiness check once, now (no sharing with other callers).
pub async fn readiness(o: &Observed) -> Readiness {
    ReadyState::new(o.clone(), Duration::ZERO).readiness().await
}

async fn metrics(State(o): State<Arc<ReadyState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        o.observed.metrics.render(),
    )
        .into_response()
}

async fn status(State(o): State<Arc<ReadyState>>) -> Response {
    Json(o.observed.status()).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(o): State<Arc<ReadyState>>) -> Response {
    let r = o.readiness().await;
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(r)).into_response()
}

/// Serves the endpoint on `listen` until the process ends; returns the bound address.
pub async fn serve(listen: &str, observed: Observed) -> std::io::Result<SocketAddr> {
    serve_state(
        listen,
        Arc::new(ReadyState::new(observed, READY_CHECK_PERIOD)),
    )
    .await
}

/// [`serve`] with a given readiness state (tests keep a handle on it to count check runs).
pub async fn serve_state(listen: &str, state: Arc<ReadyState>) -> std::io::Result<SocketAddr> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "http endpoint stopped");
        }
    });
    tracing::info!(%addr, "metrics and health on http://{addr}/metrics /healthz /readyz /status");
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU16;

    use super::*;

    /// A registry stand-in: `GET /subjects` answers with the status in `status`, and counts.
    async fn registry_mock(status: Arc<AtomicU16>, hits: Arc<AtomicU64>) -> SocketAddr {
        let app = Router::new().route(
            "/subjects",
            get(move || {
                let (status, hits) = (status.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, Ordering::Relaxed);
                    let code = StatusCode::from_u16(status.load(Ordering::Relaxed))
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    (code, "[]")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    /// A port nothing listens on: the broker is down.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn observed(registry_url: String) -> Observed {
        let mut config = Config::default();
        config.kafka.bootstrap_servers = format!("127.0.0.1:{}", closed_port());
        config.schema_registry.url = registry_url;
        Observed {
            metrics: Metrics::new(),
            config,
            feeds: vec![],
            sinks: vec![],
            cluster: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_readyz_requests_share_one_check_run_per_period() {
        let (status, hits) = (Arc::new(AtomicU16::new(200)), Arc::new(AtomicU64::new(0)));
        let reg = registry_mock(status, hits.clone()).await;
        let state = Arc::new(ReadyState::new(
            observed(format!("http://{reg}")),
            Duration::from_millis(500),
        ));
        let addr = serve_state("127.0.0.1:0", state.clone()).await.unwrap();
        let client = reqwest::Client::new();
        let begun = std::time::Instant::now();
        // 100 requests over about a second, all in flight together.
        let requests = (0..100u64).map(|i| {
            let client = client.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(i * 10)).await;
                let r = client
                    .get(format!("http://{addr}/readyz"))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: serde_json::Value = r.json().await.unwrap();
                (status, body)
            }
        });
        let answers = futures::future::join_all(requests).await;
        let elapsed = begun.elapsed();
        let runs = state.checks_run();
        // At most one run per started period (plus the one running when the requests ended).
        let bound = elapsed.as_millis() as u64 / 500 + 2;
        assert!(runs >= 1 && runs <= bound, "{runs} runs in {elapsed:?}");
        assert_eq!(
            hits.load(Ordering::Relaxed),
            runs,
            "one registry GET per run"
        );
        let mut seen: Vec<u64> = answers
            .iter()
            .map(|(_, b)| b["check_run"].as_u64().unwrap())
            .collect();
        seen.dedup();
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        // Still the right answer: the broker is down, the registry up.
        for (status, body) in &answers {
            assert_eq!(*status, 503, "{body}");
            assert_eq!(body["ready"], false);
            assert_eq!(body["broker"]["ok"], false, "{body}");
            assert_eq!(body["registry"]["ok"], true, "{body}");
        }
    }

    #[tokio::test]
    async fn an_answer_never_predates_its_request() {
        let (status, hits) = (Arc::new(AtomicU16::new(200)), Arc::new(AtomicU64::new(0)));
        let reg = registry_mock(status.clone(), hits).await;
        let state = ReadyState::new(
            observed(format!("http://{reg}")),
            Duration::from_millis(300),
        );
        let first = state.readiness().await;
        assert!(first.registry.ok, "{first:?}");
        // The registry goes down right after an answer: the next request does not get the
        // previous run's result, it waits for a new run.
        status.store(503, Ordering::Relaxed);
        let second = state.readiness().await;
        assert_eq!(second.check_run, first.check_run + 1);
        assert!(!second.registry.ok);
        assert_eq!(second.registry.detail, "HTTP 503 Service Unavailable");
        status.store(200, Ordering::Relaxed);
        let third = state.readiness().await;
        assert!(third.registry.ok, "{third:?}");
        assert_eq!(state.checks_run(), 3);
    }

    #[tokio::test]
    async fn a_registry_error_in_readyz_names_no_credentials_or_query() {
        let url = format!("http://erin:pw999@127.0.0.1:{}/?key=tok271", closed_port());
        let r = readiness(&observed(url)).await;
        assert!(!r.registry.ok);
        let body = serde_json::to_string(&r).unwrap();
        for secret in ["erin", "pw999", "key=", "tok271"] {
            assert!(!body.contains(secret), "{secret} in {body}");
        }
    }
}
