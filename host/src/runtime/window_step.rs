//! The window step of a chain: event time read from each row, lateness decided by the host
//! against the watermark (late rows dropped or dead-lettered), the plugin's `process` (whose
//! rows are early results, for live sinks only) and `advance` when the watermark moves.

use std::sync::Arc;
use std::time::Instant;

use sluice_plugin_sdk::rows::{BatchBuilder, Field, RowReader};

use super::chain::{
    Chain, ChainError, ChainErrorKind, ChainOutput, Flow, Split, append, describe_records,
};
use super::stage::is_violation;
use super::watermark::Watermarks;
use crate::sinks::RowBatch;
use crate::sources::SourceBatch;
use crate::spec::{Late, OnViolation};
use crate::wasm::{Batch, Plugin, PluginError, PluginOutput, Rows, WindowInstance};

/// The window step.
pub struct WindowStage {
    /// `steps[N] window`.
    pub label: String,
    /// The plugin.
    pub plugin: Arc<Plugin>,
    /// The running instance.
    pub instance: WindowInstance,
    /// Index of the event-time field in its input rows.
    pub event_time: usize,
    /// Its input schema.
    pub input: Vec<Field>,
    /// Window size and slide (ms).
    pub size: i64,
    /// Distance between window starts (ms).
    pub slide: i64,
    /// What to do with late rows.
    pub late: Late,
    /// What a trap or a broken limit does (`dlq` acts as `restart`: the state cannot be
    /// bisected once a call changed part of it).
    pub policy: OnViolation,
    /// How often early results go out (`emit.early`), if at all.
    pub early: Option<std::time::Duration>,
    /// Event time.
    pub watermarks: Watermarks,
    /// Counters for status and metrics.
    pub counters: Arc<super::counters::StageCounters>,
}

impl Chain {
    pub(super) fn run_window(
        &mut self,
        flow: Flow,
        source: &SourceBatch,
        out: &mut ChainOutput,
        results: &mut BatchBuilder,
    ) -> Result<(), ChainError> {
        let stage_index = self.pre.len();
        let window = self.window.as_mut().expect("window stage");
        for &p in &source.assigned {
            window.watermarks.assign(p);
        }
        let (on_time, late, bad) = self.split_late(flow, source);
        for (origin, reason) in bad {
            out.dead
                .push(self.letter(stage_index, Some(origin), source, reason));
        }
        for (origin, ts) in late {
            let window = self.window.as_ref().expect("window stage");
            if window.late == Late::Dlq {
                let mut letter = self.letter(
                    stage_index,
                    Some(origin),
                    source,
                    format!(
                        "late: event time {} is behind the watermark {}",
                        sluice_plugin_sdk::time::format_timestamp(ts),
                        sluice_plugin_sdk::time::format_timestamp(window.watermarks.current())
                    ),
                );
                letter.event_time = Some(sluice_plugin_sdk::time::format_timestamp(ts));
                out.dead.push(letter);
            } else {
                out.late_dropped += 1;
            }
        }
        let window = self.window.as_mut().expect("window stage");
        let wm = window.watermarks.current();
        let (label, policy) = (window.label.clone(), window.policy);
        let topic = &self.topic;
        let fatal = |error| {
            let records = describe_records(topic, source, &on_time.provenance);
            violation(&label, policy, error, &records)
        };
        let called = Instant::now();
        let result = window.instance.process(&on_time.rows, wm).map_err(&fatal)?;
        let failures: Vec<(Option<u32>, String)> = result
            .failures
            .iter()
            .map(|(i, reason)| (on_time.provenance.get(*i as usize).copied(), reason.clone()))
            .collect();
        let now = Instant::now();
        for &p in &source.at_end {
            window.watermarks.at_end(p, now);
        }
        for &p in &source.revoked {
            window.watermarks.revoke(p);
        }
        let new_wm = if source.end {
            window.watermarks.finish()
        } else {
            window.watermarks.update(now)
        };
        let (rows_before, bytes_before) = (results.ends.len(), results.data.len());
        if new_wm > wm {
            let closed = window.instance.advance(new_wm).map_err(&fatal)?;
            append(results, &closed);
        }
        window.counters.add(
            on_time.rows.len(),
            on_time.rows.byte_len(),
            results.ends.len() - rows_before,
            results.data.len() - bytes_before,
            failures.len(),
            called.elapsed(),
        );
        let memory = window.instance.memory_bytes() as u64;
        window
            .counters
            .memory_bytes
            .store(memory, std::sync::atomic::Ordering::Relaxed);
        // `process` results are early or updated values, never final ones: live sinks only.
        let schema = window.instance.output_schema();
        let early = take_early(
            &mut self.pending_early,
            &result,
            window.early,
            schema,
            new_wm,
        );
        out.early = early;
        out.watermark = new_wm;
        for (origin, reason) in failures {
            out.dead
                .push(self.letter(stage_index, origin, source, reason));
        }
        Ok(())
    }

