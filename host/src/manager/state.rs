//! What the manager keeps per pipeline ([`Entry`]) and the JSON views the API returns of it:
//! the list item, the status (state, per-stage counters, lag, watermark, last error) and the
//! whole pipeline (spec and status).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value as Json;

use crate::runtime::{StageInfo, Stats};
use crate::spec::{Loaded, SpecError};

/// The life cycle of a pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Connecting its source and sinks.
    Starting,
    /// Consuming.
    Running,
    /// Stopped by a pause; `resume` continues from the committed offsets.
    Paused,
    /// Stopped (host shutting down, or its spec never validated).
    Stopped,
    /// Its run ended with an error, or it could not start.
    Failed,
    /// Its source ended (a file source, or `--once`) and everything was written.
    Finished,
}

impl State {
    /// The name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Paused => "paused",
            State::Stopped => "stopped",
            State::Failed => "failed",
            State::Finished => "finished",
        }
    }

    /// Every state, for metrics.
    pub const ALL: [State; 6] = [
        State::Starting,
        State::Running,
        State::Paused,
        State::Stopped,
        State::Failed,
        State::Finished,
    ];
}

/// An error with the time it happened.
#[derive(Clone, Debug, Serialize)]
pub struct Note {
    /// What happened.
    pub message: String,
    /// When (RFC 3339, UTC).
    pub time: String,
}

impl Note {
    /// `message`, now.
    pub fn now(message: impl Into<String>) -> Self {
        Self {
            message: crate::redact::text(&message.into()),
            time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        }
    }
}

/// A running (or stopping) run of a pipeline.
pub struct Run {
    /// The runtime's stop flag.
    pub stop: Arc<AtomicBool>,
    /// Set when the manager asked the run to stop (so its end is not "finished").
    pub requested: Arc<AtomicBool>,
    /// The supervising task.
    pub task: tokio::task::JoinHandle<()>,
    /// Where a new chain can be handed to the running one (set once it runs).
    pub swap: Option<SwapTarget>,
}

/// What building a replacement chain for a running pipeline needs: its swap handle and the
/// source's topic and partitions.
#[derive(Clone)]
pub struct SwapTarget {
    /// The running pipeline's swap handle.
    pub swap: crate::runtime::ChainSwap,
    /// Source topic (provenance of dead letters).
    pub topic: String,
    /// Source partitions (per-partition watermarks).
    pub partitions: Vec<i32>,
}

impl Run {
    /// Asks the run to stop and waits until it has (the final flush and checkpoint included).
    pub async fn stop(self) {
        self.requested.store(true, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "A pipeline task panicked while stopping.");
        }
    }
}

/// The last switch from one run to the next (replace, restart, resume).
#[derive(Clone, Debug, Serialize)]
pub struct Switch {
    /// When the switch was asked for (RFC 3339).
    pub time: String,
    /// Time between the old run's last batch and the new run's first batch (ms).
    pub pause_ms: u64,
}

/// One pipeline of the manager.
pub struct Entry {
    /// Its spec file in the pipelines folder.
    pub file: PathBuf,
    /// The file's text as written (not interpolated).
    pub raw: String,
    /// SHA-256 of `raw`.
    pub hash: String,
    /// The spec in force; `None` while its file has never validated.
    pub loaded: Option<Loaded>,
    /// Current state.
    pub state: State,
    /// A state a user asked to stay in (`paused`): a spec change does not start it.
    pub held: bool,
    /// The last error of a run, a start or a reload.
    pub last_error: Option<Note>,
    /// Why the file's latest text was refused (the running version stays).
    pub spec_errors: Vec<SpecError>,
    /// The current run.
    pub run: Option<Run>,
    /// Bumped by every start; a run only reports into the entry of its own generation.
    pub generation: u64,
    /// Counters of the current (or last) run.
    pub stats: Option<Arc<Stats>>,
    /// Stages of the current (or last) run.
    pub stages: Vec<StageInfo>,
    /// The last switch between runs and the longest pause seen.
    pub switch: Option<Switch>,
    /// The longest consumption pause of any switch (ms).
    pub longest_pause_ms: u64,
    /// The summary of the last run that ended without error (`sluice run --once` prints it).
    pub summary: Option<String>,
    /// The last run could not start (its source or a sink unreachable, a plugin refused).
    pub start_failed: bool,
}

