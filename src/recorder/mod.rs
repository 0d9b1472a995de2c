//! The PostgreSQL recorder (`tickflow record`): consumes the normalized topics in a consumer
//! group, decodes each record by the schema id in its framing, and writes typed rows in
//! batches (binary `COPY` → staging → `INSERT … ON CONFLICT DO NOTHING`, one transaction);
//! offsets are committed only after that transaction. Every row carries its Kafka
//! coordinates under a unique constraint, so a replay after a crash stores nothing twice.
//!
//! Supervised: the recording loop runs as a task that is restarted (with backoff) when it
//! fails or panics. Bounded: a batch holds at most `batch_max_rows` records and librdkafka's
//! fetch queue at most `queued_max_kbytes` per partition. Observable: `tickflow_recorder_*`
//! metrics. PostgreSQL, the registry or the dead-letter topic unavailable: the batch is retried
//! with backoff and jitter while consumption pauses (Kafka keeps the data).

pub mod config;
pub mod consumer;
pub mod decode;
pub mod rows;
pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use rdkafka::consumer::CommitMode;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use thiserror::Error;
use tokio::sync::watch;

pub use config::RecorderConfig;

use crate::config::{Config, ConfigError};
use crate::metrics::{KindLabels, Metrics};
use consumer::GroupConsumer;
use decode::{BadRecord, Decoder};
use rows::{Coords, Row, RowError};
use store::{Store, StoreError};

/// The recorder could not run.
#[derive(Debug, Error)]
pub enum RecorderError {
    /// The config is invalid (not retried).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A Kafka client could not be created or subscribed.
    #[error("kafka: {0}")]
    Kafka(String),
    /// The registry client could not be created.
    #[error(transparent)]
    Registry(#[from] decode::RegistryUnavailable),
    /// PostgreSQL failed in a way that restarting the loop may cure (e.g. a migration).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long a stop waits for the last batch to be stored before giving it up (uncommitted:
/// Kafka still has it).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running recorder.
#[derive(Debug)]
pub struct Recorder {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), RecorderError>>,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
}

impl Recorder {
    /// Validates the config and starts the supervised recording loop on the current runtime.
    pub fn start(cfg: Config, metrics: Arc<Metrics>) -> Result<Recorder, RecorderError> {
        cfg.recorder.validate()?;
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(supervise(cfg, metrics.clone(), stop_rx));
        Ok(Recorder {
            stop,
            task,
            metrics,
        })
    }

    /// Stops: the batch in hand is stored and committed (within a grace period), then the loop
    /// ends.
    pub async fn stop(self) -> Result<(), RecorderError> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(RecorderError::Kafka(format!("recorder task ended: {e}"))),
        }
    }

    /// Runs until `signal` resolves, then stops.
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> Result<(), RecorderError> {
        signal.await;
        self.stop().await
    }
}

fn backoff(cfg: &RecorderConfig) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(cfg.retry_min_ms))
        .with_max_delay(Duration::from_millis(cfg.retry_max_ms))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Sleeps `d` unless a stop comes first; whether a stop came.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = async { let _ = stop.wait_for(|s| *s).await; } => true,
    };
    stopped || *stop.borrow()
}

/// Restarts the recording loop (with backoff) whenever it fails or panics; ends when it ends
/// on a stop, or on a config error.
async fn supervise(
    cfg: Config,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), RecorderError> {
    let mut delays = backoff(&cfg.recorder);
    loop {
        let task = tokio::spawn(record(cfg.clone(), metrics.clone(), stop.clone()));
        match task.await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(RecorderError::Config(e))) => return Err(RecorderError::Config(e)),
            Ok(Err(e)) => tracing::error!(error = %e, "recorder failed; restarting"),
            Err(e) => tracing::error!(error = %e, "recorder task panicked; restarting"),
        }
        metrics.recorder_restarts.inc();
        let d = delays.next().unwrap_or(Duration::from_secs(5));
        if pause(&mut stop, d).await {
            return Ok(());
        }
    }
}

/// A record that goes to the dead-letter topic instead of a table.
#[derive(Debug)]
struct Dead {
    coords: Coords,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    kind: &'static str,
    reason: String,
}

