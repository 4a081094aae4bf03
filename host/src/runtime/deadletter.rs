//! Dead letters: records a stage could not handle, with their provenance, and the
//! destinations they are written to (`_dlq/` objects in a lake, or a Kafka topic). A dead
//! letter is written before the offsets behind it are committed, so none is lost. Lake
//! writes retry with backoff while the store is unavailable (see [`crate::sinks::retry`]).
//!
//! Lake layout: `<prefix>/pipeline=<name>/<topic>-<partition>-<offset>-<hash>.jsonl.gz`, one
//! object per batch named after its first letter's provenance and a hash of its body, each
//! line one [`DeadLetter`] as JSON.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};

use crate::objects::{self, Location};
use crate::sinks::retry::Health;

/// One record that did not make it, and why.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Pipeline name.
    pub pipeline: String,
    /// Stage (`steps[0] transform` …).
    pub stage: String,
    /// Plugin `name@version` (empty for host stages).
    pub plugin: String,
    /// Plugin content hash.
    pub plugin_hash: String,
    /// Source topic (or file).
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Event time, when known (`YYYY-MM-DD HH:MM:SS`).
    pub event_time: Option<String>,
    /// What went wrong.
    pub reason: String,
    /// The raw record (lossy UTF-8).
    pub record: String,
    /// When it was dead-lettered (ms since epoch).
    pub time_ms: i64,
}

impl DeadLetter {
    /// A row a sink rejected: no source position (`partition` and `offset` are -1), the
    /// row as CSV in `record`.
    pub fn rejected(pipeline: &str, row: crate::sinks::RejectedRow) -> Self {
        Self {
            pipeline: pipeline.to_owned(),
            stage: row.stage,
            plugin: String::new(),
            plugin_hash: String::new(),
            topic: String::new(),
            partition: -1,
            offset: -1,
            event_time: None,
            reason: row.reason,
            record: row.record,
            time_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        }
    }
}

/// Where a pipeline's dead letters go.
pub enum DeadLetterSink {
    /// `_dlq/pipeline=<name>/…jsonl.gz` objects.
    Lake {
        location: Location,
        prefix: String,
        health: Health,
    },
    /// A Kafka topic, one JSON message per dead letter with provenance headers.
    Kafka {
        producer: FutureProducer,
        topic: String,
    },
}

impl DeadLetterSink {
    /// A lake destination whose writes retry for up to `max_elapsed` (default 5 minutes).
    pub fn lake(url: &str, prefix: &str, max_elapsed: Option<Duration>) -> anyhow::Result<Self> {
        Ok(Self::Lake {
            location: objects::open(url)?,
            prefix: prefix.trim_matches('/').to_owned(),
            health: Health::new(max_elapsed),
        })
    }

    /// The destination's status: for a lake, objects written, retries, last error and
    /// `ok`/`degraded`/`failed`.
    pub fn status(&self) -> serde_json::Value {
        let mut status = match self {
            Self::Lake { health, .. } => serde_json::to_value(health.status()).unwrap_or_default(),
            Self::Kafka { .. } => serde_json::json!({}),
        };
        if let serde_json::Value::Object(map) = &mut status {
            map.insert("dead_letters".into(), self.describe().into());
        }
        status
    }

    /// A Kafka destination.
    pub fn kafka(brokers: &str, topic: &str) -> anyhow::Result<Self> {
        let producer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("log_level", "3")
            .create()
            .context("Could not create the dead-letter producer.")?;
        Ok(Self::Kafka {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// Where, for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Lake { prefix, .. } => format!("lake prefix `{prefix}/`"),
            Self::Kafka { topic, .. } => format!("Kafka topic `{topic}`"),
        }
    }

    /// Writes `letters` durably.
    pub async fn write(&self, letters: &[DeadLetter]) -> anyhow::Result<()> {
        let Some(first) = letters.first() else {
            return Ok(());
        };
        match self {
            Self::Lake {
                location,
                prefix,
                health,
            } => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                for letter in letters {
                    serde_json::to_writer(&mut gz, letter)?;
                    gz.write_all(b"\n")?;
                }
                let body = gz.finish()?;
                let key = format!(
                    "{prefix}/pipeline={}/{}-{}-{}-{:016x}.jsonl.gz",
                    first.pipeline,
                    sanitize(&first.topic),
                    first.partition,
                    first.offset,
                    crate::sinks::lake::fnv1a(&body)
                );
                let what = format!("The dead-letter destination `{prefix}/`");
                let path = location.path(&key)?;
                health
                    .put(location.store.as_ref(), &path, body.into(), &what)
                    .await?;
            }
            Self::Kafka { producer, topic } => {
                for letter in letters {
                    send(producer, topic, letter).await?;
                }
            }
        }
        Ok(())
    }
}

/// `text` as it appears in a dead-letter object name.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect()
}

async fn send(producer: &FutureProducer, topic: &str, letter: &DeadLetter) -> anyhow::Result<()> {
    let body = serde_json::to_vec(letter)?;
    let partition = letter.partition.to_string();
    let offset = letter.offset.to_string();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "sluice.pipeline",
            value: Some(&letter.pipeline),
        })
        .insert(Header {
            key: "sluice.stage",
            value: Some(&letter.stage),
        })
        .insert(Header {
            key: "sluice.plugin",
            value: Some(&letter.plugin),
        })
        .insert(Header {
            key: "sluice.source.topic",
            value: Some(&letter.topic),
        })
        .insert(Header {
            key: "sluice.source.partition",
            value: Some(&partition),
        })
        .insert(Header {
            key: "sluice.source.offset",
            value: Some(&offset),
        })
        .insert(Header {
            key: "sluice.reason",
            value: Some(&letter.reason),
        });
    let key = format!("{}/{}/{}", letter.topic, letter.partition, letter.offset);
    let record = FutureRecord::to(topic)
        .payload(&body)
        .key(&key)
        .headers(headers);
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| anyhow::anyhow!("Could not write a dead letter to `{topic}`: {e}"))?;
    Ok(())
}