impl Entry {
    /// A new entry for `file`, not started.
    pub fn new(file: PathBuf, raw: String, hash: String, loaded: Option<Loaded>) -> Self {
        Self {
            file,
            raw,
            hash,
            loaded,
            state: State::Stopped,
            held: false,
            last_error: None,
            spec_errors: Vec::new(),
            run: None,
            generation: 0,
            stats: None,
            stages: Vec::new(),
            switch: None,
            longest_pause_ms: 0,
            summary: None,
            start_failed: false,
        }
    }

    /// Plugins of its stages (`name@version`), or what its spec's references resolve to in
    /// `registry` before a run.
    pub fn plugins(&self, registry: &crate::wasm::Registry) -> Vec<String> {
        if !self.stages.is_empty() {
            return self.stages.iter().map(|s| s.plugin.clone()).collect();
        }
        self.loaded
            .as_ref()
            .map(|loaded| plugins_of(registry, &loaded.spec))
            .unwrap_or_default()
    }

    /// The spec as JSON (from the text as written: `${VAR}` stay unexpanded, so secrets from
    /// the environment are not shown).
    pub fn spec_json(&self) -> Json {
        serde_yaml::from_str::<Json>(&self.raw).unwrap_or(Json::Null)
    }

    /// Current watermark (ms) of the run, if it has one.
    pub fn watermark_ms(&self) -> Option<i64> {
        let wm = self.stats.as_ref()?.watermark.load(Ordering::Relaxed);
        (wm != i64::MIN && wm != i64::MAX).then_some(wm)
    }
}

/// `GET /api/v1/pipelines` item.
#[derive(Debug, Serialize)]
pub struct ListItem {
    /// Pipeline name.
    pub name: String,
    /// State.
    pub state: State,
    /// Spec file.
    pub file: String,
    /// Plugins of its steps.
    pub plugins: Vec<String>,
    /// Last error.
    pub last_error: Option<Note>,
    /// A shadow run is on (`GET /api/v1/pipelines/{name}/shadow`).
    pub shadow: bool,
}

/// Counters of one stage.
#[derive(Debug, Serialize)]
pub struct StageView {
    /// `steps[N] kind name@version`.
    pub stage: String,
    /// `name@version`.
    pub plugin: String,
    /// Rows in.
    pub records_in: u64,
    /// Rows out.
    pub records_out: u64,
    /// Rows failed (dead-lettered).
    pub failed: u64,
    /// Time spent in plugin calls (s).
    pub call_seconds: f64,
    /// Linear memory of its plugin instance (bytes).
    pub memory_bytes: u64,
}

