//! `postgres` sink: rows into a PostgreSQL (warehouse) table, upserted on a declared key so
//! that a replay or a restart never duplicates a row. It owns the table's DDL, the write
//! path, reconnecting, and the sink's status.
//!
//! **Table.** Created when missing (with its schema, when the name is `schema.table`):
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS "turnstile_windows" (
//!     "station" TEXT NOT NULL,              -- str
//!     "window_start" TIMESTAMP NOT NULL,    -- timestamp: UTC, without time zone
//!     "window_end" TIMESTAMP NOT NULL,
//!     "entries" BIGINT NOT NULL,            -- int64
//!     "exits" BIGINT NOT NULL,
//!     "_sluice_pipeline" TEXT NOT NULL,
//!     "_sluice_loaded_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
//!     PRIMARY KEY ("station", "window_start")
//! )
//! ```
//!
//! One column per field, in order: `str` → `TEXT`, `int64` → `BIGINT`, `float64` →
//! `DOUBLE PRECISION`, `boolean` → `BOOLEAN`, `timestamp` → `TIMESTAMP`, `bytes` → `BYTEA`;
//! `NOT NULL` unless the field is nullable. `_sluice_pipeline` names the pipeline that wrote
//! the row, `_sluice_loaded_at` is when it was inserted or last changed. An existing table
//! must have these columns with these types and a unique key on exactly `key`.
//!
//! **Writes.** One transaction per [`PostgresSink::write`]: a binary COPY into a session
//! staging table, then `INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE` of the other
//! columns (the last row of a key in a batch wins; a row whose values did not change is left
//! alone). Binary COPY measured about as fast as `unnest` arrays and twice as fast as a
//! multi-row `INSERT ... VALUES` with bound parameters. `write` returns after COMMIT. When the connection is lost or the server is briefly
//! unavailable, it reconnects and retries the whole batch (idempotent) with backoff for up to
//! a minute, then returns an error; a rejected batch (bad data) is an error at once.
//! [`PostgresSink::write_or_reject`] instead bisects a batch the server rejects for its data
//! (SQLSTATE classes 22 and 23: a value out of range, a NOT NULL or CHECK violation) down to
//! the rows it rejects, writes the others and returns the rejected rows with the reason.

mod conn;
mod copy;
mod spec;
mod sql;
mod status;
mod table;

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use sluice_plugin_sdk::rows::Field;
use tokio_postgres::{Client, Config};

use self::conn::Conn;
pub use self::spec::PostgresSinkSpec;
use self::sql::Layout;
pub use self::status::PostgresStatus;
use super::RowBatch;

/// Connection attempts in [`PostgresSink::connect`].
const CONNECT_TRIES: u32 = 5;
/// Wait after the first failed attempt; doubles after each (0.5 + 1 + 2 + 4 s).
const CONNECT_FIRST_DELAY: Duration = Duration::from_millis(500);
/// How long a write keeps retrying after connection trouble.
const RETRY_FOR: Duration = Duration::from_secs(60);
/// Wait after the first failed write attempt; doubles up to [`RETRY_MAX_DELAY`].
const RETRY_FIRST_DELAY: Duration = Duration::from_millis(250);
/// Longest wait between write attempts.
const RETRY_MAX_DELAY: Duration = Duration::from_secs(8);

/// Settings of a `postgres:` sink.
#[derive(Clone, Debug)]
pub struct PostgresSettings {
    /// `url: postgres://user[:password]@host:port/database` (or `key=value` pairs).
    pub url: String,
    /// `table: name` or `table: schema.name`.
    pub table: String,
    /// `key: [field, ...]`: the fields that identify a row (the primary key).
    pub key: Vec<String>,
    /// The pipeline's name (load metadata, application name `sluice-<pipeline>`, logs).
    pub pipeline: String,
}

/// Writes rows to a PostgreSQL table.
pub struct PostgresSink {
    settings: PostgresSettings,
    layout: Layout,
    config: Config,
    /// The server, without password, for messages.
    url: String,
    /// The session, `None` after an error until the next write reconnects.
    session: tokio::sync::Mutex<Option<Conn>>,
    status: Mutex<PostgresStatus>,
}

impl PostgresSink {
    /// Checks `key`, the field names and the table name against `schema`, and the URL's
    /// syntax when it is not empty, without connecting (used by `sluice validate`).
    pub fn check(settings: &PostgresSettings, schema: &[Field]) -> Result<(), String> {
        Layout::new(&settings.table, &settings.key, schema)?;
        if !settings.url.is_empty() {
            conn::config(&settings.url, &settings.pipeline)?;
        }
        Ok(())
    }

    /// Connects (5 attempts over about 8 s), creates the table if missing with the DDL of
    /// the module doc (`CREATE TABLE IF NOT EXISTS`, one column per field, `str` `TEXT`,
    /// `int64` `BIGINT`, `float64` `DOUBLE PRECISION`, `boolean` `BOOLEAN`, `timestamp`
    /// `TIMESTAMP` (UTC), `bytes` `BYTEA`, `NOT NULL` unless nullable, plus
    /// `_sluice_pipeline TEXT NOT NULL`, `_sluice_loaded_at TIMESTAMPTZ NOT NULL DEFAULT
    /// now()` and `PRIMARY KEY (key)`), and checks that an existing table fits the rows.
    pub async fn connect(settings: PostgresSettings, schema: &[Field]) -> anyhow::Result<Self> {
        let layout = Layout::new(&settings.table, &settings.key, schema).map_err(|e| anyhow!(e))?;
        let config = conn::config(&settings.url, &settings.pipeline).map_err(|e| anyhow!(e))?;
        let url = conn::shown_url(&config);
        let client = open_with_retry(&config, &settings.pipeline, &url).await?;
        let session = set_up(client, &layout, &settings.pipeline, &url).await?;
        let status = PostgresStatus {
            table: layout.table.to_string(),
            url: url.clone(),
            state: "ok",
            ..PostgresStatus::default()
        };
        Ok(PostgresSink {
            settings,
            layout,
            config,
            url,
            session: tokio::sync::Mutex::new(Some(session)),
            status: Mutex::new(status),
        })
    }

    /// Writes `rows` in one transaction and returns only after COMMIT; upserts on the key,
    /// so writing the same rows again changes nothing. Retries on connection trouble.
    pub async fn write(&self, rows: &RowBatch) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let result = self.write_part(rows).await;
        match &result {
            Ok(()) => self.update(|s| s.written(rows.len(), started.elapsed())),
            Err(e) => self.update(|s| s.failed(rows.len(), format!("{e:#}"))),
        }
        result
    }

    /// Writes `rows` like [`PostgresSink::write`], except that when the server rejects the
    /// batch for its data, the batch is bisected (each part its own transaction, in order)
    /// down to the rows it rejects; the others are written. Returns the index of each
    /// rejected row in `rows` with the server's reason.
    pub async fn write_or_reject(&self, rows: &RowBatch) -> anyhow::Result<Vec<(usize, String)>> {
        let started = Instant::now();
        let mut rejected = Vec::new();
        let mut pending = vec![(0, rows.len())];
        while let Some((start, end)) = pending.pop() {
            if start == end {
                continue;
            }
            let error = match self.write_part(&slice(rows, start, end)).await {
                Ok(()) => continue,
                Err(e) => e,
            };
            match error.downcast_ref::<Rejected>() {
                Some(r) if end - start == 1 => rejected.push((start, r.why.clone())),
                Some(_) => {
                    let middle = start + (end - start) / 2;
                    pending.extend([(middle, end), (start, middle)]);
                }
                None => {
                    self.update(|s| s.failed(end - start, format!("{error:#}")));
                    return Err(error);
                }
            }
        }
        self.update(|s| s.written(rows.len() - rejected.len(), started.elapsed()));
        if let Some((_, why)) = rejected.last() {
            tracing::warn!(
                "The postgres sink of pipeline `{}` wrote {} rows to table `{}` and rejected {}                  ({why}); they go to the dead letters.",
                self.settings.pipeline,
                rows.len() - rejected.len(),
                self.layout.table,
                rejected.len()
            );
            self.update(|s| s.rejected(rejected.len(), why.clone()));
        }
        Ok(rejected)
    }

    /// Rows written and failed so far, and the last error with its time.
    pub fn status(&self) -> PostgresStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Writes `rows` in one transaction, retrying on connection trouble; no status update.
    async fn write_part(&self, rows: &RowBatch) -> anyhow::Result<()> {
        let data = self.encode(rows)?;
        self.write_retrying(data, rows.len()).await
    }

    /// The rows as one binary COPY stream.
    fn encode(&self, rows: &RowBatch) -> anyhow::Result<Bytes> {
        if rows.schema.as_slice() != self.layout.fields.as_slice() {
            bail!(
                "the rows given to the postgres sink of table `{}` do not have the schema it was \
                 set up with",
                self.layout.table
            );
        }
        let (data, _) = copy::encode(&rows.schema, &self.layout.in_key, &rows.batch())
            .map_err(|e| anyhow!("the postgres sink cannot encode {e}"))?;
        Ok(data)
    }

    /// Writes one COPY stream, reconnecting and retrying while the trouble is transient.
    async fn write_retrying(&self, data: Bytes, rows: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut delay = RETRY_FIRST_DELAY;
        let mut session = self.session.lock().await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.attempt(&mut session, data.clone()).await {
                Ok(replaced) => {
                    self.replaced(replaced);
                    return Ok(());
                }
                Err(e) => e,
            };
            let table = &self.layout.table;
            let why = conn::describe(&error);
            if conn::is_row_error(&error) {
                return Err(Rejected {
                    rows,
                    table: table.to_string(),
                    why,
                }
                .into());
            }
            if !conn::is_transient(&error) {
                bail!(
                    "the postgres sink could not write {rows} rows to table `{table}`, and does \
                     not retry as this is no connection trouble: {why}"
                );
            }
            if started.elapsed() + delay > RETRY_FOR {
                bail!(
                    "the postgres sink could not write {rows} rows to table `{table}` at {} \
                     in {attempt} attempts over {} s: {why}",
                    self.url,
                    started.elapsed().as_secs()
                );
            }
            tracing::warn!(
                "The postgres sink of pipeline `{}` could not write {rows} rows to table \
                 `{table}` ({why}); it reconnects and retries in {delay:?} (attempt {attempt}).",
                self.settings.pipeline
            );
            self.update(|s| s.retried(why));
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RETRY_MAX_DELAY);
        }
    }

    /// One attempt: reuses the session when it is open, else opens one. The session is kept
    /// only after a successful write or a batch rejected for its data.
    async fn attempt(
        &self,
        session: &mut Option<Conn>,
        data: Bytes,
    ) -> Result<u64, tokio_postgres::Error> {
        let mut conn = match session.take() {
            Some(conn) if !conn.is_closed() => conn,
            _ => {
                let client = conn::open(&self.config, &self.settings.pipeline).await?;
                let conn = Conn::new(client, &self.layout).await?;
                tracing::info!(
                    "The postgres sink of pipeline `{}` opened a new connection.",
                    self.settings.pipeline
                );
                conn
            }
        };
        let result = conn.write(data, &self.settings.pipeline).await;
        // A batch the server rejected for its data was rolled back; the session is fine.
        if result.as_ref().is_ok() || result.as_ref().is_err_and(conn::is_row_error) {
            *session = Some(conn);
        }
        result
    }

    /// Makes rows that replaced other values of the same key visible: a result written twice
    /// with different values (a window closed before its data was complete, or a pipeline
    /// rerun with another config).
    fn replaced(&self, rows: u64) {
        if rows == 0 {
            return;
        }
        self.update(|s| s.rows_replaced += rows);
        tracing::warn!(
            "The postgres sink of pipeline `{}` replaced {rows} row(s) of table `{}` that held \
             other values for the same key: a result was written twice with different values.",
            self.settings.pipeline,
            self.layout.table
        );
    }

    /// Updates the status.
    fn update(&self, change: impl FnOnce(&mut PostgresStatus)) {
        change(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// The server rejected a batch for its data (not for connection trouble).
#[derive(Debug, thiserror::Error)]
#[error(
    "the postgres sink could not write {rows} rows to table `{table}`, and does not retry as \
     this is no connection trouble: {why}"
)]
pub struct Rejected {
    /// Rows in the batch.
    pub rows: usize,
    /// The table.
    pub table: String,
    /// The server's error.
    pub why: String,
}

