//! The consume-only baseline of section 2: an rdkafka loop with the Kafka source's own
//! consumer settings (`sluice_host::sources::kafka::consumer`), assigned every partition of
//! the topic from its start, reading every record (touching its payload) up to the high
//! watermarks read at start, and doing nothing else.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sluice_host::sources::kafka::{KafkaSettings, consumer};
use sluice_host::spec::{KafkaSourceSpec, StartFrom};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Reads all of `topic` in consumer group `group`; returns the time from creating the
/// consumer to the last record, the records and the payload bytes.
pub fn consume_all(brokers: &str, topic: &str, group: &str) -> (Duration, u64, u64) {
    let settings = KafkaSettings {
        brokers: brokers.to_owned(),
        group: group.to_owned(),
        spec: KafkaSourceSpec {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            group: Some(group.to_owned()),
            start: StartFrom::Earliest,
            properties: BTreeMap::new(),
            key: Vec::new(),
        },
        max_records: 8192,
        max_wait: Duration::from_millis(100),
        once: true,
        resume: None,
        instance_id: None,
    };
    let start = Instant::now();
    let consumer = consumer(&settings).expect("the consumer is created");
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .expect("the broker answers");
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut ends = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, TIMEOUT)
            .expect("the broker lists offsets");
        if high > low {
            ends.insert(p, high);
        }
        tpl.add_partition_offset(topic, p, Offset::Offset(low))
            .expect("a valid offset");
    }
    consumer.assign(&tpl).expect("the partitions are assigned");
    // As the source does: a partition is finished at its end-of-partition event once its
    // position reached the high watermark read at start (tansu may list it low).
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    while !ends.is_empty() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                records += 1;
                bytes += m.payload().map_or(0, |p| p.len() as u64);
                positions.insert(m.partition(), m.offset() + 1);
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                let position = positions.get(&p).copied().unwrap_or(0);
                if ends.get(&p).is_some_and(|&end| position >= end) {
                    ends.remove(&p);
                }
            }
            None => {}
            Some(Err(e)) => eprintln!("consume-only loop: {e}"),
        }
    }
    (start.elapsed(), records, bytes)
}
