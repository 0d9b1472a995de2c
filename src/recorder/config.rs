//! The `[recorder]` config section: what `tickflow record` consumes, where it writes, how it
//! batches and how its PostgreSQL pool is sized.

use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;
use crate::config::secret::Secret;
use crate::schema::DataType;

/// The data types the recorder can store (one table each).
pub const RECORDABLE: [DataType; 8] = [
    DataType::Trade,
    DataType::TopOfBook,
    DataType::Ticker,
    DataType::Funding,
    DataType::OpenInterest,
    DataType::Liquidation,
    DataType::Candle,
    DataType::Level2Book,
];

/// `[recorder]`: the PostgreSQL recorder (`tickflow record`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecorderConfig {
    /// Data types consumed (topics `<producer.topic_prefix>.<data_type>`); `level2_book` is
    /// stored as `jsonb` snapshots.
    pub data_types: Vec<DataType>,
    /// Explicit topics instead of the ones derived from `data_types` (each topic's records are
    /// decoded by their schema id, whatever the name).
    pub topics: Vec<String>,
    /// Kafka consumer group; every recorder of the group shares the partitions.
    pub group_id: String,
    /// Where a record that cannot be stored goes (raw bytes, with the reason in headers).
    pub dead_letter_topic: Option<String>,
    /// What a record that cannot be stored does without a dead-letter topic: `stop` (the
    /// default) stops its partition before it, says why in the log and in
    /// `tickflow_recorder_stopped_partitions`, and keeps the other partitions moving; `skip`
    /// counts it and goes on (its offset is committed: not exactly once).
    pub bad_records: BadRecords,
    /// A batch is flushed when it holds this many rows …
    pub batch_max_rows: usize,
    /// … or when the raw records in it (keys and values) reach this many bytes …
    pub batch_max_bytes: usize,
    /// … or when its first row is this old.
    pub batch_max_ms: u64,
    /// Consumer-group session timeout: how long a dead recorder keeps its partitions.
    pub session_timeout_ms: u64,
    /// The librdkafka fetch queue bound per partition (`queued.max.messages.kbytes`).
    pub queued_max_kbytes: u32,
    /// First retry delay of a failed batch (PostgreSQL, registry or dead-letter topic down).
    pub retry_min_ms: u64,
    /// Longest retry delay (the batch is retried until it is stored or the recorder stops).
    pub retry_max_ms: u64,
    /// Serve `/metrics` on this address while recording (none: no endpoint).
    pub metrics_listen: Option<String>,
    /// PostgreSQL connection and pool.
    pub postgres: PostgresConfig,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            data_types: RECORDABLE.to_vec(),
            topics: Vec::new(),
            group_id: "tickflow-recorder".into(),
            dead_letter_topic: None,
            bad_records: BadRecords::Stop,
            batch_max_rows: 5_000,
            batch_max_bytes: 16 * 1024 * 1024,
            batch_max_ms: 1_000,
            session_timeout_ms: 10_000,
            queued_max_kbytes: 65_536,
            retry_min_ms: 100,
            retry_max_ms: 5_000,
            metrics_listen: None,
            postgres: PostgresConfig::default(),
        }
    }
}

/// What a record that cannot be stored does when there is no dead-letter topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadRecords {
    /// Stop its partition before it (nothing after it is stored or committed) and say why.
    #[default]
    Stop,
    /// Count it, log it, and go on past it.
    Skip,
}

/// PostgreSQL connection and pool settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// Host name, IP address or Unix-socket directory.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// Password; environment only: `TICKFLOW_RECORDER__POSTGRES__PASSWORD`.
    pub password: Option<Secret>,
    /// Database.
    pub dbname: String,
    /// Most pooled connections.
    pub max_connections: u32,
    /// How long a batch waits for a pooled connection (or for a new one to connect).
    pub acquire_timeout_ms: u64,
    /// An idle pooled connection is closed after this long.
    pub idle_timeout_ms: u64,
    /// A pooled connection is replaced after this long.
    pub max_lifetime_ms: u64,
    /// `statement_timeout` of every connection (0: none).
    pub statement_timeout_ms: u64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            host: "127.0.0.1".into(),
            port: 5432,
            user: "postgres".into(),
            password: None,
            dbname: "tickflow".into(),
            max_connections: 4,
            acquire_timeout_ms: 5_000,
            idle_timeout_ms: 300_000,
            max_lifetime_ms: 1_800_000,
            statement_timeout_ms: 60_000,
        }
    }
}

impl PostgresConfig {
    /// The `tokio-postgres` connection config (the password included, never printed).
    pub fn pg_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("tickflow-recorder")
            .connect_timeout(std::time::Duration::from_millis(self.acquire_timeout_ms));
        if self.statement_timeout_ms > 0 {
            c.options(format!(
                "-c statement_timeout={}",
                self.statement_timeout_ms
            ));
        }
        if let Some(p) = &self.password {
            c.password(p.expose());
        }
        c
    }
}

impl RecorderConfig {
    /// Checks the section; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            key: format!("recorder.{key}"),
            reason: reason.to_string(),
        };
        if let Some(d) = self.data_types.iter().find(|d| !RECORDABLE.contains(d)) {
            return Err(invalid(
                "data_types",
                &format!(
                    "{d} is not recorded; recordable: {}",
                    RECORDABLE.map(DataType::as_str).join(", ")
                ),
            ));
        }
        if self.data_types.is_empty() && self.topics.is_empty() {
            return Err(invalid("data_types", "list at least one data type"));
        }
        if self.group_id.is_empty() {
            return Err(invalid("group_id", "must not be empty"));
        }
        if self.batch_max_bytes == 0 {
            return Err(invalid("batch_max_bytes", "must be at least 1"));
        }
        if self.batch_max_rows == 0 {
            return Err(invalid("batch_max_rows", "must be at least 1"));
        }
        if self.batch_max_ms == 0 {
            return Err(invalid("batch_max_ms", "must be at least 1"));
        }
        if self.retry_min_ms == 0 || self.retry_max_ms < self.retry_min_ms {
            return Err(invalid(
                "retry_max_ms",
                "retry_min_ms must be at least 1 and retry_max_ms at least retry_min_ms",
            ));
        }
        if self.postgres.max_connections == 0 {
            return Err(invalid("postgres.max_connections", "must be at least 1"));
        }
        if self.postgres.acquire_timeout_ms == 0 {
            return Err(invalid("postgres.acquire_timeout_ms", "must be at least 1"));
        }
        Ok(())
    }

    /// The topics consumed: `topics` when set, else one per data type under `prefix`.
    pub fn topics(&self, prefix: &str) -> Vec<String> {
        if !self.topics.is_empty() {
            return self.topics.clone();
        }
        self.data_types
            .iter()
            .map(|d| format!("{prefix}.{}", d.as_str()))
            .collect()
    }
}
