//! Per-stage counters of a running chain (records in/out/failed, bytes, plugin call time,
//! first and last batch time), shared with the control plane for status and `/metrics`.
//! Stages only add to them; readers load them at any time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::wasm::PluginOutput;

/// Counters of one stage.
#[derive(Debug, Default)]
pub struct StageCounters {
    /// Rows handed to the plugin.
    pub records_in: AtomicU64,
    /// Rows it returned.
    pub records_out: AtomicU64,
    /// Rows it rejected (per-record failures, or the whole batch on a trap or limit).
    pub failed: AtomicU64,
    /// Bytes of the rows handed to it.
    pub bytes_in: AtomicU64,
    /// Bytes of the rows it returned.
    pub bytes_out: AtomicU64,
    /// Plugin calls.
    pub calls: AtomicU64,
    /// Time spent in plugin calls (ns).
    pub call_nanos: AtomicU64,
    /// Linear memory of the plugin instance (bytes), as last reported by its store.
    pub memory_bytes: AtomicU64,
    /// Wall-clock time (ms since the epoch) of the first and of the latest non-empty batch;
    /// 0 before any.
    pub first_batch_ms: AtomicI64,
    /// See `first_batch_ms`.
    pub last_batch_ms: AtomicI64,
}

impl StageCounters {
    /// Counts one call over `input_rows` rows of `input_bytes`, its result and duration.
    pub fn observe<E>(
        &self,
        input_rows: usize,
        input_bytes: usize,
        result: &Result<PluginOutput, E>,
        elapsed: Duration,
    ) {
        let (out, out_bytes, failed) = match result {
            Ok(o) => (o.rows.len(), o.rows.byte_len(), o.failures.len()),
            Err(_) => (0, 0, input_rows),
        };
        self.add(input_rows, input_bytes, out, out_bytes, failed, elapsed);
    }

    /// Adds the figures of one call.
    pub fn add(
        &self,
        input_rows: usize,
        input_bytes: usize,
        output_rows: usize,
        output_bytes: usize,
        failed: usize,
        elapsed: Duration,
    ) {
        let relaxed = Ordering::Relaxed;
        self.records_in.fetch_add(input_rows as u64, relaxed);
        self.records_out.fetch_add(output_rows as u64, relaxed);
        self.failed.fetch_add(failed as u64, relaxed);
        self.bytes_in.fetch_add(input_bytes as u64, relaxed);
        self.bytes_out.fetch_add(output_bytes as u64, relaxed);
        self.calls.fetch_add(1, relaxed);
        self.call_nanos
            .fetch_add(elapsed.as_nanos() as u64, relaxed);
        if input_rows > 0 {
            let now = now_ms();
            let _ = self
                .first_batch_ms
                .compare_exchange(0, now, relaxed, relaxed);
            self.last_batch_ms.store(now, relaxed);
        }
    }
}

/// One stage of a chain as the control plane sees it.
#[derive(Clone, Debug)]
pub struct StageInfo {
    /// `steps[N] transform name@version`.
    pub stage: String,
    /// `name@version`.
    pub plugin: String,
    /// Its counters.
    pub counters: Arc<StageCounters>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
