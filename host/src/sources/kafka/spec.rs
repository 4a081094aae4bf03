//! `source: { kafka: {...} }`: the spec of the Kafka source, its policy checks and how it
//! starts.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::KafkaSettings;
use crate::sources::{SourceConfig, SourceHandle, StartContext};

/// `source: { kafka: {...} }`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceSpec {
    /// `brokers: "host:9092,host2:9092"` or `brokers: embedded`
    pub brokers: String,
    /// `topic: turnstile-stream`
    pub topic: String,
    /// `group: sluice-turnstile` (consumer group; default `sluice-<pipeline name>`)
    #[serde(default)]
    pub group: Option<String>,
    /// `start: earliest | latest` (where a group without committed offsets starts)
    #[serde(default)]
    pub start: StartFrom,
    /// `properties: { "fetch.max.bytes": "52428800" }` (extra librdkafka settings)
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// `key: [station]`: the parsed fields the topic's messages are keyed by, so that every
    /// record with the same values is in the same partition (what `sluice produce --key`
    /// writes). A window may then run as parallel tasks when its `group_by` covers this key.
    #[serde(default)]
    pub key: Vec<String>,
}

/// `start: earliest | latest`
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// From the beginning of each partition.
    #[default]
    Earliest,
    /// Only records produced after the pipeline starts.
    Latest,
}

impl KafkaSourceSpec {
    /// The consumer group: `group:`, else `sluice-<pipeline>`.
    pub fn group_of(&self, pipeline: &str) -> String {
        self.group
            .clone()
            .unwrap_or_else(|| format!("sluice-{pipeline}"))
    }
}

impl SourceConfig for KafkaSourceSpec {
    fn start(&self, ctx: StartContext<'_>) -> anyhow::Result<(SourceHandle, Option<String>)> {
        let brokers = crate::broker::resolve(&self.brokers, ctx.state_dir)?;
        let settings = KafkaSettings {
            brokers: brokers.clone(),
            group: self.group_of(ctx.pipeline),
            spec: self.clone(),
            max_records: ctx.batch.max_records,
            max_wait: ctx.batch.max_wait.0,
            once: ctx.once,
            resume: ctx.resume,
            instance_id: Some(super::instance_id(ctx.state_dir, ctx.pipeline)),
        };
        Ok((super::start(settings, ctx.stop)?, Some(brokers)))
    }

    fn identity(&self, pipeline: &str) -> String {
        format!(
            "kafka topic={} group={}",
            self.topic,
            self.group_of(pipeline)
        )
    }

    fn status(&self, pipeline: &str) -> serde_json::Value {
        serde_json::json!({ "topic": self.topic, "group": self.group_of(pipeline) })
    }

    fn check_policy(
        &self,
        policy: &crate::policy::Policy,
        refuse: &mut dyn FnMut(&[&str], String),
    ) {
        if let Err(m) = policy.brokers(&self.brokers) {
            refuse(&["source", "kafka", "brokers"], m);
        }
        for key in self.properties.keys() {
            if !policy.kafka_properties.iter().any(|k| k == key) {
                refuse(
                    &["source", "kafka", "properties", key],
                    format!(
                        "the Kafka property `{key}` is refused for specs from the API \
                         (the operator allows it with --api-grant-kafka-property {key})"
                    ),
                );
            }
        }
    }

    fn kafka(&self) -> Option<&KafkaSourceSpec> {
        Some(self)
    }
}