impl From<&StageInfo> for StageView {
    fn from(info: &StageInfo) -> Self {
        let c = &info.counters;
        Self {
            stage: info.stage.clone(),
            plugin: info.plugin.clone(),
            records_in: c.records_in.load(Ordering::Relaxed),
            records_out: c.records_out.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            call_seconds: Duration::from_nanos(c.call_nanos.load(Ordering::Relaxed)).as_secs_f64(),
            memory_bytes: c.memory_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Consumer lag of one source partition.
#[derive(Clone, Debug, Serialize)]
pub struct Lag {
    /// Partition.
    pub partition: i32,
    /// Committed offset of the group (next record to read); -1 when none.
    pub offset: i64,
    /// High watermark (offset after the last record).
    pub end: i64,
    /// `end - offset`.
    pub lag: i64,
}

/// A refused spec: where and why.
#[derive(Debug, Serialize)]
pub struct SpecErrorView {
    /// 1-based line (0: unknown).
    pub line: usize,
    /// 1-based column (0: unknown).
    pub column: usize,
    /// The field path when the message names one.
    pub path: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl From<&SpecError> for SpecErrorView {
    fn from(e: &SpecError) -> Self {
        // serde reports a field path first (`sinks[0].lake: unknown field ...`).
        let path = e
            .message
            .split_once(": ")
            .map(|(p, _)| p)
            .filter(|p| !p.contains(' ') && !p.is_empty())
            .map(str::to_owned);
        Self {
            line: e.line,
            column: e.column,
            path,
            message: e.to_string(),
        }
    }
}

/// `status` of `GET /api/v1/pipelines/{name}`.
#[derive(Debug, Serialize)]
pub struct StatusView {
    /// State.
    pub state: State,
    /// Per-stage counters.
    pub stages: Vec<StageView>,
    /// Consumer lag per partition (Kafka sources).
    pub lag: Vec<Lag>,
    /// Current watermark (`YYYY-MM-DD HH:MM:SS` UTC).
    pub watermark: Option<String>,
    /// Wall clock minus the watermark (s).
    pub watermark_delay_seconds: Option<f64>,
    /// Records read, rows written, dead letters, late records dropped.
    pub records_in: u64,
    /// Rows written to the sinks.
    pub rows_out: u64,
    /// Records dead-lettered.
    pub dead_letters: u64,
    /// Late records dropped.
    pub late_dropped: u64,
    /// Final windows emitted again with other values (always a bug; see the log).
    pub window_conflicts: u64,
    /// The pipeline's tasks on this host, the source partitions each owns and those whose
    /// work failed for good.
    pub tasks: Vec<crate::cluster::TaskRecord>,
    /// Last error.
    pub last_error: Option<Note>,
    /// Why the latest text of its file was refused (empty when it was accepted).
    pub spec_errors: Vec<SpecErrorView>,
    /// The last switch between runs (replace, restart, resume).
    pub switch: Option<Switch>,
    /// The longest consumption pause of any switch so far (ms).
    pub longest_switch_pause_ms: u64,
}

/// `GET /api/v1/pipelines/{name}`.
#[derive(Debug, Serialize)]
pub struct Detail {
    /// Name.
    pub name: String,
    /// Spec file.
    pub file: String,
    /// The spec in force (as written).
    pub spec: Json,
    /// Status.
    pub status: StatusView,
}

/// Builds the status view of `entry` (lag is filled in by the caller).
pub fn status_view(entry: &Entry, lag: Vec<Lag>) -> StatusView {
    let load = |f: fn(&Stats) -> u64| entry.stats.as_deref().map_or(0, f);
    let watermark = entry.watermark_ms();
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    StatusView {
        state: entry.state,
        stages: entry.stages.iter().map(StageView::from).collect(),
        lag,
        watermark: watermark.map(sluice_plugin_sdk::time::format_timestamp),
        watermark_delay_seconds: watermark.map(|wm| (now_ms - wm) as f64 / 1000.0),
        records_in: load(|s| s.records_in.load(Ordering::Relaxed)),
        rows_out: load(|s| s.rows_out.load(Ordering::Relaxed)),
        dead_letters: load(|s| s.dead_letters.load(Ordering::Relaxed)),
        late_dropped: load(|s| s.late_dropped.load(Ordering::Relaxed)),
        window_conflicts: load(|s| s.window_conflicts.load(Ordering::Relaxed)),
        tasks: entry
            .stats
            .as_deref()
            .map(crate::cluster::TaskRecord::of)
            .unwrap_or_default(),
        last_error: entry.last_error.clone(),
        spec_errors: entry.spec_errors.iter().map(SpecErrorView::from).collect(),
        switch: entry.switch.clone(),
        longest_switch_pause_ms: entry.longest_pause_ms,
    }
}

/// The ids (`name@version`) of the plugins the steps of `spec` resolve to now; references
/// that resolve to nothing are left out.
pub fn plugins_of(
    registry: &crate::wasm::Registry,
    spec: &crate::spec::PipelineSpec,
) -> Vec<String> {
    use crate::spec::StepSpec;
    let mut ids: Vec<String> = spec
        .steps
        .iter()
        .map(|step| match step {
            StepSpec::Transform(t) => &t.plugin,
            StepSpec::Window(w) => &w.plugin,
        })
        .filter_map(|reference| registry.resolve(reference).ok())
        .map(|plugin| plugin.id())
        .collect();
    ids.dedup();
    ids
}
