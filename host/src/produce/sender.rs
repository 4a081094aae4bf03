//! Kafka side of `sluice produce`: an idempotent, throughput-tuned rdkafka `BaseProducer`
//! that sends the planned lines (value = raw line, key = `CA/UNIT/SCP`), retries on a full
//! queue, and waits until every record is confirmed; a failed delivery names its file:line.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use super::ProduceError;
use super::fields::{self, Fields};
use super::input::{InputFile, Line};
use super::pace::{Progress, TokenBucket};

/// Records per producer batch at most. tansu's memory storage only serves fetches from batch
/// starts, so a consumer resuming at offset `o` must fetch from `o - MAX_BATCH_RECORDS` (or
/// earlier) and skip what precedes `o`; this bounds that window for topics we fill.
pub const MAX_BATCH_RECORDS: usize = 10_000;
/// How long a record may wait for its delivery before it counts as failed.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(120);

/// Counts confirmed deliveries and remembers the first failure.
#[derive(Default)]
struct Deliveries {
    delivered: AtomicU64,
    failure: Mutex<Option<(usize, String)>>,
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        use RDKafkaLogLevel::{Alert, Critical, Emerg, Error, Warning};
        if matches!(level, Emerg | Alert | Critical | Error | Warning) {
            tracing::warn!("The Kafka producer reports ({facility}): {message}.");
        } else {
            tracing::debug!("The Kafka producer reports ({facility}): {message}.");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!("The Kafka producer reports an error: {error} ({reason}).");
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _)) => {
                let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
                failure.get_or_insert((index, error.to_string()));
            }
        }
    }
}

/// Sends `lines` to `topic` in order and waits for all confirmations. Blocking.
pub(crate) fn send_all(
    brokers: &str,
    topic: &str,
    files: &[InputFile],
    lines: &[Line],
    rate: Option<u64>,
    key_by: &fields::KeyFields,
) -> Result<(), ProduceError> {
    let producer = producer(brokers)?;
    let (mut bucket, mut progress) = (TokenBucket::new(rate), Progress::new());
    let mut key = Vec::with_capacity(64);
    let total = lines.len() as u64;
    for (index, line) in lines.iter().enumerate() {
        while let Some(wait) = bucket.as_mut().and_then(|b| b.take(Instant::now())) {
            producer.poll(wait);
        }
        let value = &files[line.file as usize].data[line.start..line.end];
        fields::key_into(&Fields::split(value), key_by, &mut key);
        send_one(
            &producer,
            BaseRecord::with_opaque_to(topic, index)
                .payload(value)
                .key(&key),
        )
        .map_err(|reason| delivery_error(files, line, topic, reason))?;
        if index % 4096 == 0 {
            producer.poll(Duration::ZERO);
            check(&producer, files, lines, topic)?;
            progress.tick(index as u64, delivered(&producer), total);
        }
    }
    while producer.in_flight_count() > 0 {
        check(&producer, files, lines, topic)?;
        progress.tick(total, delivered(&producer), total);
        producer.poll(Duration::from_millis(50));
    }
    progress.finish();
    check(&producer, files, lines, topic)
}

/// Enqueues one record, polling for delivery reports while librdkafka's queue is full.
fn send_one(
    producer: &BaseProducer<Deliveries>,
    mut record: BaseRecord<'_, [u8], [u8], usize>,
) -> Result<(), String> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(5));
            }
            Err((error, _)) => return Err(error.to_string()),
        }
    }
}

fn producer(brokers: &str) -> Result<BaseProducer<Deliveries>, ProduceError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", "sluice-produce")
        .set("enable.idempotence", "true")
        .set("linger.ms", "10")
        .set("batch.num.messages", MAX_BATCH_RECORDS.to_string())
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set(
            "message.timeout.ms",
            MESSAGE_TIMEOUT.as_millis().to_string(),
        )
        .create_with_context(Deliveries::default())
        .map_err(|e| ProduceError::Client {
            reason: e.to_string(),
        })
}

fn delivered(producer: &BaseProducer<Deliveries>) -> u64 {
    producer.context().delivered.load(Ordering::Relaxed)
}

/// Fails with the first delivery failure reported so far, naming its file and line.
fn check(
    producer: &BaseProducer<Deliveries>,
    files: &[InputFile],
    lines: &[Line],
    topic: &str,
) -> Result<(), ProduceError> {
    let failure = producer
        .context()
        .failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    match failure {
        Some((index, reason)) => {
            producer.purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
            Err(delivery_error(files, &lines[index], topic, reason))
        }
        None => Ok(()),
    }
}

fn delivery_error(files: &[InputFile], line: &Line, topic: &str, reason: String) -> ProduceError {
    let place = format!(
        "{}:{}",
        files[line.file as usize].path.display(),
        line.number
    );
    ProduceError::Delivery {
        place,
        topic: topic.to_owned(),
        reason,
    }
}