/// A record's raw key and value.
type RawRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The records consumed since the last commit.
#[derive(Debug, Default)]
struct Batch {
    rows: Vec<Row>,
    /// The raw key and value of each row (dead-lettered if PostgreSQL refuses the row).
    raw: Vec<RawRecord>,
    dead: Vec<Dead>,
    dead_sent: bool,
    next: BTreeMap<(String, i32), i64>,
    first_at: Option<Instant>,
    revocations: u64,
}

impl Batch {
    fn len(&self) -> usize {
        self.rows.len() + self.dead.len()
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Loop {
    cfg: Config,
    metrics: Arc<Metrics>,
    store: Store,
    decoder: Decoder,
    consumer: GroupConsumer,
    dead_letters: Option<(FutureProducer, String)>,
    stop: watch::Receiver<bool>,
}

/// One run of the recording loop.
async fn record(
    cfg: Config,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), RecorderError> {
    let store = Store::new(&cfg.recorder.postgres);
    // PostgreSQL may be down at start: wait for it (the data waits in Kafka).
    let mut delays = backoff(&cfg.recorder);
    loop {
        match store.migrate().await {
            Ok(applied) => {
                if !applied.is_empty() {
                    tracing::info!(?applied, "recorder: migrations applied");
                }
                break;
            }
            Err(e @ StoreError::Migration(_)) => return Err(e.into()),
            Err(e) => {
                metrics
                    .recorder_retries
                    .get_or_create(&KindLabels::new(e.kind()))
                    .inc();
                tracing::warn!(error = %e, "recorder: postgres unavailable at start; retrying");
                let d = delays.next().unwrap_or(Duration::from_secs(5));
                if pause(&mut stop, d).await {
                    return Ok(());
                }
            }
        }
    }
    let decoder = Decoder::new(&cfg.schema_registry)?;
    let topics = cfg.recorder.topics(&cfg.producer.topic_prefix);
    let consumer = GroupConsumer::start(&cfg.kafka, &cfg.recorder, &topics, metrics.clone())
        .map_err(|e| RecorderError::Kafka(e.to_string()))?;
    let dead_letters = match &cfg.recorder.dead_letter_topic {
        None => None,
        Some(topic) => {
            let producer: FutureProducer = cfg
                .kafka
                .client_config()
                .create()
                .map_err(|e| RecorderError::Kafka(e.to_string()))?;
            Some((producer, topic.clone()))
        }
    };
    tracing::info!(?topics, group = %cfg.recorder.group_id, "recorder: consuming");
    let mut l = Loop {
        cfg,
        metrics,
        store,
        decoder,
        consumer,
        dead_letters,
        stop,
    };
    l.run().await
}

impl Loop {
    async fn run(&mut self) -> Result<(), RecorderError> {
        let max_rows = self.cfg.recorder.batch_max_rows;
        let max_age = Duration::from_millis(self.cfg.recorder.batch_max_ms);
        let mut batch = Batch::default();
        loop {
            let deadline = batch
                .first_at
                .map(|t| tokio::time::Instant::from_std(t + max_age));
            let mut stop = self.stop.clone();
            tokio::select! {
                biased;
                _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                    self.flush(&mut batch).await;
                    return Ok(());
                }
                _ = async { if let Some(d) = deadline { tokio::time::sleep_until(d).await } },
                    if deadline.is_some() => {
                    if !self.flush(&mut batch).await {
                        return Ok(());
                    }
                }
                m = self.consumer.inner.recv() => {
                    let m = match m {
                        Ok(m) => m.detach(),
                        Err(e) => {
                            // Broker trouble or a missing topic: librdkafka retries by itself.
                            self.metrics.recorder_consumer_errors.inc();
                            tracing::warn!(error = %e, "recorder: consumer error");
                            continue;
                        }
                    };
                    if !batch.is_empty() && batch.revocations != self.consumer.revocations() {
                        self.drop_batch(&mut batch);
                    }
                    if !self.add(&mut batch, m).await {
                        // Stopped while the registry was unavailable: store what came before.
                        self.flush(&mut batch).await;
                        return Ok(());
                    }
                    if batch.len() >= max_rows && !self.flush(&mut batch).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Drops a batch whose partitions may have been revoked (nothing committed: the new owner
    /// reads them from the last commit).
    fn drop_batch(&self, batch: &mut Batch) {
        tracing::info!(
            records = batch.len(),
            "recorder: rebalance; dropping the uncommitted batch"
        );
        self.metrics.recorder_batches_dropped.inc();
        *batch = Batch::default();
    }

    /// Decodes `m` into the batch; false when a stop came while the registry was unavailable
    /// (the record is then not in the batch).
    async fn add(&mut self, batch: &mut Batch, m: rdkafka::message::OwnedMessage) -> bool {
        let coords = Coords {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
        };
        let mut delays = backoff(&self.cfg.recorder);
        let decoded = loop {
            match self.decoder.decode(m.payload()).await {
                Ok(d) => break d,
                Err(e) => {
                    self.metrics
                        .recorder_retries
                        .get_or_create(&KindLabels::new("registry"))
                        .inc();
                    tracing::warn!(error = %e, "recorder: registry unavailable; consumption paused");
                    let d = delays.next().unwrap_or(Duration::from_secs(5));
                    let mut stop = self.stop.clone();
                    if pause(&mut stop, d).await {
                        return false;
                    }
                }
            }
        };
        if batch.is_empty() {
            batch.first_at = Some(Instant::now());
            batch.revocations = self.consumer.revocations();
        }
        batch
            .next
            .insert((coords.topic.clone(), coords.partition), coords.offset + 1);
        let row = decoded
            .map_err(|e: BadRecord| (e.kind(), e.to_string()))
            .and_then(|r| {
                rows::to_row(&coords, &r).map_err(|e: RowError| (e.kind(), e.to_string()))
            });
        match row {
            Ok(row) => {
                batch.rows.push(row);
                batch
                    .raw
                    .push((m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec)));
            }
            Err((kind, reason)) => {
                self.metrics
                    .recorder_bad_records
                    .get_or_create(&KindLabels::new(kind))
                    .inc();
                tracing::warn!(
                    topic = %coords.topic,
                    partition = coords.partition,
                    offset = coords.offset,
                    kind,
                    %reason,
                    "recorder: record cannot be stored{}",
                    if self.dead_letters.is_some() { "; dead-lettered" } else { "; skipped" }
                );
                batch.dead.push(Dead {
                    coords,
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    kind,
                    reason,
                });
            }
        }
        true
    }

    /// Stores the batch (retrying with backoff until it is stored) and commits its offsets;
    /// false when a stop came and the batch could not be stored within the grace period (it
    /// is then not committed).
    async fn flush(&mut self, batch: &mut Batch) -> bool {
        if batch.is_empty() {
            return true;
        }
        if batch.revocations != self.consumer.revocations() {
            self.drop_batch(batch);
            return true;
        }
        let started = Instant::now();
        let mut delays = backoff(&self.cfg.recorder);
        let mut give_up_at: Option<Instant> = None;
        loop {
            match self.flush_once(batch).await {
                Ok(()) => break,
                Err((kind, e)) => {
                    self.metrics
                        .recorder_retries
                        .get_or_create(&KindLabels::new(kind))
                        .inc();
                    tracing::warn!(error = %e, rows = batch.rows.len(), "recorder: batch not stored; retrying (consumption paused)");
                }
            }
            if *self.stop.borrow() {
                let at = *give_up_at.get_or_insert_with(|| Instant::now() + STOP_GRACE);
                if Instant::now() >= at {
                    tracing::warn!(
                        rows = batch.rows.len(),
                        "recorder: stopping with an unstored batch; not committed (Kafka keeps it)"
                    );
                    return false;
                }
            }
            let d = delays.next().unwrap_or(Duration::from_secs(5));
            tokio::time::sleep(d).await;
        }
        self.metrics.recorder_batches.inc();
        self.metrics
            .recorder_batch_seconds
            .observe(started.elapsed().as_secs_f64());
        let mode = if *self.stop.borrow() {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        if let Err(e) = self.consumer.commit(&batch.next, mode) {
            self.metrics.recorder_commit_errors.inc();
            tracing::warn!(error = %e, "recorder: offset commit failed; the records will be replayed and skipped");
        }
        *batch = Batch::default();
        true
    }

    /// One attempt: dead letters first (once), then the rows in one transaction; rows
    /// PostgreSQL refuses as data are dead-lettered one by one.
    async fn flush_once(&mut self, batch: &mut Batch) -> Result<(), (&'static str, String)> {
        if !batch.dead_sent {
            for d in &batch.dead {
                self.dead_letter(d).await?;
            }
            batch.dead_sent = true;
        }
        let written = match self.store.write(&batch.rows).await {
            Ok(w) => w,
            Err(StoreError::Data(e)) => {
                tracing::warn!(error = %e, "recorder: postgres refused a row; writing the batch row by row");
                self.write_row_by_row(batch).await?
            }
            Err(e) => return Err((e.kind(), e.to_string())),
        };
        for (table, sent, inserted) in written.tables {
            let labels = KindLabels::new(table);
            self.metrics
                .recorder_rows
                .get_or_create(&labels)
                .inc_by(inserted);
            self.metrics
                .recorder_rows_skipped
                .get_or_create(&labels)
                .inc_by(sent.saturating_sub(inserted));
        }
        Ok(())
    }

    async fn write_row_by_row(
        &mut self,
        batch: &mut Batch,
    ) -> Result<store::Written, (&'static str, String)> {
        let mut total: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
        let mut i = 0;
        while i < batch.rows.len() {
            match self.store.write(std::slice::from_ref(&batch.rows[i])).await {
                Ok(w) => {
                    for (t, s, n) in w.tables {
                        let e = total.entry(t).or_default();
                        e.0 += s;
                        e.1 += n;
                    }
                    i += 1;
                }
                Err(StoreError::Data(reason)) => {
                    let row = batch.rows.remove(i);
                    let (key, value) = batch.raw.remove(i);
                    let coords = Coords {
                        topic: match &row.cells[0] {
                            rows::Cell::Text(Some(t)) => t.clone(),
                            _ => String::new(),
                        },
                        partition: match row.cells[1] {
                            rows::Cell::Int4(p) => p,
                            _ => -1,
                        },
                        offset: match row.cells[2] {
                            rows::Cell::Int8(Some(o)) => o,
                            _ => -1,
                        },
                    };
                    self.metrics
                        .recorder_bad_records
                        .get_or_create(&KindLabels::new("refused_by_postgres"))
                        .inc();
                    tracing::warn!(topic = %coords.topic, partition = coords.partition, offset = coords.offset, %reason, "recorder: postgres refused the row");
                    let dead = Dead {
                        coords,
                        key,
                        value,
                        kind: "refused_by_postgres",
                        reason,
                    };
                    self.dead_letter(&dead).await?;
                }
                Err(e) => return Err((e.kind(), e.to_string())),
            }
        }
        Ok(store::Written {
            tables: total.into_iter().map(|(t, (s, n))| (t, s, n)).collect(),
        })
    }

    async fn dead_letter(&self, d: &Dead) -> Result<(), (&'static str, String)> {
        let Some((producer, topic)) = &self.dead_letters else {
            return Ok(());
        };
        let partition = d.coords.partition.to_string();
        let offset = d.coords.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "source_topic",
                value: Some(d.coords.topic.as_str()),
            })
            .insert(Header {
                key: "source_partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "source_offset",
                value: Some(offset.as_str()),
            })
            .insert(Header {
                key: "error_kind",
                value: Some(d.kind),
            })
            .insert(Header {
                key: "error",
                value: Some(d.reason.as_str()),
            });
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
        if let Some(k) = &d.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &d.value {
            record = record.payload(v.as_slice());
        }
        match producer.send(record, Duration::from_secs(10)).await {
            Ok(_) => {
                self.metrics
                    .dead_lettered
                    .get_or_create(&crate::metrics::ErrorLabels {
                        topic: d.coords.topic.clone(),
                        reason: d.kind.to_string(),
                    })
                    .inc();
                Ok(())
            }
            Err((e, _)) => Err(("dead_letter", e.to_string())),
        }
    }
}

/// Serves `/metrics` of `metrics` on `listen`; returns the bound address.
pub async fn serve_metrics(
    listen: &str,
    metrics: Arc<Metrics>,
) -> std::io::Result<std::net::SocketAddr> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move { m.render() }
        }),
    );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "recorder metrics endpoint ended");
        }
    });
    Ok(addr)
}
