//! The observability endpoint: `/metrics` (Prometheus text), `/healthz` (alive) and `/readyz`
//! (broker and registry reachable, every feed connected or within its reconnect budget).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
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

/// What the endpoint reports on.
#[derive(Clone)]
pub struct Observed {
    /// The system's metrics.
    pub metrics: Arc<Metrics>,
    /// The config (broker and registry addresses, feed budgets).
    pub config: Config,
    /// Feeds: name, counters, reconnect budget.
    pub feeds: Vec<(String, Arc<FeedStats>, Duration)>,
}

/// One readiness check.
#[derive(Debug, Serialize)]
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
}

async fn broker_check(cfg: &Config) -> Check {
    let client_cfg = cfg.kafka.client_config();
    let result = tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = client_cfg.create().map_err(|e| e.to_string())?;
        c.fetch_metadata(None, Duration::from_secs(2))
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
            detail: e,
        },
        Err(e) => Check {
            ok: false,
            detail: e.to_string(),
        },
    }
}

async fn registry_check(cfg: &Config) -> Check {
    let url = format!("{}/subjects", cfg.schema_registry.url.trim_end_matches('/'));
    let mut req = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(2));
    if let Some(user) = &cfg.schema_registry.username {
        req = req.basic_auth(
            user,
            cfg.schema_registry.password.as_ref().map(|p| p.expose()),
        );
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
        Err(e) => Check {
            ok: false,
            detail: e.to_string(),
        },
    }
}

/// Runs every readiness check.
pub async fn readiness(o: &Observed) -> Readiness {
    let (broker, registry) = tokio::join!(broker_check(&o.config), registry_check(&o.config));
    let feeds: Vec<(String, Check)> = o
        .feeds
        .iter()
        .map(|(name, s, budget)| {
            let down_for = s.disconnected_for();
            let ok = s.connected.load(Ordering::Relaxed) || down_for < *budget;
            let detail = if s.connected.load(Ordering::Relaxed) {
                "connected".to_string()
            } else {
                format!("disconnected for {down_for:?} (budget {budget:?})")
            };
            (name.clone(), Check { ok, detail })
        })
        .collect();
    Readiness {
        ready: broker.ok && registry.ok && feeds.iter().all(|(_, c)| c.ok),
        broker,
        registry,
        feeds,
    }
}

async fn metrics(State(o): State<Arc<Observed>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        o.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(o): State<Arc<Observed>>) -> Response {
    let r = readiness(&o).await;
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(r)).into_response()
}

/// Serves the endpoint on `listen` until the process ends; returns the bound address.
pub async fn serve(listen: &str, observed: Observed) -> std::io::Result<SocketAddr> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(observed));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "http endpoint stopped");
        }
    });
    tracing::info!(%addr, "metrics and health on http://{addr}/metrics /healthz /readyz");
    Ok(addr)
}
