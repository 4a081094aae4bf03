//! The typed events of a pipeline's live channel, as the dashboard and
//! `/api/v1/pipelines/{name}/live` receive them: one JSON object per event, tagged by `type`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// One event of a pipeline's live channel.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LiveEvent {
    /// Result rows: final window results, or early results of windows still open.
    Rows(RowsEvent),
    /// The pipeline's counters (twice a second while it runs).
    Stats(StatsEvent),
    /// The status of every sink and of the dead-letter destination (every second).
    Connectors(ConnectorsEvent),
    /// The pipeline's run state changed.
    State(StateEvent),
}

impl LiveEvent {
    /// The `type` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Rows(_) => "rows",
            Self::Stats(_) => "stats",
            Self::Connectors(_) => "connectors",
            Self::State(_) => "state",
        }
    }
}

/// `{"type": "rows", "final": bool, "rows": [{field: value}]}`
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RowsEvent {
    /// False for early results of a window still open.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Each row as a JSON object; timestamps as `YYYY-MM-DD HH:MM:SS` UTC.
    pub rows: Vec<Map<String, Json>>,
    /// The field that names a row's group (the first string field of the schema not named
    /// `window_*`), when the rows have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `{"type": "stats", ...}`: the pipeline's counters.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StatsEvent {
    pub records_in: u64,
    pub rows_out: u64,
    pub dead_letters: u64,
    pub late_dropped: u64,
    pub window_conflicts: u64,
    /// The pipeline's watermark (`YYYY-MM-DD HH:MM:SS`), none before the first record.
    pub watermark: Option<String>,
    /// Records in per second over the last interval.
    pub rate: f64,
}

/// `{"type": "connectors", "sinks": [...], "dlq": {...}}`: each sink's own status object
/// (`sink`, `rows_written`, `last_error`, ...) and the dead-letter destination's.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ConnectorsEvent {
    pub sinks: Vec<Json>,
    pub dlq: Json,
}

/// `{"type": "state", "state": "running" | "finished" | "paused" | "failed", ...}`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StateEvent {
    pub state: RunState,
    /// Why a pipeline paused (its dead-letter threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A pipeline run's state as the live channel reports it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Finished,
    Paused,
    Failed,
}
