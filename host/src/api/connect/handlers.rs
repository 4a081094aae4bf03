//! The handlers of the Connect face: each asks the manager and answers with the bodies of
//! [`super::views`]; errors are [`ApiError`]s, turned into Connect's error body by the routes.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use warp::Reply;
use warp::http::StatusCode;
use warp::reply::Response;

use super::config::{self, CLASS, ConfigMap, Mapped};
use super::views::{self, ConnectorInfo, ConnectorOffsets, KafkaOffset, KafkaPartition, TaskId};
use super::{empty, json};
use crate::api::error::ApiError;
use crate::api::state::ApiState;
use crate::manager::{Manager, OffsetsRequest, State};
use crate::sources::kafka::StartFrom;
use crate::spec::SourceSpec;

type Answer = Result<Response, ApiError>;

/// What every handler shares.
#[derive(Clone)]
pub struct Connect {
    state: ApiState,
    /// This listener's address (Connect's `worker_id`).
    worker: String,
}

/// `POST /connectors` body.
#[derive(Deserialize)]
struct NewConnector {
    name: Option<String>,
    #[serde(default)]
    config: ConfigMap,
    /// Connect's `initial_state`: RUNNING (default), PAUSED or STOPPED.
    #[serde(default)]
    initial_state: Option<String>,
}

impl Connect {
    pub fn new(state: ApiState, worker: String) -> Self {
        Self { state, worker }
    }

    fn manager(&self) -> &Manager {
        &self.state.manager
    }

    /// `GET /`
    pub fn root(&self) -> Answer {
        // sluice keeps no Kafka cluster of its own: say whether the host is alone or one of a
        // cluster (`--cluster`).
        let cluster = match self.manager().cluster() {
            Some(_) => "sluice-cluster",
            None => "sluice-standalone",
        };
        Ok(json(&json!({
            "version": env!("CARGO_PKG_VERSION"),
            "commit": option_env!("SLUICE_COMMIT").unwrap_or(""),
            "kafka_cluster_id": cluster,
        })))
    }

    /// `GET /connectors[?expand=status&expand=info]`
    pub async fn list(&self, query: &str) -> Answer {
        let names = self.manager().names();
        let expand: Vec<String> = pairs(query)
            .filter(|(k, _)| k == "expand" || k == "expand[]")
            .map(|(_, v)| v)
            .collect();
        if !pairs(query).any(|(k, _)| k == "expand" || k == "expand[]") {
            return Ok(json(&names));
        }
        let mut all = serde_json::Map::new();
        for name in names {
            let mut item = serde_json::Map::new();
            if expand.iter().any(|e| e == "status") {
                item.insert(
                    "status".into(),
                    serde_json::to_value(self.status(&name).await?).unwrap_or_default(),
                );
            }
            if expand.iter().any(|e| e == "info") {
                item.insert(
                    "info".into(),
                    serde_json::to_value(self.info(&name).await?).unwrap_or_default(),
                );
            }
            all.insert(name, item.into());
        }
        Ok(json(&all))
    }

