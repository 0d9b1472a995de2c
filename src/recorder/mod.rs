//! The PostgreSQL recorder (`tickflow record`): consumes the normalized topics in a consumer
//! group, decodes each record by the schema id in its framing, and writes typed rows in
//! batches (binary `COPY` → staging → `INSERT … ON CONFLICT DO NOTHING`, one transaction);
//! offsets are committed only after that transaction. Every row carries its Kafka
//! coordinates under a unique constraint, so a replay after a crash stores nothing twice.
//!
//! Supervised: the recording loop runs as a task that is restarted (with backoff) when it
//! fails or panics. Bounded: a batch holds at most `batch_max_rows` records (and about
//! `batch_max_bytes` of them) and librdkafka's
//! fetch queue at most `queued_max_kbytes` per partition. Observable: `tickflow_recorder_*`
//! metrics. PostgreSQL, the registry or the dead-letter topic unavailable: the batch is retried
//! with backoff and jitter while consumption pauses (Kafka keeps the data).

pub mod config;
pub mod consumer;
pub mod decode;
pub mod rows;
pub mod store;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use thiserror::Error;
use tokio::sync::watch;

pub use config::{BadRecords, RecorderConfig};

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
    /// Bytes of the raw records taken (keys and values).
    bytes: usize,
}

