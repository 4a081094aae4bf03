//! The JSON bodies of the Kafka Connect REST API (Apache Kafka's `ServerInfo`,
//! `ConnectorInfo`, `ConnectorStateInfo`, `TaskInfo`, `ConnectorOffsets`, `PluginInfo` and
//! `ErrorMessage`), built from the manager's view of a pipeline.

use serde::{Deserialize, Serialize};

use super::config::ConfigMap;
use crate::manager::{State, StatusView};

/// `{"connector": "turnstile", "task": 0}`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TaskId {
    pub connector: String,
    pub task: usize,
}

/// `GET /connectors/{name}`, `POST /connectors`, `PUT /connectors/{name}/config`.
#[derive(Debug, Serialize)]
pub struct ConnectorInfo {
    pub name: String,
    pub config: ConfigMap,
    pub tasks: Vec<TaskId>,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// The state of a connector or of one task.
#[derive(Clone, Debug, Serialize)]
pub struct StateInfo {
    pub state: &'static str,
    pub worker_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// `GET /connectors/{name}/tasks/{id}/status`
#[derive(Clone, Debug, Serialize)]
pub struct TaskState {
    pub id: usize,
    #[serde(flatten)]
    pub state: StateInfo,
}

/// `GET /connectors/{name}/status`
#[derive(Debug, Serialize)]
pub struct ConnectorStateInfo {
    pub name: String,
    pub connector: StateInfo,
    pub tasks: Vec<TaskState>,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// One item of `GET /connectors/{name}/tasks`.
#[derive(Debug, Serialize)]
pub struct TaskInfo {
    pub id: TaskId,
    pub config: ConfigMap,
}

/// `{"kafka_topic": "t", "kafka_partition": 0}` (a sink connector's source partition).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaPartition {
    pub kafka_topic: String,
    pub kafka_partition: i32,
}

/// `{"kafka_offset": 5}`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaOffset {
    pub kafka_offset: i64,
}

/// One partition's offset of `GET/PATCH /connectors/{name}/offsets`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PartitionOffset {
    pub partition: KafkaPartition,
    /// `null` in a PATCH resets the partition (to where a group without offsets starts).
    pub offset: Option<KafkaOffset>,
}

/// `GET /connectors/{name}/offsets` and the body of its `PATCH`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConnectorOffsets {
    pub offsets: Vec<PartitionOffset>,
}

/// `GET /connector-plugins` item.
#[derive(Debug, Serialize)]
pub struct PluginInfo {
    pub class: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub version: String,
}

/// The state names of Connect for a pipeline's state. A pipeline whose source ended
/// (`finished`) has no running tasks, like a stopped connector.
pub fn connect_state(state: State) -> &'static str {
    match state {
        State::Starting => "UNASSIGNED",
        State::Running => "RUNNING",
        State::Paused => "PAUSED",
        State::Stopped | State::Finished => "STOPPED",
        State::Failed => "FAILED",
    }
}

/// The connector and task states of a pipeline's status. Until the run reports its tasks
/// there is one task (0); a stopped connector has none (as in Connect).
pub fn state_info(
    name: &str,
    kind: &'static str,
    status: &StatusView,
    worker: &str,
) -> ConnectorStateInfo {
    let state = connect_state(status.state);
    let trace = (status.state == State::Failed)
        .then(|| status.last_error.as_ref().map(|n| n.message.clone()))
        .flatten();
    let info = |state, trace| StateInfo {
        state,
        worker_id: worker.to_owned(),
        trace,
    };
    let tasks = if state == "STOPPED" {
        Vec::new()
    } else if status.tasks.is_empty() {
        vec![TaskState {
            id: 0,
            state: info(state, trace.clone()),
        }]
    } else {
        status
            .tasks
            .iter()
            .map(|task| {
                let failed = (!task.failed.is_empty()).then(|| {
                    let each: Vec<String> = task
                        .failed
                        .iter()
                        .map(|f| format!("partition {}: {}", f.partition, f.error))
                        .collect();
                    each.join("\n")
                });
                let task_state = if failed.is_some() { "FAILED" } else { state };
                TaskState {
                    id: task.task,
                    state: info(task_state, failed.or_else(|| trace.clone())),
                }
            })
            .collect()
    };
    ConnectorStateInfo {
        name: name.to_owned(),
        connector: info(state, trace),
        tasks,
        kind,
    }
}

/// `{"error_code": 404, "message": "..."}`
#[derive(Debug, Serialize)]
pub struct ErrorMessage {
    pub error_code: u16,
    pub message: String,
}
