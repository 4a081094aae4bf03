//! The `postgres` sink's counters, last write and last error, as `status` reports them.

use std::time::{Duration, SystemTime};

use serde::Serialize;

/// What the sink has done, for status.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PostgresStatus {
    /// `ok`, `degraded` (retrying after connection trouble) or `failed` (a batch given up on).
    pub state: &'static str,
    /// The table written to.
    pub table: String,
    /// The server, without password.
    pub url: String,
    /// Rows committed.
    pub rows_written: u64,
    /// Rows of batches that could not be written.
    pub rows_failed: u64,
    /// Existing rows replaced with other values for the same key (a result written twice
    /// with different values).
    pub rows_replaced: u64,
    /// Batches committed.
    pub batches_written: u64,
    /// Write attempts retried after connection trouble.
    pub retries: u64,
    /// When the last batch was committed (RFC 3339, UTC).
    pub last_write_at: Option<String>,
    /// How long the last committed batch took, in milliseconds.
    pub last_write_ms: Option<u64>,
    /// The last error, retried or not.
    pub last_error: Option<String>,
    /// When it happened (RFC 3339, UTC).
    pub last_error_at: Option<String>,
}

impl PostgresStatus {
    /// Counts a committed batch.
    pub(super) fn written(&mut self, rows: usize, took: Duration) {
        self.state = "ok";
        self.rows_written += rows as u64;
        self.batches_written += 1;
        self.last_write_at = Some(now());
        self.last_write_ms = Some(took.as_millis() as u64);
    }

    /// Counts a batch given up on.
    pub(super) fn failed(&mut self, rows: usize, error: String) {
        self.state = "failed";
        self.rows_failed += rows as u64;
        self.last_error = Some(error);
        self.last_error_at = Some(now());
    }

    /// Counts rows the server rejected and that went to the dead letters.
    pub(super) fn rejected(&mut self, rows: usize, error: String) {
        self.rows_failed += rows as u64;
        self.last_error = Some(error);
        self.last_error_at = Some(now());
    }

    /// Counts a retried attempt.
    pub(super) fn retried(&mut self, error: String) {
        self.state = "degraded";
        self.retries += 1;
        self.last_error = Some(error);
        self.last_error_at = Some(now());
    }
}

/// The current time as RFC 3339 UTC, to the second.
fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
