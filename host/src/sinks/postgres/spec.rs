//! `- postgres: {...}`: the spec of the warehouse sink, its checks and its builder.

use serde::Deserialize;
use sluice_plugin_sdk::rows::Field;

use super::{PostgresSettings, PostgresSink};
use crate::sinks::{Endpoint, RowBatch, SinkConfig, SinkContext, SinkFuture, SinkWriter};

/// `- postgres: { url: "${WAREHOUSE_URL:-}", table: turnstile_windows, key: [station, window_start] }`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkSpec {
    /// `url: postgres://user@host:5432/db` (empty: the sink is skipped, with a log line)
    pub url: String,
    /// `table: turnstile_windows` (created if missing)
    pub table: String,
    /// `key: [station, window_start]` (upsert key: a replay never duplicates a row)
    pub key: Vec<String>,
}

impl PostgresSinkSpec {
    fn settings(&self, pipeline: &str) -> PostgresSettings {
        PostgresSettings {
            url: self.url.clone(),
            table: self.table.clone(),
            key: self.key.clone(),
            pipeline: pipeline.to_owned(),
        }
    }
}

impl SinkConfig for PostgresSinkSpec {
    fn check(&self, schema: &[Field], pipeline: &str) -> Result<(), String> {
        PostgresSink::check(&self.settings(pipeline), schema)
    }

    fn build<'a>(
        &'a self,
        schema: &'a [Field],
        ctx: &'a SinkContext<'a>,
    ) -> SinkFuture<'a, Option<Box<dyn SinkWriter>>> {
        Box::pin(async move {
            if self.disabled() {
                tracing::info!(pipeline = ctx.pipeline, table = %self.table,
                    "The postgres sink is skipped: its url is empty (set WAREHOUSE_URL to enable it).");
                return Ok(None);
            }
            let sink = PostgresSink::connect(self.settings(ctx.pipeline), schema).await?;
            Ok(Some(Box::new(sink) as Box<dyn SinkWriter>))
        })
    }

    fn endpoints(&self) -> Vec<Endpoint<'_>> {
        vec![Endpoint::Postgres {
            field: "url",
            url: &self.url,
        }]
    }

    fn disabled(&self) -> bool {
        self.url.trim().is_empty()
    }
}

impl SinkWriter for PostgresSink {
    fn write<'a>(
        &'a self,
        rows: &'a RowBatch,
        _task: Option<i32>,
    ) -> SinkFuture<'a, Vec<(usize, String)>> {
        Box::pin(self.write_or_reject(rows))
    }

    fn status(&self) -> serde_json::Value {
        serde_json::to_value(PostgresSink::status(self)).unwrap_or_default()
    }
}
