//! `live` sink: rows (final window results and, when the window asks for them, early
//! results) are published as `rows` events on the pipeline's channel of the host's
//! [`LiveHub`] (the dashboard, `/api/v1/pipelines/{name}/live` and `/results`).

use serde::Deserialize;
use serde_json::{Map, Value as Json};
use sluice_plugin_sdk::rows::{Field, FieldType, Value, decode_row};

use crate::live::{LiveEvent, LiveHub, RowsEvent};

use super::{RowBatch, SinkConfig, SinkContext, SinkFuture, SinkWriter};

/// `- live: {}`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSinkSpec {}

impl SinkConfig for LiveSinkSpec {
    fn check(&self, _schema: &[Field], _pipeline: &str) -> Result<(), String> {
        Ok(())
    }

    fn build<'a>(
        &'a self,
        _schema: &'a [Field],
        ctx: &'a SinkContext<'a>,
    ) -> SinkFuture<'a, Option<Box<dyn SinkWriter>>> {
        let sink = LiveSink::new(ctx.pipeline, ctx.live);
        Box::pin(async move { Ok(Some(Box::new(sink) as Box<dyn SinkWriter>)) })
    }
}

impl SinkWriter for LiveSink {
    fn write<'a>(
        &'a self,
        rows: &'a RowBatch,
        _task: Option<i32>,
    ) -> SinkFuture<'a, Vec<(usize, String)>> {
        Box::pin(async move { self.publish(rows, true).map(|()| Vec::new()) })
    }

    fn wants_early(&self) -> bool {
        true
    }

    fn write_early<'a>(&'a self, rows: &'a RowBatch) -> SinkFuture<'a, ()> {
        Box::pin(async move { self.publish(rows, false) })
    }
}

/// Publishes rows to a pipeline's live channel.
pub struct LiveSink {
    pipeline: String,
    hub: LiveHub,
}

impl LiveSink {
    /// For `pipeline` on `hub`.
    pub fn new(pipeline: &str, hub: &LiveHub) -> Self {
        hub.register(pipeline);
        Self {
            pipeline: pipeline.to_owned(),
            hub: hub.clone(),
        }
    }

    /// Publishes `rows` as one `rows` event; `is_final` is false for early results.
    pub fn publish(&self, rows: &RowBatch, is_final: bool) -> anyhow::Result<()> {
        let mut objects = Vec::with_capacity(rows.len());
        for row in rows.batch().rows() {
            objects.push(row_object(&rows.schema, row)?);
        }
        let key = rows
            .schema
            .iter()
            .find(|f| f.ty == FieldType::Str && !f.name.starts_with("window_"))
            .map(|f| f.name.clone());
        let event = RowsEvent {
            is_final,
            rows: objects,
            key,
        };
        self.hub.publish(&self.pipeline, LiveEvent::Rows(event));
        Ok(())
    }
}

/// A row as a JSON object; timestamps as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn row_object(schema: &[Field], row: &[u8]) -> anyhow::Result<Map<String, Json>> {
    let mut object = Map::new();
    for (field, value) in schema.iter().zip(decode_row(schema, row)?) {
        let json = match value {
            Value::Null => Json::Null,
            Value::Str(s) => Json::from(s),
            Value::Bytes(b) => Json::from(String::from_utf8_lossy(b).into_owned()),
            Value::Int64(v) => Json::from(v),
            Value::Float64(v) => Json::from(v),
            Value::Boolean(v) => Json::from(v),
            Value::Timestamp(ms) => Json::from(sluice_plugin_sdk::time::format_timestamp(ms)),
        };
        object.insert(field.name.clone(), json);
    }
    Ok(object)
}
