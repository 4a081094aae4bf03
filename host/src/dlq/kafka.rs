//! Replaying dead letters kept in a Kafka topic: the topic is read from the committed
//! offsets of the consumer group `sluice-dlq-replay-<pipeline>` up to the high watermarks
//! read at start, the matching letters are sent back, and then the group's offsets are
//! committed at those high watermarks, so a second replay starts after them. Letters that
//! do not match the filters are passed over for good by this group (they stay in the topic;
//! reset the group's offsets to see them again).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::send::{self, Target};
use super::{Filter, Report};
use crate::runtime::DeadLetter;

const TIMEOUT: Duration = Duration::from_secs(10);
/// How long the whole read may take without progress.
const STALL: Duration = Duration::from_secs(30);

/// Replays the matching dead letters of `topic` (see the module doc).
pub async fn replay(
    brokers: &str,
    topic: &str,
    filter: &Filter,
    target: &Target<'_>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let (brokers, topic_owned) = (brokers.to_owned(), topic.to_owned());
    let group = format!("sluice-dlq-replay-{}", filter.pipeline);
    let (consumer, letters, ends) = tokio::task::spawn_blocking(move || {
        let consumer = consumer(&brokers, &group)?;
        let (letters, ends) = read(&consumer, &topic_owned)?;
        anyhow::Ok((consumer, letters, ends))
    })
    .await??;
    let (matching, others): (Vec<DeadLetter>, Vec<DeadLetter>) =
        letters.into_iter().partition(|l| filter.matches(l));
    report.skipped = others.len();
    if !report.dry_run {
        send::send(target, &matching).await?;
        let mut tpl = TopicPartitionList::new();
        for (p, end) in ends {
            tpl.add_partition_offset(topic, p, Offset::Offset(end))?;
        }
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync))
            .await?
            .with_context(|| format!("Could not commit the replay offsets of `{topic}`"))?;
    }
    report.replayed = matching;
    Ok(())
}

fn consumer(brokers: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("log_level", "3")
        .create()
        .context("Could not create the dead-letter consumer.")
}

/// Reads every dead letter from the group's committed offsets to the high watermarks read
/// at start; returns them and the high watermark of each partition. Blocking.
fn read(
    consumer: &BaseConsumer,
    topic: &str,
) -> anyhow::Result<(Vec<DeadLetter>, BTreeMap<i32, i64>)> {
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .with_context(|| format!("Cannot read the dead-letter topic `{topic}`"))?;
    let partitions = crate::sources::kafka::partitions_of(&metadata, topic);
    let mut tpl = TopicPartitionList::new();
    for &p in &partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, TIMEOUT)?;
    let (mut assignment, mut ends, mut next) =
        (TopicPartitionList::new(), BTreeMap::new(), BTreeMap::new());
    for &p in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, TIMEOUT)?;
        let start = match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) if o >= low => o,
            _ => low,
        };
        ends.insert(p, high);
        next.insert(p, start);
        // As the source does: fetch from a bounded look-back (tansu serves whole batches).
        let from = (start - crate::produce::MAX_BATCH_RECORDS as i64).max(low);
        assignment.add_partition_offset(topic, p, Offset::Offset(from))?;
    }
    consumer.assign(&assignment)?;
    let mut letters = Vec::new();
    let mut progress = Instant::now();
    while next.iter().any(|(p, &o)| o < ends[p]) {
        anyhow::ensure!(
            progress.elapsed() < STALL,
            "reading the dead-letter topic `{topic}` made no progress for {STALL:?}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let (p, o) = (m.partition(), m.offset());
                if o < next[&p] || o >= ends[&p] {
                    continue;
                }
                next.insert(p, o + 1);
                progress = Instant::now();
                match serde_json::from_slice::<DeadLetter>(m.payload().unwrap_or_default()) {
                    Ok(letter) => letters.push(letter),
                    Err(e) => tracing::warn!(
                        "Message {topic}/{p}/{o} is not a dead letter ({e}); it is skipped."
                    ),
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => tracing::warn!(%e, "The dead-letter consumer reported an error."),
        }
    }
    letters
        .sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    Ok((letters, ends))
}