/// Rows `start..end` of `rows`, as a batch of their own.
fn slice(rows: &RowBatch, start: usize, end: usize) -> RowBatch {
    let from = if start == 0 { 0 } else { rows.ends[start - 1] };
    let to = if end == 0 { 0 } else { rows.ends[end - 1] };
    RowBatch {
        schema: rows.schema.clone(),
        data: rows.data[from as usize..to as usize].to_vec(),
        ends: rows.ends[start..end].iter().map(|e| e - from).collect(),
        positions: rows.positions.get(start..end).unwrap_or_default().to_vec(),
    }
}

/// Opens a session, trying [`CONNECT_TRIES`] times while the trouble is transient.
async fn open_with_retry(config: &Config, pipeline: &str, url: &str) -> anyhow::Result<Client> {
    let mut delay = CONNECT_FIRST_DELAY;
    let mut attempt = 1;
    loop {
        let error = match conn::open(config, pipeline).await {
            Ok(client) => return Ok(client),
            Err(e) => e,
        };
        let why = conn::describe(&error);
        if attempt == CONNECT_TRIES || !conn::is_transient(&error) {
            bail!(
                "the postgres sink of pipeline `{pipeline}` could not connect to PostgreSQL at \
                 {url} ({attempt} attempts): {why}. Check that the server is running and \
                 reachable there, that the database and user exist and the user may log in, \
                 and that the sink's `url` (for example WAREHOUSE_URL) is right."
            );
        }
        tracing::warn!(
            "Pipeline `{pipeline}` could not connect to PostgreSQL at {url} ({why}); it tries \
             again in {delay:?} (attempt {attempt} of {CONNECT_TRIES})."
        );
        tokio::time::sleep(delay).await;
        delay *= 2;
        attempt += 1;
    }
}

/// Creates or checks the table, then readies the session for writes.
async fn set_up(
    client: Client,
    layout: &Layout,
    pipeline: &str,
    url: &str,
) -> anyhow::Result<Conn> {
    let created = table::prepare(&client, layout)
        .await
        .with_context(|| format!("the postgres sink could not set up `{}`", layout.table))?;
    if created {
        tracing::info!(
            "The postgres sink of pipeline `{pipeline}` created table `{}` at {url}.",
            layout.table
        );
    }
    Conn::new(client, layout).await.map_err(|e| {
        let why = conn::describe(&e);
        anyhow!("the postgres sink could not prepare its statements: {why}")
    })
}