    /// Reads each row's event time, updates the watermarks, and splits off late rows and
    /// rows without a readable event time.
    fn split_late(&mut self, flow: Flow, source: &SourceBatch) -> Split {
        let window = self.window.as_mut().expect("window stage");
        let wm = window.watermarks.current();
        let mut late = Vec::new();
        let mut bad = Vec::new();
        // Kept rows: (index in the batch, event time), observed once they are known to read.
        let mut kept: Vec<(u32, i64)> = Vec::with_capacity(flow.provenance.len());
        let origin = |i: usize| flow.provenance.get(i).copied().unwrap_or(u32::MAX);
        let (input, index) = (&window.input, window.event_time);
        let mut sort = |i: usize, ts: Result<i64, String>| match ts {
            Err(reason) => bad.push((origin(i), reason)),
            Ok(ts) if last_window_end(ts, window.slide, window.size) <= wm => {
                late.push((origin(i), ts))
            }
            Ok(ts) => kept.push((i as u32, ts)),
        };
        match &flow.rows {
            Rows::Packed(batch) => {
                let rows = sluice_plugin_sdk::rows::Batch::new(&batch.data, &batch.ends);
                for (i, row) in rows.rows().enumerate() {
                    sort(i, event_time(row, input, index));
                }
            }
            Rows::Columns(columns) => {
                let view = columns.view();
                let times = view.fixed::<i64>(index);
                let null = || format!("event-time field `{}` is null", input[index].name);
                for i in 0..view.len() {
                    let ts = times.as_ref().map_err(|e| e.message.clone());
                    sort(i, ts.and_then(|t| t.value(i).ok_or_else(null)));
                }
            }
        }
        let all = kept.len() == flow.rows.len();
        let (rows, unreadable) = match &flow.rows {
            _ if all => (None, Vec::new()),
            Rows::Packed(batch) => {
                let rows = sluice_plugin_sdk::rows::Batch::new(&batch.data, &batch.ends);
                let mut out = BatchBuilder::default();
                for &(i, _) in &kept {
                    out.data.extend_from_slice(rows.row(i as usize));
                    out.ends.push(out.data.len() as u32);
                }
                let batch = Batch {
                    data: out.data,
                    ends: out.ends,
                };
                (Some(Rows::Packed(batch)), Vec::new())
            }
            Rows::Columns(columns) => {
                let indices: Vec<u32> = kept.iter().map(|&(i, _)| i).collect();
                let (rows, unreadable) = columns.select(&indices);
                (Some(rows), unreadable)
            }
        };
        // Both lists ascend: drop the unreadable rows from the kept ones in one pass.
        let mut unread = unreadable.iter().peekable();
        let mut provenance = Vec::with_capacity(kept.len());
        for &(i, ts) in &kept {
            if unread.next_if(|(u, _)| *u == i).is_some() {
                continue;
            }
            let o = origin(i as usize);
            if let Some(&p) = source.partitions.get(o as usize) {
                window.watermarks.observe(p, ts);
            }
            provenance.push(o);
        }
        bad.extend(
            unreadable
                .into_iter()
                .map(|(i, reason)| (origin(i as usize), reason)),
        );
        let flow = match rows {
            None => flow,
            Some(rows) => Flow { rows, provenance },
        };
        (flow, late, bad)
    }
}

