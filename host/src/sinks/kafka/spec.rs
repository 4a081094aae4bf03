//! `- kafka: {...}`: the spec of the Kafka sink, its checks and its builder.

use serde::Deserialize;
use sluice_plugin_sdk::rows::Field;

use super::{KafkaFormat, KafkaSink, KafkaSinkSettings};
use crate::sinks::{Endpoint, RowBatch, SinkConfig, SinkContext, SinkFuture, SinkWriter};

/// `- kafka: { topic: turnstile-windows, format: json }`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkSpec {
    /// `brokers: ...` (default: the source's)
    #[serde(default)]
    pub brokers: Option<String>,
    /// `topic: turnstile-windows` (created if missing)
    pub topic: String,
    /// `format: json | csv`
    #[serde(default)]
    pub format: KafkaFormatSpec,
    /// `key: [station, window_start]` (message key fields; default: text fields + window_start)
    #[serde(default)]
    pub key: Vec<String>,
}

/// `format: json | csv`
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KafkaFormatSpec {
    /// One JSON object per row.
    #[default]
    Json,
    /// One CSV line per row.
    Csv,
}

impl KafkaSinkSpec {
    fn settings(&self, brokers: &str, pipeline: &str) -> KafkaSinkSettings {
        KafkaSinkSettings {
            brokers: brokers.to_owned(),
            topic: self.topic.clone(),
            format: match self.format {
                KafkaFormatSpec::Json => KafkaFormat::Json,
                KafkaFormatSpec::Csv => KafkaFormat::Csv,
            },
            key: self.key.clone(),
            pipeline: pipeline.to_owned(),
        }
    }
}

impl SinkConfig for KafkaSinkSpec {
    fn check(&self, schema: &[Field], pipeline: &str) -> Result<(), String> {
        KafkaSink::check(&self.settings("", pipeline), schema)
    }

    fn build<'a>(
        &'a self,
        schema: &'a [Field],
        ctx: &'a SinkContext<'a>,
    ) -> SinkFuture<'a, Option<Box<dyn SinkWriter>>> {
        Box::pin(async move {
            let brokers = match (&self.brokers, ctx.brokers) {
                (Some(b), _) => b.clone(),
                (None, Some(b)) => b.to_owned(),
                (None, None) => {
                    anyhow::bail!("a kafka sink needs `brokers:` when the source is not Kafka")
                }
            };
            let settings = self.settings(&brokers, ctx.pipeline);
            let sink = KafkaSink::connect(settings, schema).await?;
            Ok(Some(Box::new(sink) as Box<dyn SinkWriter>))
        })
    }

    fn endpoints(&self) -> Vec<Endpoint<'_>> {
        self.brokers
            .iter()
            .map(|brokers| Endpoint::Brokers {
                field: "brokers",
                brokers,
            })
            .collect()
    }
}

impl SinkWriter for KafkaSink {
    fn write<'a>(
        &'a self,
        rows: &'a RowBatch,
        _task: Option<i32>,
    ) -> SinkFuture<'a, Vec<(usize, String)>> {
        Box::pin(async move { KafkaSink::write(self, rows).await.map(|()| Vec::new()) })
    }

    fn status(&self) -> serde_json::Value {
        serde_json::to_value(KafkaSink::status(self)).unwrap_or_default()
    }
}
