//! The processing chain of one pipeline: source records through the transform plugins, the
//! window plugin (with lateness decided by the host from the watermark) and the transforms
//! after it. Runs on a blocking thread; every output row is sent to the sinks, every record
//! a stage rejects becomes a dead letter with its provenance.

use std::sync::Arc;
use std::time::Instant;

use sluice_plugin_sdk::rows::{BatchBuilder, Field, RowReader};

use super::deadletter::DeadLetter;
use super::stage::TransformStage;
use super::watermark::Watermarks;
use crate::sinks::RowBatch;
use crate::sources::SourceBatch;
use crate::spec::Late;
use crate::wasm::{Batch, Plugin, PluginEngine, PluginError, PluginOutput, WindowInstance};

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
    /// How often early results go out (`emit.early`), if at all.
    pub early: Option<std::time::Duration>,
    /// Event time.
    pub watermarks: Watermarks,
}

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
    pub pending_early: (BatchBuilder, Option<Instant>),
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

/// A fatal error: the pipeline cannot go on (a stateful plugin broke).
#[derive(Debug, thiserror::Error)]
#[error("{stage}: {source}")]
pub struct ChainError {
    /// Which stage.
    pub stage: String,
    /// What happened.
    pub source: PluginError,
}

/// Rows kept, late rows (source index, event time) and rows without an event time
/// (source index, reason).
type Split = (Flow, Vec<(u32, i64)>, Vec<(u32, String)>);

/// Rows flowing through the chain, each with the index of the source record it came from.
struct Flow {
    batch: Batch,
    provenance: Vec<u32>,
}

impl Chain {
    /// Runs one source batch through every stage.
    pub fn process(&mut self, source: SourceBatch) -> Result<ChainOutput, ChainError> {
        let mut out = ChainOutput {
            records_in: source.len() as u64,
            ..Default::default()
        };
        let values = Batch {
            data: source.values.data.clone(),
            ends: source.values.ends.clone(),
        };
        let mut flow = Flow {
            provenance: (0..source.len() as u32).collect(),
            batch: values,
        };
        for i in 0..self.pre.len() {
            flow = self.run_transform(i, flow, &source, &mut out);
        }
        let mut results = BatchBuilder::default();
        if self.window.is_some() {
            self.run_window(flow, &source, &mut out, &mut results)?;
        } else {
            results.data = flow.batch.data;
            results.ends = flow.batch.ends;
        }
        self.finish(results, &mut out);
        Ok(out)
    }

