//! Source offsets of a pipeline: the committed offsets of a Kafka source's consumer group,
//! the consumer lag (committed offset against the high watermark), and resetting them while
//! the pipeline does not consume (as Kafka Connect's KIP-875): the offsets are committed for
//! the group by a client that does not join it, and the pipeline's checkpoints (which hold
//! offsets of their own, and window state that belongs to them) are removed, so the next
//! run resumes at the new offsets with empty state instead of silently going back to the
//! checkpoint.
//!
//! Other sources have no offsets to read or reset: a `file` source replays its files from
//! the start, an `http` source takes what is POSTed.

use std::time::Duration;

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::state::{Lag, State};
use super::{Manager, ManagerError};
use crate::runtime::Host;
use crate::spec::Loaded;

const TIMEOUT: Duration = Duration::from_secs(5);

/// One partition's offset (the next record to read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionOffset {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// What to reset the offsets to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OffsetsRequest {
    /// These exact offsets.
    Partitions(Vec<PartitionOffset>),
    /// The first offset of every partition.
    Earliest,
    /// The end of every partition (skip what is there).
    Latest,
}

/// A reset names a partition the topic does not have.
#[derive(Debug, thiserror::Error)]
#[error("Topic `{topic}` has no partition {partition}.")]
pub struct UnknownPartition {
    /// Topic.
    pub topic: String,
    /// The partition asked for.
    pub partition: i32,
}

/// Where a Kafka source's offsets live.
#[derive(Clone, Debug)]
pub struct KafkaGroup {
    /// Bootstrap servers (resolved).
    pub brokers: String,
    /// Consumer group.
    pub group: String,
    /// Topic.
    pub topic: String,
}

/// The consumer group of `loaded`'s source, or `None` when it is not Kafka.
pub fn kafka_group(host: &Host, loaded: &Loaded) -> anyhow::Result<Option<KafkaGroup>> {
    let Some(kafka) = loaded.spec.source.config().kafka() else {
        return Ok(None);
    };
    Ok(Some(KafkaGroup {
        brokers: crate::broker::resolve(&kafka.brokers, &host.state_dir)?,
        group: kafka
            .group
            .clone()
            .unwrap_or_else(|| format!("sluice-{}", loaded.spec.name)),
        topic: kafka.topic.clone(),
    }))
}

fn client(group: &KafkaGroup) -> anyhow::Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", &group.brokers)
        .set("group.id", &group.group)
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()
        .context("Could not create a Kafka client.")
}

fn partitions(consumer: &BaseConsumer, group: &KafkaGroup) -> anyhow::Result<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(&group.topic), TIMEOUT)
        .with_context(|| format!("Cannot reach the Kafka brokers at `{}`.", group.brokers))?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.name() == group.topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect())
}

/// Committed offset of every partition (-1 where the group has none) with the low and
/// high watermarks.
fn read(group: &KafkaGroup) -> anyhow::Result<Vec<(i32, i64, i64, i64)>> {
    let consumer = client(group)?;
    let mut tpl = TopicPartitionList::new();
    let partitions = partitions(&consumer, group)?;
    for &p in &partitions {
        tpl.add_partition(&group.topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, TIMEOUT)
        .context("Could not read the consumer group's committed offsets.")?;
    let mut out = Vec::new();
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(&group.topic, p, TIMEOUT)?;
        let offset = match committed
            .find_partition(&group.topic, p)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        };
        out.push((p, offset, low, high));
    }
    Ok(out)
}

/// Consumer lag per partition of `loaded`'s Kafka source (empty for other sources).
pub fn lag(host: &Host, loaded: &Loaded) -> anyhow::Result<Vec<Lag>> {
    let Some(group) = kafka_group(host, loaded)? else {
        return Ok(Vec::new());
    };
    Ok(read(&group)?
        .into_iter()
        .map(|(partition, offset, low, end)| Lag {
            partition,
            offset,
            end,
            // Never below 0: tansu 0.6.0 answers the base offset of a partition's last batch
            // as its high watermark, so a group that read everything is ahead of `end`.
            lag: (end - if offset < 0 { low } else { offset }).max(0),
        })
        .collect())
}