impl Batch {
    fn len(&self) -> usize {
        self.rows.len() + self.dead.len()
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A partition's position.
type Partition = (String, i32);

struct Loop {
    cfg: Config,
    metrics: Arc<Metrics>,
    store: Store,
    decoder: Decoder,
    consumer: GroupConsumer,
    dead_letters: Option<(FutureProducer, String)>,
    stop: watch::Receiver<bool>,
    /// Records received while the loop waited (PostgreSQL or the registry down, every
    /// partition paused): handled, in order, before the consumer is asked again.
    held: VecDeque<OwnedMessage>,
    /// Whether the assignment is paused while the loop waits.
    paused: bool,
    /// Partitions stopped before a record that cannot be stored (the offset), and why.
    stopped: BTreeMap<Partition, (i64, String)>,
    /// The next offset expected per partition (the last one seen + 1, or the group's committed
    /// offset): a record below it means the offsets went back (the topic was recreated).
    expected: BTreeMap<Partition, i64>,
    /// The revocation count `stopped` and `expected` belong to.
    revocations: u64,
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
        held: VecDeque::new(),
        paused: false,
        stopped: BTreeMap::new(),
        expected: BTreeMap::new(),
        revocations: 0,
    };
    l.run().await
}

impl Loop {
    async fn run(&mut self) -> Result<(), RecorderError> {
        let max_rows = self.cfg.recorder.batch_max_rows;
        let max_bytes = self.cfg.recorder.batch_max_bytes;
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
                m = next_message(&mut self.held, &self.consumer, &self.metrics) => {
                    let Some((m, held)) = m else { continue };
                    if self.revocations != self.consumer.revocations() {
                        // Held records belong to the old assignment: whoever owns their
                        // partitions now reads them again from the committed offsets.
                        self.held.clear();
                        // A rebalance: the partitions start again from their committed offsets
                        // (the eager protocol is forced, see `consumer`); a partition stopped
                        // here is stopped again by whoever reads it.
                        self.revocations = self.consumer.revocations();
                        self.stopped.clear();
                        self.expected.clear();
                        self.metrics.recorder_stopped_partitions.set(0);
                        if held {
                            continue;
                        }
                    }
                    if !batch.is_empty() && batch.revocations != self.consumer.revocations() {
                        self.drop_batch(&mut batch);
                    }
                    if !self.in_sequence(&mut batch, &m) {
                        continue;
                    }
                    if !self.add(&mut batch, m).await {
                        // Stopped while the registry was unavailable: store what came before.
                        self.flush(&mut batch).await;
                        return Ok(());
                    }
                    if (batch.len() >= max_rows || batch.bytes >= max_bytes)
                        && !self.flush(&mut batch).await
                    {
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

    /// Whether `m` is the next record of its partition: false (and the record is left out)
    /// when its partition is stopped, or when its offset is below the one expected (the
    /// offsets went back: the topic was deleted and created again, e.g. a broker restarted on
    /// empty storage) — the partition is then stopped loudly, since its new records would
    /// collide with stored ones.
    fn in_sequence(&mut self, batch: &mut Batch, m: &OwnedMessage) -> bool {
        let p = (m.topic().to_string(), m.partition());
        if self.stopped.contains_key(&p) {
            return false;
        }
        let expected = match self.expected.get(&p) {
            Some(e) => Some(*e),
            // The group's committed offset, for the first assignment only: after a rebalance
            // an asynchronous commit of this loop may land after the new position was taken,
            // and would look like offsets going back.
            None if self.consumer.revocations() == 0 => self.consumer.committed(&p.0, p.1),
            None => None,
        };
        if let Some(e) = expected {
            if m.offset() < e {
                let reason = format!(
                    "offsets went back from {e} to {}: the topic was created again (a broker \
                     restarted on empty storage?); its new records would collide with the \
                     stored ones. Reset the group's offsets, or record the new topic under \
                     another group into another database",
                    m.offset()
                );
                self.stop_partition(batch, p, m.offset(), reason, false);
                return false;
            }
        }
        self.expected.insert(p, m.offset() + 1);
        true
    }

    /// Stops partition `p` before `offset`: nothing from there on is stored or committed,
    /// the partition is paused, and the reason is logged and counted. With `commit_before`,
    /// the batch commits up to (not including) `offset`.
    fn stop_partition(
        &mut self,
        batch: &mut Batch,
        p: Partition,
        offset: i64,
        reason: String,
        commit_before: bool,
    ) {
        tracing::error!(
            topic = %p.0,
            partition = p.1,
            offset,
            %reason,
            "recorder: partition stopped before this record (the other partitions go on)"
        );
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition(&p.0, p.1);
        if let Err(e) = self.consumer.inner.pause(&tpl) {
            tracing::warn!(error = %e, "recorder: cannot pause the stopped partition");
        }
        let keep = |c: &Coords| c.topic != p.0 || c.partition != p.1 || c.offset < offset;
        let mut i = 0;
        while i < batch.rows.len() {
            if keep(&row_coords(&batch.rows[i])) {
                i += 1;
            } else {
                batch.rows.remove(i);
                batch.raw.remove(i);
            }
        }
        batch.dead.retain(|d| keep(&d.coords));
        if commit_before {
            batch.next.insert(p.clone(), offset);
        } else {
            batch.next.remove(&p);
        }
        self.stopped.insert(p, (offset, reason));
        self.metrics
            .recorder_stopped_partitions
            .set(self.stopped.len() as i64);
    }

    /// Waits `d` without leaving the group: every assigned partition is paused and the
    /// consumer is still polled (so `max.poll.interval.ms` never passes); what it still
    /// returns is held, in order. Whether a stop came.
    async fn idle(&mut self, d: Duration) -> bool {
        self.pause_all();
        let deadline = tokio::time::Instant::now() + d;
        let mut stop = self.stop.clone();
        loop {
            tokio::select! {
                biased;
                _ = async { let _ = stop.wait_for(|s| *s).await; } => return true,
                _ = tokio::time::sleep_until(deadline) => return *self.stop.borrow(),
                m = self.consumer.inner.recv() => match m {
                    Ok(m) => {
                        self.held.push_back(m.detach());
                        // A new assignment after a rebalance is paused too.
                        self.pause_all();
                    }
                    Err(e) => {
                        self.metrics.recorder_consumer_errors.inc();
                        tracing::debug!(error = %e, "recorder: consumer error while waiting");
                    }
                },
            }
        }
    }

    fn pause_all(&mut self) {
        if let Ok(a) = self.consumer.inner.assignment() {
            if let Err(e) = self.consumer.inner.pause(&a) {
                tracing::debug!(error = %e, "recorder: cannot pause the assignment");
            }
        }
        self.paused = true;
    }

    /// Resumes the paused assignment (stopped partitions stay paused).
    fn resume_all(&mut self) {
        if !self.paused {
            return;
        }
        self.paused = false;
        let Ok(a) = self.consumer.inner.assignment() else {
            return;
        };
        let mut tpl = rdkafka::TopicPartitionList::new();
        for e in a.elements() {
            if !self
                .stopped
                .contains_key(&(e.topic().to_string(), e.partition()))
            {
                tpl.add_partition(e.topic(), e.partition());
            }
        }
        if let Err(e) = self.consumer.inner.resume(&tpl) {
            tracing::warn!(error = %e, "recorder: cannot resume the assignment");
        }
    }

    /// Decodes `m` into the batch; false when a stop came while the registry was unavailable
    /// (the record is then not in the batch).
    async fn add(&mut self, batch: &mut Batch, m: rdkafka::message::OwnedMessage) -> bool {
        let coords = Coords {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            record_id: record_id(&m),
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
                    // What came before is stored (and committed) while this record waits.
                    if !batch.is_empty() && !self.flush(batch).await {
                        return false;
                    }
                    let d = delays.next().unwrap_or(Duration::from_secs(5));
                    if self.idle(d).await {
                        return false;
                    }
                }
            }
        };
        self.resume_all();
        if batch.is_empty() {
            batch.first_at = Some(Instant::now());
            batch.revocations = self.consumer.revocations();
        }
        batch
            .next
            .insert((coords.topic.clone(), coords.partition), coords.offset + 1);
        batch.bytes += m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len);
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
                if self.dead_letters.is_none() && self.cfg.recorder.bad_records == BadRecords::Stop
                {
                    let p = (coords.topic.clone(), coords.partition);
                    let why = format!(
                        "{kind}: {reason} (no dead-letter topic; recorder.bad_records = \"stop\")"
                    );
                    self.stop_partition(batch, p, coords.offset, why, true);
                    return true;
                }
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
            self.idle(d).await;
        }
        self.resume_all();
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
                    let coords = row_coords(&batch.rows[i]);
                    tracing::warn!(topic = %coords.topic, partition = coords.partition, offset = coords.offset, %reason, "recorder: postgres refused the row");
                    if self.dead_letters.is_none()
                        && self.cfg.recorder.bad_records == BadRecords::Stop
                    {
                        self.metrics
                            .recorder_bad_records
                            .get_or_create(&KindLabels::new("refused_by_postgres"))
                            .inc();
                        let p = (coords.topic.clone(), coords.partition);
                        let why = format!("refused_by_postgres: {reason} (no dead-letter topic; recorder.bad_records = \"stop\")");
                        // Removes this row and the later ones of its partition.
                        self.stop_partition(batch, p, coords.offset, why, true);
                        continue;
                    }
                    let (key, value) = batch.raw[i].clone();
                    let dead = Dead {
                        coords,
                        key,
                        value,
                        kind: "refused_by_postgres",
                        reason,
                    };
                    // The row leaves the batch only once its dead letter is acknowledged: if
                    // the send fails, the batch is retried with the row still in it.
                    self.dead_letter(&dead).await?;
                    self.metrics
                        .recorder_bad_records
                        .get_or_create(&KindLabels::new("refused_by_postgres"))
                        .inc();
                    batch.rows.remove(i);
                    batch.raw.remove(i);
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

/// The next record: a held one first, else the consumer's (consumer errors are counted and
/// give `None`). The flag says whether it was held.
async fn next_message(
    held: &mut VecDeque<OwnedMessage>,
    consumer: &GroupConsumer,
    metrics: &Metrics,
) -> Option<(OwnedMessage, bool)> {
    if let Some(m) = held.pop_front() {
        return Some((m, true));
    }
    match consumer.inner.recv().await {
        Ok(m) => Some((m.detach(), false)),
        Err(e) => {
            // Broker trouble or a missing topic: librdkafka retries by itself.
            metrics.recorder_consumer_errors.inc();
            tracing::warn!(error = %e, "recorder: consumer error");
            None
        }
    }
}

/// The record's `record_id` header ([`crate::schema::RECORD_ID_HEADER`]) when it is one a
/// producer could have written (1–64 ASCII letters, digits or `-`); anything else is treated as
/// absent: the coordinates alone identify the record.
fn record_id(m: &rdkafka::message::OwnedMessage) -> Option<String> {
    use rdkafka::message::{Headers, Message};
    let headers = m.headers()?;
    let h = headers
        .iter()
        .find(|h| h.key == crate::schema::RECORD_ID_HEADER)?;
    let v = std::str::from_utf8(h.value?).ok()?;
    let ok =
        !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then(|| v.to_string())
}

/// The Kafka coordinates a row carries (its first four cells).
fn row_coords(row: &Row) -> Coords {
    Coords {
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
        record_id: match &row.cells[3] {
            rows::Cell::Text(id) => id.clone(),
            _ => None,
        },
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
