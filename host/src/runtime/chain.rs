//! The processing chain of one pipeline: source records through the transform plugins, the
//! window plugin (with lateness decided by the host from the watermark) and the transforms
//! after it. Runs on a blocking thread; every output row is sent to the sinks, every record
//! a stage rejects becomes a dead letter with its provenance.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use sluice_plugin_sdk::rows::{BatchBuilder, Field, RowReader};

use super::deadletter::DeadLetter;
use super::stage::{StageError, TransformStage};
pub use super::window_step::WindowStage;
use crate::sinks::RowBatch;
use crate::sources::SourceBatch;
use crate::wasm::{Batch, PluginEngine, PluginError, PluginOutput, Rows};

/// Everything between the source and the sinks.
pub struct Chain {
    /// Pipeline name.
    pub pipeline: String,
    /// Source topic, for provenance.
    pub topic: String,
    /// Transforms before the window.
    pub pre: Vec<TransformStage>,
    /// The window, if any.
    pub window: Option<WindowStage>,
    /// Transforms after the window.
    pub post: Vec<TransformStage>,
    /// Schema of the rows sent to sinks.
    pub output: Arc<Vec<Field>>,
    /// The engine (to restart stateless stages).
    pub engine: Arc<PluginEngine>,
    /// Early results gathered since they last went out, and when that was.
    pub pending_early: super::window_step::PendingEarly,
}

/// What one source batch turned into.
#[derive(Default)]
pub struct ChainOutput {
    /// Rows for the sinks.
    pub rows: Option<RowBatch>,
    /// Early (not final) window results, for live sinks only.
    pub early: Option<RowBatch>,
    /// Records that failed.
    pub dead: Vec<DeadLetter>,
    /// Late records dropped.
    pub late_dropped: u64,
    /// Records read from the source.
    pub records_in: u64,
    /// Watermark after the batch.
    pub watermark: i64,
}

/// What the pipeline must do after a [`ChainError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainErrorKind {
    /// Stop, with state `failed` and the error as the reason.
    Fatal,
    /// Restart from the last checkpoint: new plugin instances, state restored from the
    /// checkpoint's snapshots, the source re-read from the checkpoint's offsets (a stateful
    /// plugin trapped or broke a limit under `on_violation: restart` or `dlq`).
    RestartFromCheckpoint,
}

/// The chain cannot go on with this batch.
#[derive(Debug, thiserror::Error)]
#[error("{stage}: {error} ({at})")]
pub struct ChainError {
    /// Stop, or restart from the last checkpoint.
    pub kind: ChainErrorKind,
    /// Which stage.
    pub stage: String,
    /// What happened (in the message, not a separate cause: `{:#}` would repeat it).
    pub error: PluginError,
    /// The policy and the records involved, in words (`on_violation: fail; record at …`).
    pub at: String,
}

/// Rows kept, late rows (source index, event time) and rows without an event time
/// (source index, reason).
pub(super) type Split = (Flow, Vec<(u32, i64)>, Vec<(u32, String)>);

/// Rows flowing through the chain, each with the index of the source record it came from.
pub(super) struct Flow {
    pub(super) rows: Rows,
    pub(super) provenance: Vec<u32>,
}

impl Chain {
    /// Lets each transform before the window hand its output to the next step as columns
    /// when both are 0.2 plugins, so their batches pass without the host re-encoding rows;
    /// every other output is packed for the host (0.1 plugins, sinks, the steps after the
    /// window, which get the window's few result rows).
    pub fn link_columns(&mut self) {
        let window = self.window.as_ref().map(|w| w.instance.takes_columns());
        for i in 0..self.pre.len() {
            let next = match self.pre.get(i + 1) {
                Some(stage) => stage.takes_columns(),
                None => window.unwrap_or(false),
            };
            self.pre[i].keep_columns(next);
        }
    }

    /// Runs one source batch through every stage.
    pub fn process(&mut self, source: SourceBatch) -> Result<ChainOutput, ChainError> {
        self.process_rows(source, None)
    }

    /// Runs one source batch through every stage; with `rows`, the first stage gets those
    /// rows (one per source record, in the chain's input schema, see `plan::chain_over`)
    /// instead of the records' raw values, which then serve only to quote dead letters.
    pub fn process_rows(
        &mut self,
        mut source: SourceBatch,
        rows: Option<Batch>,
    ) -> Result<ChainOutput, ChainError> {
        let out = ChainOutput {
            records_in: source.len() as u64,
            ..Default::default()
        };
        if let Some(rows) = rows {
            let flow = Flow {
                provenance: (0..source.len() as u32).collect(),
                rows: Rows::Packed(rows),
            };
            return self.run_flow(flow, source, out, false);
        }
        // The source's values are lent to the first step and given back right after its
        // call (see `run_transform`), not copied; only a window reading the raw records
        // (no transform before it) gets a copy, since its dead letters quote the records
        // after the values have moved on.
        let values = if self.pre.is_empty() && self.window.is_some() {
            Batch {
                data: source.values.data.clone(),
                ends: source.values.ends.clone(),
            }
        } else {
            Batch {
                data: std::mem::take(&mut source.values.data),
                ends: std::mem::take(&mut source.values.ends),
            }
        };
        let flow = Flow {
            provenance: (0..source.len() as u32).collect(),
            rows: Rows::Packed(values),
        };
        self.run_flow(flow, source, out, true)
    }