/// The chain error for a window call that failed: a trap or a broken limit follows the
/// step's policy (`fail` stops the pipeline, `restart` and `dlq` restart it from its last
/// checkpoint); an error the plugin returned stops it.
fn violation(label: &str, policy: OnViolation, error: PluginError, records: &str) -> ChainError {
    let kind = match policy {
        OnViolation::Restart | OnViolation::Dlq if is_violation(&error) => {
            ChainErrorKind::RestartFromCheckpoint
        }
        _ => ChainErrorKind::Fatal,
    };
    let policy = match policy {
        OnViolation::Dlq => "dlq",
        OnViolation::Restart => "restart",
        OnViolation::Fail => "fail",
    };
    ChainError {
        kind,
        stage: label.to_owned(),
        error,
        at: format!("on_violation: {policy}; while processing {records}"),
    }
}

/// Early rows waiting for their next release, and when the last one went out.
#[derive(Default)]
pub struct PendingEarly {
    rows: BatchBuilder,
    released: Option<Instant>,
    /// Rows left by the last compaction: the buffer is compacted again when it doubles.
    compacted: usize,
}

/// Rows the buffer may hold before it is first compacted.
const COMPACT_FROM: usize = 4096;

/// Gathers early rows and releases them at most every `every`. Only the newest row of each
/// (group, window) is kept, and rows of windows the watermark has closed are dropped: their
/// final value is already out (an older early value must not follow it). Both happen on
/// release and whenever the buffer has doubled since it was last compacted, so that a fast
/// replay does not pile up every early row of the interval: the buffer stays within about
/// twice the open (group, window) pairs.
fn take_early(
    pending: &mut PendingEarly,
    result: &PluginOutput,
    every: Option<std::time::Duration>,
    schema: &[Field],
    watermark: i64,
) -> Option<RowBatch> {
    let every = every?;
    append(&mut pending.rows, result);
    let due = pending.released.is_none_or(|t| t.elapsed() >= every);
    if !due || pending.rows.ends.is_empty() {
        if pending.rows.ends.len() > COMPACT_FROM.max(2 * pending.compacted) {
            pending.rows = newest_open(&pending.rows, schema, watermark);
            pending.compacted = pending.rows.ends.len();
        }
        return None;
    }
    pending.released = Some(Instant::now());
    pending.compacted = 0;
    let rows = std::mem::take(&mut pending.rows);
    let kept = newest_open(&rows, schema, watermark);
    (!kept.ends.is_empty()).then(|| RowBatch {
        schema: Arc::new(schema.to_vec()),
        data: kept.data,
        ends: kept.ends,
        positions: Vec::new(),
    })
}

/// The newest row per (group, window) among `rows`, without windows ending at or before
/// `watermark`. The identity of a row is its encoding up to `window_end`.
fn newest_open(rows: &BatchBuilder, schema: &[Field], watermark: i64) -> BatchBuilder {
    let Some(end_index) = schema.iter().position(|f| f.name == "window_end") else {
        return rows.clone();
    };
    let batch = rows.as_batch();
    let mut newest: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    let mut open = Vec::with_capacity(batch.len());
    for (i, row) in batch.rows().enumerate() {
        let mut reader = RowReader::new(row);
        let skipped = schema[..end_index].iter().all(|f| reader.skip(f).is_ok());
        let Ok(end) = reader.timestamp() else {
            continue;
        };
        if skipped && end > watermark {
            newest.insert(&row[..reader.position()], i);
            open.push(i);
        }
    }
    let newest: std::collections::HashSet<usize> = newest.into_values().collect();
    let mut kept = BatchBuilder::default();
    for i in open.into_iter().filter(|i| newest.contains(i)) {
        kept.data.extend_from_slice(batch.row(i));
        kept.ends.push(kept.data.len() as u32);
    }
    kept
}