/// Commits `request` as the group's offsets (no member of the group may be consuming) and
/// returns the offsets now committed. The coordinator's checkpoint code can call it too.
pub fn reset_offsets(
    group: &KafkaGroup,
    request: &OffsetsRequest,
) -> anyhow::Result<Vec<PartitionOffset>> {
    let current = read(group)?;
    let targets: Vec<PartitionOffset> = match request {
        OffsetsRequest::Partitions(list) => {
            for wanted in list {
                if !current.iter().any(|(p, ..)| *p == wanted.partition) {
                    return Err(UnknownPartition {
                        topic: group.topic.clone(),
                        partition: wanted.partition,
                    }
                    .into());
                }
            }
            list.clone()
        }
        OffsetsRequest::Earliest | OffsetsRequest::Latest => current
            .iter()
            .map(|&(partition, _, low, high)| PartitionOffset {
                partition,
                offset: if *request == OffsetsRequest::Earliest {
                    low
                } else {
                    high
                },
            })
            .collect(),
    };
    let mut tpl = TopicPartitionList::new();
    for t in &targets {
        tpl.add_partition_offset(&group.topic, t.partition, Offset::Offset(t.offset))?;
    }
    client(group)?.commit(&tpl, CommitMode::Sync).context(
        "The broker refused to commit the offsets (is a consumer of the group still running?).",
    )?;
    Ok(targets)
}

impl Manager {
    fn group_of(&self, name: &str) -> Result<KafkaGroup, ManagerError> {
        let loaded = self
            .loaded(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        kafka_group(&self.inner.host, &loaded)?.ok_or_else(|| {
            ManagerError::Unsupported(format!(
                "Pipeline `{name}` does not read Kafka: a file source replays its files from the \
                 start and an http source takes what is posted, so it has no offsets to set."
            ))
        })
    }

    /// The committed offsets of `name`'s consumer group; empty for non-Kafka sources.
    pub async fn offsets(&self, name: &str) -> Result<Vec<PartitionOffset>, ManagerError> {
        let group = match self.group_of(name) {
            Err(ManagerError::Unsupported(_)) => return Ok(Vec::new()),
            other => other?,
        };
        let read = tokio::task::spawn_blocking(move || read(&group))
            .await
            .map_err(|e| anyhow::anyhow!("reading offsets panicked: {e}"))??;
        Ok(read
            .into_iter()
            .filter(|&(_, offset, ..)| offset >= 0)
            .map(|(partition, offset, ..)| PartitionOffset { partition, offset })
            .collect())
    }

    /// Resets the offsets of `name` (paused or stopped only: 409 otherwise).
    pub async fn set_offsets(
        &self,
        name: &str,
        request: OffsetsRequest,
    ) -> Result<Vec<PartitionOffset>, ManagerError> {
        let _ops = self.inner.ops.lock().await;
        let state = self
            .state(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        if !matches!(state, State::Paused | State::Stopped) {
            return Err(ManagerError::Conflict(format!(
                "Pipeline `{name}` is {}: pause it before resetting its offsets.",
                state.as_str()
            )));
        }
        let group = self.group_of(name)?;
        let done = tokio::task::spawn_blocking(move || reset_offsets(&group, &request))
            .await
            .map_err(|e| anyhow::anyhow!("resetting offsets panicked: {e}"))?
            .map_err(|e| match e.downcast::<UnknownPartition>() {
                Ok(unknown) => ManagerError::BadRequest(unknown.to_string()),
                Err(e) => ManagerError::Internal(e),
            })?;
        let loaded = self
            .loaded(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        let checkpoints = self.inner.host.checkpoint_store(&loaded)?;
        checkpoints.clear().await.with_context(|| {
            format!(
                "The offsets of `{name}` were reset, but its checkpoints in `{}` could not be \
                 removed, so its next run would continue from them; remove them by hand",
                checkpoints.describe
            )
        })?;
        tracing::info!(pipeline = name, offsets = ?done,
            "The pipeline's source offsets were reset and its checkpoints removed: its next run \
             starts at these offsets with empty window state.");
        Ok(done)
    }
}
