//! Where a partition really ends. A broker's high watermark is the offset after its last
//! record, but tansu 0.6 reports the last record batch's base offset plus one, short of the
//! end by the rest of that batch. Where that matters (a checkpoint continuing past the
//! reported end, which would otherwise look like a recreated topic), the last batch is read
//! to find the offset after its last record: a short-lived consumer of its own, assigned
//! just before the reported end, reading up to the end of the partition.

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// The probe's client context: reaching the end is what the probe waits for, so librdkafka's
/// global "end of partition" event is not logged as an error (rdkafka's default context
/// logs every client error at ERROR).
struct Quiet;

impl ClientContext for Quiet {
    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF) => {
                tracing::debug!(reason, "The end probe reached the end of a partition.");
            }
            _ => tracing::warn!(%error, reason, "The end probe's Kafka client reported an error."),
        }
    }
}

impl ConsumerContext for Quiet {}

/// The longest the read of the last batch may take.
const DEADLINE: Duration = Duration::from_secs(10);

/// The offset after the last record of `topic`/`partition`, whose reported high watermark is
/// `high` and first offset `low`.
pub fn true_end(
    brokers: &str,
    topic: &str,
    partition: i32,
    low: i64,
    high: i64,
) -> anyhow::Result<i64> {
    if high <= low {
        return Ok(high);
    }
    let consumer: BaseConsumer<Quiet> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "sluice-end-probe")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "20")
        .set("log_level", "3")
        .create_with_context(Quiet)
        .context("Could not create a consumer to find the end of a partition.")?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Offset(high - 1))?;
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let mut end = high;
    while started.elapsed() < DEADLINE {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) if message.partition() == partition => {
                end = end.max(message.offset() + 1);
            }
            Some(Err(KafkaError::PartitionEOF(p))) if p == partition => return Ok(end),
            Some(Err(e)) => return Err(e).context("Could not read the end of a partition."),
            _ => {}
        }
    }
    anyhow::bail!(
        "Could not find where {topic}/{partition} ends within {}s.",
        DEADLINE.as_secs()
    )
}