    /// Runs `flow` (the rows of `source`'s records) through every stage; `lent`: the flow
    /// holds the source's own values, which the first step gives back.
    fn run_flow(
        &mut self,
        mut flow: Flow,
        mut source: SourceBatch,
        mut out: ChainOutput,
        lent: bool,
    ) -> Result<ChainOutput, ChainError> {
        for i in 0..self.pre.len() {
            flow = self.run_transform(i, flow, &mut source, &mut out, lent)?;
        }
        let mut results = BatchBuilder::default();
        let mut positions = Vec::new();
        if self.window.is_some() {
            self.run_window(flow, &source, &mut out, &mut results)?;
        } else {
            positions = flow
                .provenance
                .iter()
                .map(|&o| source.position(o as usize))
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default();
            // The last transform packs its output for the host (see `Chain::link_columns`).
            match flow.rows.into_packed() {
                Ok(batch) => {
                    results.data = batch.data;
                    results.ends = batch.ends;
                }
                Err(e) => tracing::error!(pipeline = %self.pipeline, error = %e,
                    "Rows of the last step did not read; they are left out."),
            }
        }
        self.finish(results, positions, &mut out)?;
        Ok(out)
    }

    fn run_transform(
        &mut self,
        i: usize,
        flow: Flow,
        source: &mut SourceBatch,
        out: &mut ChainOutput,
        lent: bool,
    ) -> Result<Flow, ChainError> {
        let stage = &mut self.pre[i];
        let called = Instant::now();
        let result = stage.process(&self.engine, &flow.rows);
        let (rows, bytes) = (flow.rows.len(), flow.rows.byte_len());
        if i == 0
            && lent
            && let Rows::Packed(values) = flow.rows
        {
            // The first step read the source's own values: they go back for provenance.
            source.values.data = values.data;
            source.values.ends = values.ends;
        }
        let source = &*source;
        stage
            .counters
            .observe(rows, bytes, &result, called.elapsed());
        let memory = stage.memory_bytes() as u64;
        stage.counters.memory_bytes.store(memory, Ordering::Relaxed);
        let error = match result {
            Ok(result) => {
                for (index, reason) in &result.failures {
                    let origin = flow.provenance.get(*index as usize).copied();
                    out.dead
                        .push(self.letter(i, origin, source, reason.clone()));
                }
                let provenance = result
                    .origins
                    .iter()
                    .map(|&o| flow.provenance.get(o as usize).copied().unwrap_or(u32::MAX))
                    .collect();
                return Ok(Flow {
                    rows: result.rows,
                    provenance,
                });
            }
            Err(StageError::Fatal { error, index }) => {
                let records: Vec<u32> = match index {
                    Some(i) => flow
                        .provenance
                        .get(i as usize)
                        .copied()
                        .into_iter()
                        .collect(),
                    None => flow.provenance.clone(),
                };
                return Err(ChainError {
                    kind: ChainErrorKind::Fatal,
                    stage: stage.label.clone(),
                    error,
                    at: format!(
                        "on_violation: fail; {}",
                        describe_records(&self.topic, source, &records)
                    ),
                });
            }
            Err(StageError::Batch(error)) => error,
        };
        tracing::warn!(%error, stage = %stage.label, "A batch failed; its records go to the dead-letter destination.");
        for &origin in &flow.provenance {
            out.dead
                .push(self.letter(i, Some(origin), source, error.to_string()));
        }
        Ok(Flow {
            rows: Rows::empty(),
            provenance: Vec::new(),
        })
    }

    /// Every stage with its counters, in order (for status and metrics).
    pub fn stages(&self) -> Vec<super::counters::StageInfo> {
        let info = |stage: &str, plugin: String, counters: &Arc<_>| super::counters::StageInfo {
            stage: stage.to_owned(),
            plugin,
            counters: Arc::clone(counters),
        };
        let mut all: Vec<_> = self
            .pre
            .iter()
            .map(|s| info(&s.label, s.plugin.id(), &s.counters))
            .collect();
        if let Some(w) = &self.window {
            all.push(info(&w.label, w.plugin.id(), &w.counters));
        }
        all.extend(
            self.post
                .iter()
                .map(|s| info(&s.label, s.plugin.id(), &s.counters)),
        );
        all
    }

