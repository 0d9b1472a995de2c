//! PostgreSQL: an explicitly sized connection pool, the versioned migrations, and the batch
//! write (binary `COPY` into per-session staging tables, then one
//! `INSERT … SELECT … ON CONFLICT DO NOTHING` per table, all in one transaction).

use std::time::Duration;

use bb8::Pool;
use bb8_postgres::PostgresConnectionManager;
use futures::pin_mut;
use thiserror::Error;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

use super::config::PostgresConfig;
use super::rows::{Cell, Row, Table, TABLES};

mod embedded {
    refinery::embed_migrations!("src/recorder/migrations");
}

/// Advisory-lock key held while migrating, so recorders starting together migrate once.
const MIGRATION_LOCK: i64 = 0x7469_636b_666c_6f77; // "tickflow"

/// A PostgreSQL failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// No connection could be had (down, restarting, pool exhausted past the acquire timeout).
    #[error("postgres connection: {0}")]
    Connection(String),
    /// PostgreSQL refused the data itself (a data or constraint error): retrying the same
    /// rows cannot help.
    #[error("postgres refused the data: {0}")]
    Data(String),
    /// Any other failure of a statement (connection lost mid-batch, server shutting down, …).
    #[error("postgres: {0}")]
    Statement(String),
    /// A migration failed.
    #[error("migration: {0}")]
    Migration(String),
}

impl StoreError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Connection(_) => "connection",
            StoreError::Data(_) => "data",
            StoreError::Statement(_) => "statement",
            StoreError::Migration(_) => "migration",
        }
    }
}

/// Whether a SQLSTATE is about the rows written (retrying them cannot help) rather than the
/// server or the connection.
pub fn is_row_class(sqlstate: &str) -> bool {
    ["22", "23", "54"].iter().any(|c| sqlstate.starts_with(c))
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // Class 22 (data exception), 23 (integrity constraint violation) and 54 (program limit
        // exceeded: e.g. 54000, an index row too large) are about the rows: the batch is
        // written row by row and the refused row goes to the dead-letter topic.
        let data = e.code().is_some_and(|c| is_row_class(c.code()));
        // `{e:#}`-free: tokio-postgres errors carry no password.
        let text = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        };
        if data {
            StoreError::Data(text)
        } else if e.is_closed() {
            StoreError::Connection(text)
        } else {
            StoreError::Statement(text)
        }
    }
}

impl From<bb8::RunError<tokio_postgres::Error>> for StoreError {
    fn from(e: bb8::RunError<tokio_postgres::Error>) -> Self {
        StoreError::Connection(match e {
            bb8::RunError::User(e) => e.to_string(),
            bb8::RunError::TimedOut => "timed out waiting for a pooled connection".into(),
        })
    }
}

/// Rows written by one batch, per table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    /// (table, rows sent, rows inserted) for every table the batch touched.
    pub tables: Vec<(&'static str, u64, u64)>,
}

/// The recorder's PostgreSQL.
#[derive(Clone)]
pub struct Store {
    pool: Pool<PostgresConnectionManager<NoTls>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// A pool sized by `cfg`; connects lazily (PostgreSQL may be down at start).
    pub fn new(cfg: &PostgresConfig) -> Store {
        let manager = PostgresConnectionManager::new(cfg.pg_config(), NoTls);
        let pool = Pool::builder()
            .max_size(cfg.max_connections)
            .min_idle(None)
            .connection_timeout(Duration::from_millis(cfg.acquire_timeout_ms))
            .idle_timeout(Some(Duration::from_millis(cfg.idle_timeout_ms.max(1))))
            .max_lifetime(Some(Duration::from_millis(cfg.max_lifetime_ms.max(1))))
            // A connection broken by a PostgreSQL restart is noticed before a batch uses it.
            .test_on_check_out(true)
            .build_unchecked(manager);
        Store { pool }
    }

    /// Runs the versioned migrations (once, under an advisory lock); returns the versions
    /// applied now.
    pub async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        let mut conn = self.pool.get().await?;
        conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let report = embedded::migrations::runner()
            .run_async(&mut *conn)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()));
        let unlocked = conn
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await;
        let report = report?;
        unlocked?;
        Ok(report
            .applied_migrations()
            .iter()
            .map(|m| m.version())
            .collect())
    }

    /// Writes `rows` in one transaction: every table's rows are binary-copied into its staging
    /// table and inserted with `ON CONFLICT DO NOTHING` (a row whose Kafka record, or whose
    /// trade, is already stored is skipped). All or nothing.
    pub async fn write(&self, rows: &[Row]) -> Result<Written, StoreError> {
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        let used: Vec<&'static Table> = TABLES
            .iter()
            .copied()
            .filter(|t| rows.iter().any(|r| std::ptr::eq(r.table, *t)))
            .collect();
        // One round trip for every table; the "already exists, skipping" notices are silenced.
        let mut create = vec!["SET LOCAL client_min_messages = warning".to_string()];
        create.extend(used.iter().map(|t| t.create_staging_sql()));
        tx.batch_execute(&create.join(";\n")).await?;
        let mut written = Written::default();
        for table in used {
            let sink = tx.copy_in(&table.copy_sql()).await?;
            let writer = BinaryCopyInWriter::new(sink, &table.staging_types());
            pin_mut!(writer);
            let mut sent = 0u64;
            for row in rows.iter().filter(|r| std::ptr::eq(r.table, table)) {
                let values: Vec<&(dyn ToSql + Sync)> = row
                    .cells
                    .iter()
                    .map(|c: &Cell| c as &(dyn ToSql + Sync))
                    .collect();
                writer.as_mut().write(&values).await?;
                sent += 1;
            }
            writer.finish().await?;
            let inserted = tx.execute(&table.insert_sql(), &[]).await?;
            written.tables.push((table.name, sent, inserted));
        }
        tx.commit().await?;
        Ok(written)
    }

    /// A pooled connection's client, for checks and tests.
    pub async fn query_i64(&self, sql: &str) -> Result<i64, StoreError> {
        let conn = self.pool.get().await?;
        let row = conn.query_one(sql, &[]).await?;
        Ok(row.try_get::<_, i64>(0)?)
    }
}
