//! The Redis latest-value sink: the latest record per (data type, exchange, symbol) in Redis,
//! as the very bytes Kafka acknowledged (framed once, shared), fed beside the producer streams,
//! never in series with them.
//!
//! Steps, one per file: `config` (the `[redis]` section), `pending` (the bounded coalescing
//! map), `tap` (what the producer streams call: key + insert, never waits), `writer` (swap,
//! pipelined writes, backoff, readiness). This module supervises the writer: a writer task that
//! panics is started again (counted in `tickflow_redis_sink_restarts_total`); values it had
//! taken but not written are lost then, values still in the shared map are not.

pub mod config;
pub mod pending;
pub mod tap;
pub mod writer;

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::http::{Check, SinkReadiness};
use crate::metrics::Metrics;
use crate::producer::tap::RecordTap;
use config::RedisSinkConfig;
use tap::{RedisTap, Shared};
use writer::{Status, Writer};

/// The sink could not be built (its URL is not one the client can use).
#[derive(Debug, thiserror::Error)]
#[error("redis sink: {0}")]
pub struct SinkError(String);

/// A running Redis sink.
pub struct RedisSink {
    shared: Arc<Shared>,
    status: Arc<Status>,
    required: bool,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for RedisSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSink")
            .field("ready", &self.status.ready())
            .finish_non_exhaustive()
    }
}

impl RedisSink {
    /// Starts the supervised writer (inside a tokio runtime); it connects lazily, so Redis
    /// may be down at start: the sink is then not ready and keeps retrying.
    pub fn start(cfg: RedisSinkConfig, metrics: Arc<Metrics>) -> Result<RedisSink, SinkError> {
        let client = writer::client(&cfg)
            .map_err(|e| SinkError(crate::redact::redact(&format!("{:?}", e.kind()))))?;
        let shared = Arc::new(Shared::bounded(
            &cfg.key_prefix,
            cfg.kept(),
            cfg.max_pending_keys,
            cfg.max_pending_bytes,
            metrics,
        ));
        let status = Arc::new(Status::new());
        let (stop, stop_rx) = watch::channel(false);
        let required = cfg.required;
        let task = tokio::spawn(supervise(
            cfg,
            shared.clone(),
            status.clone(),
            client,
            stop_rx,
        ));
        Ok(RedisSink {
            shared,
            status,
            required,
            stop,
            task: Mutex::new(Some(task)),
        })
    }

    /// The tap to install in the producer (`ProducerHandle::start_with_tap`).
    pub fn tap(&self) -> Arc<dyn RecordTap> {
        Arc::new(RedisTap::new(self.shared.clone()))
    }

    /// Whether the last ping or write succeeded.
    pub fn ready(&self) -> bool {
        self.status.ready()
    }

    /// Stops the writer after one last attempt at what waits.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

impl SinkReadiness for RedisSink {
    fn check(&self) -> Check {
        let mut detail = self.status.detail();
        let dropped = self.shared.dropped_count();
        if dropped > 0 {
            detail.push_str(&format!(
                "; {dropped} latest value(s) dropped (pending map full: redis.max_pending_keys), \
                 Redis may hold older values for them"
            ));
        }
        Check {
            ok: self.status.ready(),
            detail,
        }
    }

    fn required(&self) -> bool {
        self.required
    }
}

/// Runs writer generations until asked to stop: one that panics is replaced.
async fn supervise(
    cfg: RedisSinkConfig,
    shared: Arc<Shared>,
    status: Arc<Status>,
    client: ::redis::Client,
    stop: watch::Receiver<bool>,
) {
    let mut generation = 0u64;
    loop {
        generation += 1;
        let writer = Writer::new(cfg.clone(), shared.clone(), status.clone(), client.clone());
        match tokio::spawn(writer.run(stop.clone())).await {
            Ok(()) => return,
            Err(e) if e.is_panic() => {
                shared.metrics.redis_sink_restarts.inc();
                shared.metrics.redis_ready.set(0);
                status.set(false, "writer restarted after a panic".into());
                tracing::error!(generation, "redis sink writer panicked; starting it again");
                tokio::time::sleep(cfg.backoff_min).await;
            }
            // Cancelled: the runtime is going away.
            Err(_) => return,
        }
    }
}
