//! The connectors of a pipeline — its source and its sinks — each with its own status: the
//! source's topic, group and lag (Kafka), files or listening address; a sink's status as
//! its run last published it (rows written, retries, last error where the sink tracks them).
//!
//! Sources and sinks live inside the pipeline's run, so restarting one connector restarts
//! the run (the source resumes from its committed offsets); there is no finer restart.

use serde::Serialize;
use serde_json::{Value as Json, json};

use super::state::State;
use super::{Manager, ManagerError};
use crate::spec::SinkSpec;

/// One connector of a pipeline.
#[derive(Debug, Serialize)]
pub struct Connector {
    /// `source`, or the sink's kind (`lake`, `postgres`, ...), with `-2`, `-3` for a second
    /// and third sink of the same kind.
    pub name: String,
    /// `source` or `sink`.
    pub kind: &'static str,
    /// `kafka`, `file`, `http`, `lake`, `postgres`, `kafka`, `live`, `stdout`.
    #[serde(rename = "type")]
    pub kind_type: String,
    /// The pipeline's state, `degraded` for a running sink that reports an error, or
    /// `disabled` for a sink its spec turns off.
    pub state: String,
    /// Connector-specific status.
    pub status: Json,
}

fn sink_type(sink: &SinkSpec) -> &'static str {
    sink.key()
}

impl Manager {
    /// The connectors of `name`.
    pub async fn connectors(&self, name: &str) -> Result<Vec<Connector>, ManagerError> {
        let loaded = self
            .loaded(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        let state = self.state(name).unwrap_or(State::Stopped).as_str();
        let source = loaded.spec.source.config();
        let source_type = loaded.spec.source.key();
        let mut status = source.status(name);
        if source.kafka().is_some() {
            status["lag"] = serde_json::to_value(self.lag(name).await).unwrap_or_default();
        }
        let mut all = vec![Connector {
            name: "source".into(),
            kind: "source",
            kind_type: source_type.into(),
            state: state.into(),
            status,
        }];
        let published = self
            .host()
            .live
            .connectors(name)
            .map(|c| Json::Array(c.sinks))
            .unwrap_or_default();
        let published = published.as_array().cloned().unwrap_or_default();
        for (i, sink) in loaded.spec.sinks.iter().enumerate() {
            let kind = sink_type(sink);
            let nth = loaded.spec.sinks[..i]
                .iter()
                .filter(|s| sink_type(s) == kind)
                .count();
            let status = published
                .iter()
                .filter(|s| s["sink"] == kind)
                .nth(nth)
                .cloned();
            let disabled = sink.config().disabled();
            let degraded = status.as_ref().is_some_and(|s| !s["last_error"].is_null());
            let sink_state = if disabled {
                "disabled"
            } else if degraded && state == "running" {
                "degraded"
            } else {
                state
            };
            all.push(Connector {
                name: if nth == 0 {
                    kind.to_owned()
                } else {
                    format!("{kind}-{}", nth + 1)
                },
                kind: "sink",
                kind_type: kind.into(),
                state: sink_state.into(),
                status: status.unwrap_or_else(|| json!({ "sink": kind })),
            });
        }
        Ok(all)
    }

    /// Restarts `connector` of `name`: the pipeline's run is restarted (see the module doc);
    /// returns the connector as it is after the restart was asked for.
    pub async fn restart_connector(
        &self,
        name: &str,
        connector: &str,
    ) -> Result<Connector, ManagerError> {
        let connectors = self.connectors(name).await?;
        if !connectors.iter().any(|c| c.name == connector) {
            let names: Vec<&str> = connectors.iter().map(|c| c.name.as_str()).collect();
            return Err(ManagerError::ConnectorNotFound {
                pipeline: name.to_owned(),
                connector: connector.to_owned(),
                known: names.join(", "),
            });
        }
        self.restart(name).await?;
        let mut connectors = self.connectors(name).await?;
        let index = connectors.iter().position(|c| c.name == connector);
        Ok(connectors.swap_remove(index.unwrap_or(0)))
    }
}