/// The end of the last window (of `size`, every `slide`) that holds event time `ts`: a record
/// is late once the watermark has passed it. Saturates at the ends of time, so that an event
/// time near `i64::MAX` or `i64::MIN` (a bad record) cannot overflow.
fn last_window_end(ts: i64, slide: i64, size: i64) -> i64 {
    ts.div_euclid(slide)
        .saturating_mul(slide)
        .saturating_add(size)
}

/// Reads the `timestamp` field at `index` of a row.
fn event_time(row: &[u8], schema: &[Field], index: usize) -> Result<i64, String> {
    let mut reader = RowReader::new(row);
    for field in &schema[..index] {
        reader.skip(field).map_err(|e| e.to_string())?;
    }
    if schema[index].nullable && !reader.is_present().map_err(|e| e.to_string())? {
        return Err(format!("event-time field `{}` is null", schema[index].name));
    }
    reader.timestamp().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin_sdk::rows::FieldType;

    fn schema() -> Vec<Field> {
        vec![
            Field::new("station", FieldType::Str),
            Field::new("window_start", FieldType::Timestamp),
            Field::new("window_end", FieldType::Timestamp),
            Field::new("entries", FieldType::Int64),
        ]
    }

    /// One early row per station for the window ending at `end`, with value `v`.
    fn output(stations: usize, end: i64, v: i64) -> PluginOutput {
        let mut rows = BatchBuilder::new();
        for s in 0..stations {
            rows.put_str(&format!("s{s}"));
            rows.put_timestamp(end - 10);
            rows.put_timestamp(end);
            rows.put_i64(v);
            rows.end_row();
        }
        let (data, ends) = rows.into_parts();
        PluginOutput {
            rows: Rows::Packed(Batch { data, ends }),
            origins: Vec::new(),
            failures: Vec::new(),
        }
    }

    #[test]
    fn the_last_window_end_saturates_at_the_ends_of_time() {
        let (slide, size) = (4 * 3_600_000, 4 * 3_600_000);
        assert_eq!(last_window_end(1, slide, size), size);
        assert_eq!(last_window_end(-1, slide, size), 0);
        assert_eq!(last_window_end(i64::MAX, slide, size), i64::MAX);
        assert_eq!(last_window_end(i64::MIN, slide, size), i64::MIN + size);
        // Sliding windows: the last one starts at the slide at or before `ts`.
        assert_eq!(last_window_end(90, 60, 120), 180);
    }

    #[test]
    fn pending_early_rows_stay_bounded_and_the_newest_goes_out() {
        let (schema, every) = (schema(), Some(std::time::Duration::from_secs(3600)));
        let mut pending = PendingEarly::default();
        // The first call releases at once (nothing released yet); then 600 batches of 1,000
        // stations over 6 windows, within one interval (600,000 early rows).
        assert!(take_early(&mut pending, &output(1, 10, 0), every, &schema, 0).is_some());
        for i in 0..600 {
            let end = 100 + (i / 100) * 10;
            let released = take_early(&mut pending, &output(1000, end, i), every, &schema, 0);
            assert!(released.is_none());
            // At most twice the 6,000 (station, window) pairs, plus one batch.
            let held = pending.rows.ends.len();
            assert!(held <= 2 * 6 * 1000 + 1000, "{held} rows held");
        }
        // On release: the newest value of each (station, window) of windows still open.
        pending.released = None;
        let out = take_early(&mut pending, &output(0, 0, 0), every, &schema, 130).unwrap();
        assert_eq!(
            out.len(),
            2 * 1000,
            "the windows ending at 140 and 150 are open"
        );
        let values: std::collections::BTreeSet<i64> = out
            .batch()
            .rows()
            .map(|row| {
                let mut reader = RowReader::new(row);
                for field in &schema[..3] {
                    reader.skip(field).unwrap();
                }
                reader.i64().unwrap()
            })
            .collect();
        assert_eq!(values, [499, 599].into(), "the newest value of each window");
    }
}
