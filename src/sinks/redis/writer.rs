//! The writer: takes the pending map in one swap, writes `SET key value PX ttl` (and `PUBLISH`)
//! pipelined through one `ConnectionManager`, and on an error keeps what it could not write
//! (newer values arriving meanwhile replace it) and retries with exponential backoff and jitter,
//! forever. It keeps the sink's readiness and counts written values and failed attempts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, IntoConnectionInfo, RedisError};
use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::watch;

use super::config::RedisSinkConfig;
use super::pending::Pending;
use super::tap::Shared;
use crate::redact::redact;

/// Whether the sink can write to Redis, and why not.
#[derive(Debug)]
pub struct Status {
    ready: AtomicBool,
    detail: Mutex<String>,
}

impl Status {
    /// Not ready until the first successful ping or write.
    pub fn new() -> Status {
        Status {
            ready: AtomicBool::new(false),
            detail: Mutex::new("not connected yet".into()),
        }
    }

    /// The last ping or write succeeded.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// What the last ping or write said (an error without credentials).
    pub fn detail(&self) -> String {
        self.detail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set(&self, ready: bool, detail: String) {
        *self.detail.lock().unwrap_or_else(PoisonError::into_inner) = detail;
        self.ready.store(ready, Ordering::Relaxed);
    }
}

impl Default for Status {
    fn default() -> Self {
        Status::new()
    }
}

/// The Redis client of the sink's config (URL, then username and password from the config).
pub fn client(cfg: &RedisSinkConfig) -> Result<Client, RedisError> {
    let mut info = cfg.url.as_str().into_connection_info()?;
    let mut settings = info.redis_settings().clone();
    if let Some(user) = &cfg.username {
        settings = settings.set_username(user);
    }
    if let Some(pw) = &cfg.password {
        settings = settings.set_password(pw.expose());
    }
    info = info.set_redis_settings(settings);
    Client::open(info)
}

/// A failure, as `/readyz` and the logs show it: no URL, no credentials.
fn describe(e: &RedisError) -> String {
    redact(&format!("{:?}: {}", e.kind(), e.detail().unwrap_or("")))
}

/// The writing loop of one sink generation.
pub struct Writer {
    cfg: RedisSinkConfig,
    shared: Arc<Shared>,
    status: Arc<Status>,
    client: Client,
    conn: Option<ConnectionManager>,
    /// Taken from the pending map and not written yet (kept across failed attempts).
    retained: Pending,
}

impl Writer {
    /// A writer of `shared`'s values; connects lazily.
    pub fn new(
        cfg: RedisSinkConfig,
        shared: Arc<Shared>,
        status: Arc<Status>,
        client: Client,
    ) -> Writer {
        let retained = Pending::bounded(cfg.max_pending_keys, cfg.max_pending_bytes);
        Writer {
            cfg,
            shared,
            status,
            client,
            conn: None,
            retained,
        }
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::default()
            .with_min_delay(self.cfg.backoff_min)
            .with_max_delay(self.cfg.backoff_max)
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// The connection manager, created (lazily, without connecting) on first use.
    fn connection(&mut self) -> Result<ConnectionManager, RedisError> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        // One attempt per request: the retrying (with backoff and jitter) is this writer's.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.cfg.timeout))
            .set_response_timeout(Some(self.cfg.timeout))
            .set_number_of_retries(0)
            .set_min_delay(self.cfg.backoff_min)
            .set_max_delay(self.cfg.backoff_max);
        let c = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        self.conn = Some(c.clone());
        Ok(c)
    }