    /// `POST /connectors`
    pub async fn create(&self, body: Bytes) -> Answer {
        let new: NewConnector = parse(&body)?;
        let name = new
            .name
            .or_else(|| new.config.get("name").cloned())
            .ok_or_else(|| {
                bad("The body names no connector: give `name` (Connect's {\"name\", \"config\"}).")
            })?;
        let hold = match new
            .initial_state
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("RUNNING") => None,
            Some("PAUSED") => Some(State::Paused),
            Some("STOPPED") => Some(State::Stopped),
            Some(other) => {
                return Err(bad(format!(
                    "`initial_state` is `{other}`; it is RUNNING, PAUSED or STOPPED."
                )));
            }
        };
        let text = config::to_spec(&name, &new.config).map_err(bad)?;
        self.manager().create(&text).await?;
        match hold {
            Some(State::Paused) => drop(self.manager().pause(&name).await?),
            Some(_) => drop(self.manager().stop(&name).await?),
            None => {}
        }
        let info = self.info(&name).await?;
        Ok(created(&name, &info))
    }

    /// `PUT /connectors/{name}/config`
    pub async fn put_config(&self, name: &str, body: Bytes) -> Answer {
        let config: ConfigMap = parse(&body)?;
        let text = config::to_spec(name, &config).map_err(bad)?;
        let (_, was_created) = self.manager().put(name, &text).await?;
        let info = self.info(name).await?;
        Ok(if was_created {
            created(name, &info)
        } else {
            json(&info)
        })
    }

    /// The connector's info: name, config map, tasks and type.
    pub async fn info(&self, name: &str) -> Result<ConnectorInfo, ApiError> {
        let raw = self.manager().raw(name).ok_or_else(|| not_found(name))?;
        let loaded = self.manager().loaded(name);
        let spec = loaded.as_ref().map(|l| &l.spec);
        let topic = spec.and_then(|s| match &s.source {
            SourceSpec::Kafka(k) => Some(k.topic.as_str()),
            _ => None,
        });
        let config = config::to_config(&Mapped {
            raw: &raw,
            name,
            topic,
            parallelism: spec.and_then(|s| s.parallelism),
        });
        let status = self.manager().status(name).await?;
        let tasks = status.tasks.len().max(1);
        Ok(ConnectorInfo {
            name: name.to_owned(),
            config,
            tasks: (0..tasks)
                .map(|task| TaskId {
                    connector: name.to_owned(),
                    task,
                })
                .collect(),
            kind: kind(topic.is_some()),
        })
    }

    /// The connector's and its tasks' states.
    pub async fn status(&self, name: &str) -> Result<views::ConnectorStateInfo, ApiError> {
        let status = self
            .manager()
            .status(name)
            .await
            .map_err(|_| not_found(name))?;
        let kafka = self.kafka_topic(name).is_some();
        Ok(views::state_info(name, kind(kafka), &status, &self.worker))
    }

    /// `PUT /connectors/{name}/pause|resume|stop`
    pub async fn action(&self, name: &str, action: &str) -> Answer {
        self.exists(name)?;
        match action {
            "pause" => drop(self.manager().pause(name).await?),
            "resume" => drop(self.manager().resume(name).await?),
            "stop" => {
                self.manager().stop(name).await?;
                return Ok(empty(StatusCode::NO_CONTENT));
            }
            _ => {
                return Err(ApiError::not_found(
                    "not_found",
                    format!("No such endpoint: PUT /connectors/{name}/{action}."),
                ));
            }
        }
        Ok(empty(StatusCode::ACCEPTED))
    }

    /// `POST /connectors/{name}/restart[?includeTasks=true&onlyFailed=true]`: the pipeline's
    /// run restarts (its tasks with it).
    pub async fn restart(&self, name: &str, query: &str) -> Answer {
        let flag =
            |key: &str| pairs(query).any(|(k, v)| k == key && v.eq_ignore_ascii_case("true"));
        let (include_tasks, only_failed) = (flag("includeTasks"), flag("onlyFailed"));
        let mut states = self.status(name).await?;
        if !include_tasks && !only_failed {
            self.manager().restart(name).await?;
            return Ok(empty(StatusCode::NO_CONTENT));
        }
        // Connect's rule: the connector restarts unless only failed ones are asked for and it
        // has not failed; a task restarts when tasks are included and (with onlyFailed) it
        // failed. Here they share one run, which restarts when anything is to restart.
        let mut any = false;
        if !only_failed || states.connector.state == "FAILED" {
            states.connector.state = "RESTARTING";
            any = true;
        }
        for task in &mut states.tasks {
            if include_tasks && (!only_failed || task.state.state == "FAILED") {
                task.state.state = "RESTARTING";
                any = true;
            }
        }
        if !any {
            return Ok(accepted(&states));
        }
        self.manager().restart(name).await?;
        Ok(accepted(&states))
    }

    /// `GET /connectors/{name}/tasks`
    pub async fn tasks(&self, name: &str) -> Answer {
        let info = self.info(name).await?;
        let tasks: Vec<views::TaskInfo> = info
            .tasks
            .into_iter()
            .map(|id| {
                let mut config = info.config.clone();
                config.insert("task.id".into(), id.task.to_string());
                views::TaskInfo { id, config }
            })
            .collect();
        Ok(json(&tasks))
    }

    /// `GET /connectors/{name}/tasks/{id}/status`
    pub async fn task_status(&self, name: &str, task: usize) -> Answer {
        let states = self.status(name).await?;
        let found = states.tasks.into_iter().find(|t| t.id == task);
        found.map(|t| json(&t)).ok_or_else(|| {
            ApiError::not_found("task_not_found", format!("Task {name}-{task} not found."))
        })
    }

    /// `POST /connectors/{name}/tasks/{id}/restart`: the tasks of a pipeline share its run,
    /// which restarts.
    pub async fn task_restart(&self, name: &str, task: usize) -> Answer {
        let states = self.status(name).await?;
        if !states.tasks.iter().any(|t| t.id == task) {
            return Err(ApiError::not_found(
                "task_not_found",
                format!("Task {name}-{task} not found."),
            ));
        }
        self.manager().restart(name).await?;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    /// `GET /connectors/{name}/topics`: the topics it reads and writes.
    pub async fn topics(&self, name: &str) -> Answer {
        let loaded = self.manager().loaded(name).ok_or_else(|| not_found(name))?;
        let mut topics: Vec<String> = Vec::new();
        if let SourceSpec::Kafka(k) = &loaded.spec.source {
            topics.push(k.topic.clone());
        }
        for sink in &loaded.spec.sinks {
            if let crate::sinks::SinkSpec::Kafka(k) = sink {
                topics.push(k.topic.clone());
            }
        }
        topics.sort();
        topics.dedup();
        Ok(json(&json!({ name: { "topics": topics } })))
    }

    /// `GET /connectors/{name}/offsets` (KIP-875): the committed offsets of its group.
    pub async fn offsets(&self, name: &str) -> Answer {
        self.exists(name)?;
        let topic = self.kafka_topic(name).unwrap_or_default();
        let offsets = self.manager().offsets(name).await?;
        let offsets = offsets
            .into_iter()
            .map(|p| views::PartitionOffset {
                partition: KafkaPartition {
                    kafka_topic: topic.clone(),
                    kafka_partition: p.partition,
                },
                offset: Some(KafkaOffset {
                    kafka_offset: p.offset,
                }),
            })
            .collect();
        Ok(json(&ConnectorOffsets { offsets }))
    }

    /// `PATCH /connectors/{name}/offsets` (stopped only).
    pub async fn alter_offsets(&self, name: &str, body: Bytes) -> Answer {
        let topic = self.stopped_kafka(name)?;
        let wanted: ConnectorOffsets = parse(&body)?;
        if wanted.offsets.is_empty() {
            return Err(bad("The offsets to alter are empty."));
        }
        let mut partitions = Vec::new();
        for p in wanted.offsets {
            if p.partition.kafka_topic != topic {
                return Err(bad(format!(
                    "Connector {name} reads topic `{topic}`, not `{}`.",
                    p.partition.kafka_topic
                )));
            }
            let Some(offset) = p.offset else {
                return Err(bad(format!(
                    "A null offset (partition {}) resets one partition, which sluice does not do; \
                     DELETE /connectors/{name}/offsets resets them all.",
                    p.partition.kafka_partition
                )));
            };
            partitions.push(crate::manager::PartitionOffset {
                partition: p.partition.kafka_partition,
                offset: offset.kafka_offset,
            });
        }
        self.manager()
            .set_offsets(name, OffsetsRequest::Partitions(partitions))
            .await?;
        Ok(json(
            &json!({ "message": "The offsets for this connector have been altered successfully" }),
        ))
    }

    /// `DELETE /connectors/{name}/offsets` (stopped only): back to where a group without
    /// offsets starts (the spec's `start`), with empty window state.
    pub async fn reset_offsets(&self, name: &str) -> Answer {
        self.stopped_kafka(name)?;
        let latest = self.manager().loaded(name).is_some_and(
            |l| matches!(&l.spec.source, SourceSpec::Kafka(k) if k.start == StartFrom::Latest),
        );
        let request = if latest {
            OffsetsRequest::Latest
        } else {
            OffsetsRequest::Earliest
        };
        self.manager().set_offsets(name, request).await?;
        Ok(json(
            &json!({ "message": "The offsets for this connector have been reset successfully" }),
        ))
    }

    /// `DELETE /connectors/{name}`
    pub async fn delete(&self, name: &str) -> Answer {
        self.exists(name)?;
        self.manager().delete(name).await?;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    /// `GET /connector-plugins[?connectorsOnly=false]`: the pipeline class, and with
    /// `connectorsOnly=false` each installed wasm plugin as a transformation.
    pub fn plugins(&self, query: &str) -> Answer {
        let connectors_only =
            !pairs(query).any(|(k, v)| k == "connectorsOnly" && v.eq_ignore_ascii_case("false"));
        let version = env!("CARGO_PKG_VERSION").to_owned();
        let mut plugins = vec![
            views::PluginInfo {
                class: CLASS.into(),
                kind: "sink",
                version: version.clone(),
            },
            views::PluginInfo {
                class: CLASS.into(),
                kind: "source",
                version,
            },
        ];
        if !connectors_only {
            plugins.extend(self.state.registry.all().map(|p| views::PluginInfo {
                class: format!("io.sluice.plugin.{}", p.name),
                kind: "transformation",
                version: p.version.to_string(),
            }));
        }
        Ok(json(&plugins))
    }

    fn exists(&self, name: &str) -> Result<(), ApiError> {
        self.manager()
            .state(name)
            .map(drop)
            .ok_or_else(|| not_found(name))
    }

    fn kafka_topic(&self, name: &str) -> Option<String> {
        match self.manager().loaded(name)?.spec.source {
            SourceSpec::Kafka(k) => Some(k.topic),
            _ => None,
        }
    }

    /// The topic of a stopped connector reading Kafka; 400 otherwise (Connect changes
    /// offsets of stopped connectors only).
    fn stopped_kafka(&self, name: &str) -> Result<String, ApiError> {
        let state = self.manager().state(name).ok_or_else(|| not_found(name))?;
        if state != State::Stopped {
            return Err(bad(format!(
                "Connectors must be in the STOPPED state before their offsets can be modified; \
                 {name} is {} (PUT /connectors/{name}/stop).",
                views::connect_state(state)
            )));
        }
        self.kafka_topic(name).ok_or_else(|| {
            bad(format!(
                "Connector {name} does not read Kafka: it has no offsets to change."
            ))
        })
    }
}

fn kind(kafka_source: bool) -> &'static str {
    if kafka_source { "sink" } else { "source" }
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found("connector_not_found", format!("Connector {name} not found"))
}

fn bad(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("bad_request", message.to_string())
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "The body is not valid JSON of the expected shape: {e}."
        ))
    })
}

/// 201 with `Location: /connectors/{name}`.
fn created(name: &str, info: &ConnectorInfo) -> Response {
    let location = format!(
        "/connectors/{}",
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
    );
    let reply = warp::reply::with_status(warp::reply::json(info), StatusCode::CREATED);
    warp::reply::with_header(reply, "location", location).into_response()
}

/// 202 with the states.
fn accepted(states: &views::ConnectorStateInfo) -> Response {
    warp::reply::with_status(warp::reply::json(states), StatusCode::ACCEPTED).into_response()
}

/// The decoded `key=value` pairs of a query string.
fn pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(k), decode(v))
    })
}