    pub(super) fn letter(
        &self,
        stage: usize,
        origin: Option<u32>,
        source: &SourceBatch,
        reason: String,
    ) -> DeadLetter {
        let (label, plugin, hash) = self.stage_identity(stage);
        let origin = origin.map(|o| o as usize).filter(|&o| o < source.len());
        let record = origin.map_or_else(String::new, |o| {
            let bytes = RowReader::new(source.values_row(o))
                .bytes()
                .unwrap_or_default();
            String::from_utf8_lossy(bytes).into_owned()
        });
        DeadLetter {
            pipeline: self.pipeline.clone(),
            stage: label,
            plugin,
            plugin_hash: hash,
            topic: self.topic.clone(),
            partition: origin.map_or(-1, |o| source.partitions[o]),
            offset: origin.map_or(-1, |o| source.offsets[o]),
            event_time: None,
            reason,
            record,
            time_ms: now_ms(),
        }
    }

    /// Label, plugin id and hash of stage `i` (pre transforms, then the window).
    fn stage_identity(&self, i: usize) -> (String, String, String) {
        if let Some(stage) = self.pre.get(i) {
            return (
                stage.label.clone(),
                stage.plugin.id(),
                stage.plugin.hash.clone(),
            );
        }
        match &self.window {
            Some(w) => (w.label.clone(), w.plugin.id(), w.plugin.hash.clone()),
            None => ("source".into(), String::new(), String::new()),
        }
    }

    /// Runs the transforms after the window and packages the rows for the sinks, with the
    /// source `positions` of the rows where each comes from one record (no window).
    fn finish(
        &mut self,
        results: BatchBuilder,
        mut positions: Vec<(i32, i64)>,
        out: &mut ChainOutput,
    ) -> Result<(), ChainError> {
        if !self.post.is_empty() {
            positions.clear();
        }
        let mut batch = Rows::Packed(Batch {
            data: results.data,
            ends: results.ends,
        });
        for stage in &mut self.post {
            let called = Instant::now();
            let result = stage.process(&self.engine, &batch);
            let (rows, bytes) = (batch.len(), batch.byte_len());
            stage
                .counters
                .observe(rows, bytes, &result, called.elapsed());
            let memory = stage.memory_bytes() as u64;
            stage.counters.memory_bytes.store(memory, Ordering::Relaxed);
            match result {
                Ok(result) => {
                    for (_, reason) in &result.failures {
                        out.dead.push(DeadLetter {
                            pipeline: self.pipeline.clone(),
                            stage: stage.label.clone(),
                            plugin: stage.plugin.id(),
                            plugin_hash: stage.plugin.hash.clone(),
                            topic: self.topic.clone(),
                            partition: -1,
                            offset: -1,
                            event_time: None,
                            reason: reason.clone(),
                            record: String::new(),
                            time_ms: now_ms(),
                        });
                    }
                    batch = result.rows;
                }
                Err(StageError::Fatal { error, .. }) => {
                    return Err(ChainError {
                        kind: ChainErrorKind::Fatal,
                        stage: stage.label.clone(),
                        error,
                        at: "on_violation: fail; a row of window results".into(),
                    });
                }
                Err(StageError::Batch(error)) => {
                    tracing::error!(%error, stage = %stage.label, "A batch of results failed.");
                    batch = Rows::empty();
                }
            }
        }
        let batch = batch.into_packed().unwrap_or_else(|e| {
            tracing::error!(pipeline = %self.pipeline, error = %e,
                "Rows of the last step did not read; they are left out.");
            Batch {
                data: Vec::new(),
                ends: Vec::new(),
            }
        });
        if !batch.ends.is_empty() {
            out.rows = Some(RowBatch {
                schema: self.output.clone(),
                data: batch.data,
                ends: batch.ends,
                positions,
            });
        }
        Ok(())
    }
}

/// The source records at `indices`, in words: `record at <topic> partition 0 offset 7`, or
/// `N records at <topic> partition 0 offsets 3-9` (per partition).
pub(super) fn describe_records(topic: &str, source: &SourceBatch, indices: &[u32]) -> String {
    let mut ranges: std::collections::BTreeMap<i32, (i64, i64, usize)> = Default::default();
    for &i in indices.iter().filter(|&&i| (i as usize) < source.len()) {
        let (p, o) = (source.partitions[i as usize], source.offsets[i as usize]);
        let range = ranges.entry(p).or_insert((o, o, 0));
        *range = (range.0.min(o), range.1.max(o), range.2 + 1);
    }
    match ranges.len() {
        0 => "no source record".into(),
        1 if indices.len() == 1 => {
            let (p, (o, _, _)) = ranges.into_iter().next().expect("one range");
            format!("record at {topic} partition {p} offset {o}")
        }
        _ => {
            let parts: Vec<String> = ranges
                .into_iter()
                .map(|(p, (a, b, n))| format!("{n} records at partition {p} offsets {a}-{b}"))
                .collect();
            format!("{} of {topic}", parts.join(", "))
        }
    }
}

/// Appends the rows of a window call (packed: a window's output always is) to `results`.
pub(super) fn append(results: &mut BatchBuilder, output: &PluginOutput) {
    let Ok(rows) = output.rows.to_packed() else {
        tracing::error!("Window results did not read; they are left out.");
        return;
    };
    let base = results.data.len() as u32;
    results.data.extend_from_slice(&rows.data);
    results.ends.extend(rows.ends.iter().map(|e| e + base));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