    /// A request bounded by the configured timeout (twice: connect, then answer).
    async fn bounded<T>(
        &self,
        request: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisError> {
        match tokio::time::timeout(self.cfg.timeout * 2, request).await {
            Ok(r) => r,
            Err(_) => Err(RedisError::from((::redis::ErrorKind::Io, "timed out"))),
        }
    }

    async fn ping(&mut self) {
        let result = match self.connection() {
            Ok(mut c) => {
                let ping = ::redis::cmd("PING");
                self.bounded(ping.query_async::<String>(&mut c)).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => self.set_up(),
            Err(e) => self.set_down(&e),
        }
    }

    fn set_up(&self) {
        if !self.status.ready() {
            tracing::info!("redis sink: connected");
        }
        self.status.set(true, "connected".into());
        self.shared.metrics.redis_ready.set(1);
    }

    fn set_down(&self, e: &RedisError) {
        let detail = describe(e);
        if self.status.ready() {
            tracing::warn!(error = %detail, "redis sink: Redis unreachable; retrying");
        }
        self.status.set(false, detail);
        self.shared.metrics.redis_ready.set(0);
    }

    /// Moves what waits in the shared map into the retained set (newer values win).
    fn gather(&mut self) {
        let newer = self.shared.take();
        let (coalesced, dropped) = self.retained.absorb(newer);
        let m = &self.shared.metrics;
        m.redis_coalesced.inc_by(coalesced);
        self.shared.dropped("(a key the writer had kept)", dropped);
        m.redis_pending.set(self.retained.len() as i64);
    }

    fn channel(&self, key: &str) -> String {
        let rest = key.get(self.cfg.key_prefix.len() + 1..).unwrap_or(key);
        format!("{}:{rest}", self.cfg.channel_prefix)
    }

    /// Writes every retained value, one pipeline per `max_batch`; stops at the first error
    /// (what was not confirmed stays retained).
    async fn write_all(&mut self) -> Result<(), RedisError> {
        let ttl = u64::try_from(self.cfg.ttl.as_millis()).unwrap_or(u64::MAX);
        while !self.retained.is_empty() {
            let batch = self.retained.batch(self.cfg.max_batch);
            let mut pipe = ::redis::pipe();
            for (k, v) in &batch {
                pipe.cmd("SET")
                    .arg(k)
                    .arg(v.as_ref())
                    .arg("PX")
                    .arg(ttl)
                    .ignore();
                if self.cfg.publish {
                    pipe.cmd("PUBLISH")
                        .arg(self.channel(k))
                        .arg(v.as_ref())
                        .ignore();
                }
            }
            let mut conn = self.connection()?;
            self.bounded(pipe.query_async::<()>(&mut conn)).await?;
            for (k, v) in &batch {
                self.retained.remove_written(k, v);
            }
            let m = &self.shared.metrics;
            m.redis_written.inc_by(batch.len() as u64);
            m.redis_pending.set(self.retained.len() as i64);
        }
        Ok(())
    }

    /// Runs until `stop` turns true (or its sender is gone); then writes what waits, once.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        self.ping().await;
        let mut backoff = self.backoff();
        loop {
            if *stop.borrow() {
                break;
            }
            if self.retained.is_empty() {
                tokio::select! {
                    () = self.shared.wake.notified() => {
                        // Let a burst coalesce before writing it.
                        tokio::select! {
                            () = tokio::time::sleep(self.cfg.flush_interval) => {}
                            _ = stop.changed() => break,
                        }
                    }
                    () = tokio::time::sleep(self.cfg.health_interval) => {
                        self.ping().await;
                        continue;
                    }
                    _ = stop.changed() => break,
                }
            }
            self.gather();
            match self.write_all().await {
                Ok(()) => {
                    self.set_up();
                    backoff = self.backoff();
                }
                Err(e) => {
                    self.shared.metrics.redis_write_failures.inc();
                    self.set_down(&e);
                    let delay = backoff.next().unwrap_or(self.cfg.backoff_max);
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => break,
                    }
                }
            }
        }
        // Stopping: one last attempt at what waits, bounded by the request timeout.
        self.gather();
        if !self.retained.is_empty() {
            match self.write_all().await {
                Ok(()) => tracing::info!("redis sink: flushed at stop"),
                Err(e) => {
                    self.shared.metrics.redis_write_failures.inc();
                    tracing::warn!(
                        error = %describe(&e),
                        unwritten = self.retained.len(),
                        "redis sink: stopping with values not written"
                    );
                }
            }
        }
    }
}