    fn run_transform(
        &mut self,
        i: usize,
        flow: Flow,
        source: &SourceBatch,
        out: &mut ChainOutput,
    ) -> Flow {
        let stage = &mut self.pre[i];
        match stage.process(&self.engine, &flow.batch) {
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
                Flow {
                    batch: Batch {
                        data: result.data,
                        ends: result.ends,
                    },
                    provenance,
                }
            }
            Err(error) => {
                tracing::warn!(%error, stage = %stage.label, "A batch failed; its records go to the dead-letter destination.");
                for &origin in &flow.provenance {
                    out.dead
                        .push(self.letter(i, Some(origin), source, error.to_string()));
                }
                Flow {
                    batch: Batch {
                        data: Vec::new(),
                        ends: Vec::new(),
                    },
                    provenance: Vec::new(),
                }
            }
        }
    }

    fn letter(
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

    fn run_window(
        &mut self,
        flow: Flow,
        source: &SourceBatch,
        out: &mut ChainOutput,
        results: &mut BatchBuilder,
    ) -> Result<(), ChainError> {
        let stage_index = self.pre.len();
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
        let label = window.label.clone();
        let fatal = |source| ChainError {
            stage: label.clone(),
            source,
        };
        let result = window.instance.process(&on_time.batch, wm).map_err(fatal)?;
        let failures: Vec<(Option<u32>, String)> = result
            .failures
            .iter()
            .map(|(i, reason)| (on_time.provenance.get(*i as usize).copied(), reason.clone()))
            .collect();
        // `process` results are early or updated values, never final ones: live sinks only.
        let schema = window.instance.output_schema();
        if let Some(early) = take_early(&mut self.pending_early, &result, window.early, schema) {
            out.early = Some(early);
        }
        let now = Instant::now();
        for &p in &source.idle {
            window.watermarks.caught_up(p, now);
        }
        let new_wm = if source.end {
            window.watermarks.finish()
        } else {
            window.watermarks.update(now)
        };
        if new_wm > wm {
            let closed = window.instance.advance(new_wm).map_err(fatal)?;
            append(results, &closed);
        }
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
        let mut keep = Vec::with_capacity(flow.provenance.len());
        let rows = sluice_plugin_sdk::rows::Batch::new(&flow.batch.data, &flow.batch.ends);
        for (i, row) in rows.rows().enumerate() {
            let origin = flow.provenance.get(i).copied().unwrap_or(u32::MAX);
            let ts = match event_time(row, &window.input, window.event_time) {
                Ok(ts) => ts,
                Err(reason) => {
                    bad.push((origin, reason));
                    keep.push(false);
                    continue;
                }
            };
            let last_end = ts.div_euclid(window.slide) * window.slide + window.size;
            if last_end <= wm {
                late.push((origin, ts));
                keep.push(false);
                continue;
            }
            if let Some(&p) = source.partitions.get(origin as usize) {
                window.watermarks.observe(p, ts);
            }
            keep.push(true);
        }
        if late.is_empty() && bad.is_empty() {
            return (flow, late, bad);
        }
        let mut kept = BatchBuilder::default();
        let mut provenance = Vec::new();
        for (i, row) in rows.rows().enumerate() {
            if keep[i] {
                kept.data.extend_from_slice(row);
                kept.ends.push(kept.data.len() as u32);
                provenance.push(flow.provenance[i]);
            }
        }
        (
            Flow {
                batch: Batch {
                    data: kept.data,
                    ends: kept.ends,
                },
                provenance,
            },
            late,
            bad,
        )
    }

    /// Runs the transforms after the window and packages the rows for the sinks.
    fn finish(&mut self, results: BatchBuilder, out: &mut ChainOutput) {
        let mut batch = Batch {
            data: results.data,
            ends: results.ends,
        };
        for stage in &mut self.post {
            match stage.process(&self.engine, &batch) {
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
                    batch = Batch {
                        data: result.data,
                        ends: result.ends,
                    };
                }
                Err(error) => {
                    tracing::error!(%error, stage = %stage.label, "A batch of results failed.");
                    batch = Batch {
                        data: Vec::new(),
                        ends: Vec::new(),
                    };
                }
            }
        }
        if !batch.ends.is_empty() {
            out.rows = Some(RowBatch {
                schema: self.output.clone(),
                data: batch.data,
                ends: batch.ends,
            });
        }
    }
}

/// Gathers early rows and releases them at most every `every`.
fn take_early(
    pending: &mut (BatchBuilder, Option<Instant>),
    result: &PluginOutput,
    every: Option<std::time::Duration>,
    schema: &[Field],
) -> Option<RowBatch> {
    let every = every?;
    append(&mut pending.0, result);
    let due = pending.1.is_none_or(|t| t.elapsed() >= every);
    if !due || pending.0.ends.is_empty() {
        return None;
    }
    pending.1 = Some(Instant::now());
    let rows = std::mem::take(&mut pending.0);
    Some(RowBatch {
        schema: Arc::new(schema.to_vec()),
        data: rows.data,
        ends: rows.ends,
    })
}

fn append(results: &mut BatchBuilder, output: &PluginOutput) {
    let base = results.data.len() as u32;
    results.data.extend_from_slice(&output.data);
    results.ends.extend(output.ends.iter().map(|e| e + base));
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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
