//! `live` sink and the hub behind `/api/v1/pipelines/{name}/live`: rows (final window results
//! and, when the window asks for them, early results) and pipeline statistics are published
//! as JSON events to every subscriber. The hub keeps the most recent events so that a client
//! connecting mid-run (the dashboard) starts with the current picture.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::{Map, Value as Json};
use sluice_plugin_sdk::rows::{Field, Value, decode_row};
use tokio::sync::broadcast;

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

/// The recent events of a channel and a receiver for the next ones.
pub type Subscription = (Vec<Arc<str>>, broadcast::Receiver<Arc<str>>);

/// Events kept for clients that connect later: at most this many...
const RECENT: usize = 256;
/// ...and at most this many bytes of them (the newest event is always kept): a rows event of
/// the turnstile pipeline is ~50 KB, so this holds the last ~40 windows.
const RECENT_BYTES: usize = 2 << 20;

/// One pipeline's live channel.
struct Channel {
    tx: broadcast::Sender<Arc<str>>,
    recent: VecDeque<Arc<str>>,
    /// Bytes in `recent`.
    recent_bytes: usize,
    /// The latest event of each type other than `rows` (`stats`, `connectors`, `state`).
    latest: HashMap<String, Json>,
}

impl Channel {
    fn new() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            recent: VecDeque::new(),
            recent_bytes: 0,
            latest: HashMap::new(),
        }
    }
}

/// Live event channels of every pipeline of the host.
#[derive(Clone, Default)]
pub struct LiveHub {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl LiveHub {
    /// Publishes `event` (a JSON object) on `pipeline`'s channel.
    /// Events other than `rows` (stats, connectors, state) have their credentials masked.
    pub fn publish(&self, pipeline: &str, event: &Json) {
        let mut redacted;
        let event = if event["type"] == "rows" {
            event
        } else {
            redacted = event.clone();
            crate::redact::json(&mut redacted);
            &redacted
        };
        let text: Arc<str> = Arc::from(event.to_string());
        let mut channels = self.channels.lock().expect("live hub lock");
        let channel = channels
            .entry(pipeline.to_owned())
            .or_insert_with(Channel::new);
        channel.recent_bytes += text.len();
        channel.recent.push_back(text.clone());
        while channel.recent.len() > RECENT
            || (channel.recent_bytes > RECENT_BYTES && channel.recent.len() > 1)
        {
            if let Some(old) = channel.recent.pop_front() {
                channel.recent_bytes -= old.len();
            }
        }
        let _ = channel.tx.send(text);
        if let Some(kind) = event["type"].as_str().filter(|k| *k != "rows") {
            channel.latest.insert(kind.to_owned(), event.clone());
        }
    }

    /// The latest event of type `kind` of `pipeline`.
    pub fn latest(&self, pipeline: &str, kind: &str) -> Option<Json> {
        let channels = self.channels.lock().expect("live hub lock");
        channels.get(pipeline)?.latest.get(kind).cloned()
    }

    /// Declares a pipeline (so that subscribing before its first event works).
    pub fn register(&self, pipeline: &str) {
        let mut channels = self.channels.lock().expect("live hub lock");
        channels
            .entry(pipeline.to_owned())
            .or_insert_with(Channel::new);
    }

    /// The recent events and a receiver for the next ones; `None` for an unknown pipeline.
    pub fn subscribe(&self, pipeline: &str) -> Option<Subscription> {
        let channels = self.channels.lock().expect("live hub lock");
        let channel = channels.get(pipeline)?;
        Some((
            channel.recent.iter().cloned().collect(),
            channel.tx.subscribe(),
        ))
    }

    /// Names of the pipelines with a channel, sorted.
    pub fn pipelines(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .channels
            .lock()
            .expect("live hub lock")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
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
            objects.push(Json::Object(row_object(&rows.schema, row)?));
        }
        let event = serde_json::json!({ "type": "rows", "final": is_final, "rows": objects });
        self.hub.publish(&self.pipeline, &event);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replayed_history_is_bounded_in_count_and_bytes() {
        let hub = LiveHub::default();
        let big = "x".repeat(100_000);
        for i in 0..100 {
            hub.publish(
                "p",
                &serde_json::json!({ "type": "rows", "i": i, "pad": big }),
            );
        }
        let (recent, _) = hub.subscribe("p").unwrap();
        let bytes: usize = recent.iter().map(|e| e.len()).sum();
        assert!(bytes <= RECENT_BYTES, "{bytes} bytes kept");
        assert!(
            recent.len() > 1 && recent.len() < 100,
            "{} kept",
            recent.len()
        );
        assert!(
            recent.last().unwrap().contains("\"i\":99"),
            "the newest is kept"
        );
        for i in 0..300 {
            hub.publish("p", &serde_json::json!({ "type": "stats", "i": i }));
        }
        assert_eq!(hub.subscribe("p").unwrap().0.len(), RECENT);
        let huge = "y".repeat(RECENT_BYTES + 1);
        hub.publish("p", &serde_json::json!({ "type": "rows", "pad": huge }));
        assert_eq!(
            hub.subscribe("p").unwrap().0.len(),
            1,
            "one event over the cap is kept alone"
        );
    }
}
