//! `kafka` sink: rows as messages on a topic, one message per row, as a compact JSON object
//! (`{"station":"59 ST","window_start":"2024-01-01 08:00:00","entries":12,...}`: ints and
//! finite floats as numbers, timestamps as `YYYY-MM-DD HH:MM:SS` UTC strings, nulls and
//! non-finite floats as `null`) or one CSV line without header. The key is the key fields'
//! values joined with `|` (default: the leading `str` fields and `window_start`), so a
//! replayed window gets the same key on the same partition (the Java client's hash,
//! `murmur2_random`). Every message carries the header `sluice.pipeline`.
//!
//! A missing topic is created with 3 partitions and the broker's default cleanup policy; for
//! window results, create it with `cleanup.policy=compact` beforehand to keep one message per
//! window (the sink does not, because it may also carry rows whose keys are not unique).
//!
//! The producer is idempotent. When the brokers support transactions, each [`KafkaSink::write`]
//! is one transaction (`transactional.id` = `sluice-<pipeline>-<topic>`, so a restarted host
//! fences the previous one); otherwise (tansu 0.6) the sink says so once and relies on the
//! idempotent producer and the keys: a write that fails part-way may leave some of its
//! messages behind, and the retry sends them again with the same keys. `write` returns once
//! every message is acknowledged or the transaction is committed. Writes are serialised.

mod admin;
mod encode;
mod producer;
mod spec;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use sluice_plugin_sdk::rows::Field;

use super::RowBatch;
use encode::Encoder;
pub use producer::KafkaStatus;
use producer::{Deliveries, start_producer};
pub use spec::{KafkaFormatSpec, KafkaSinkSpec};

/// How long librdkafka may try to deliver one message.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a write may wait for its last acknowledgement or its commit.
const FINISH_TIMEOUT: Duration = Duration::from_secs(70);
/// Pause before retrying a message the full local queue refused.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(5);

/// Settings resolved from the spec.
#[derive(Debug, Clone)]
pub struct KafkaSinkSettings {
    /// Bootstrap servers (already resolved from `embedded`).
    pub brokers: String,
    /// Target topic; created with 3 partitions when missing.
    pub topic: String,
    /// Message format.
    pub format: KafkaFormat,
    /// Fields forming the message key; empty means the default (leading `str` fields and
    /// `window_start`).
    pub key: Vec<String>,
    /// The pipeline's name, sent as the `sluice.pipeline` header.
    pub pipeline: String,
}

/// Message payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaFormat {
    /// One compact JSON object per row.
    Json,
    /// One CSV line per row, no header.
    Csv,
}

/// Why the Kafka sink could not start or write; callers may branch on it.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSinkError {
    /// No broker answered.
    #[error(
        "Cannot reach the Kafka brokers at `{brokers}` ({reason}). Check that a broker runs \
         there, or fix `brokers:` of the kafka sink."
    )]
    Unreachable { brokers: String, reason: String },
    /// The topic could not be created.
    #[error("Could not create topic `{topic}` for the kafka sink ({reason}).")]
    Topic { topic: String, reason: String },
    /// librdkafka refused the client or a message.
    #[error("The Kafka producer failed: {0}.")]
    Client(String),
    /// Some messages were not acknowledged.
    #[error("{failed} of {total} messages to topic `{topic}` were not acknowledged ({reason}).")]
    Delivery {
        topic: String,
        failed: u64,
        total: usize,
        reason: String,
    },
    /// The transaction could not be committed; it was aborted.
    #[error("The transaction on topic `{topic}` failed and was aborted ({reason}).")]
    Transaction { topic: String, reason: String },
}

/// Writes rows to a Kafka topic.
pub struct KafkaSink {
    producer: Arc<ThreadedProducer<Deliveries>>,
    settings: KafkaSinkSettings,
    encoder: Encoder,
    headers: OwnedHeaders,
    transactional: bool,
    write_lock: tokio::sync::Mutex<()>,
    /// A write is waiting for its acknowledgements; the last write failed.
    writing: std::sync::atomic::AtomicBool,
    failed: std::sync::atomic::AtomicBool,
}

impl KafkaSink {
    /// Checks the settings against the rows' schema (every key field exists). No I/O.
    pub fn check(settings: &KafkaSinkSettings, schema: &[Field]) -> Result<(), String> {
        encoder(settings, schema).map(|_| ())
    }

    /// Connects, creates the topic when missing, and starts a transactional producer when the
    /// brokers support transactions (an idempotent one otherwise).
    pub async fn connect(
        settings: KafkaSinkSettings,
        schema: &[Field],
    ) -> anyhow::Result<KafkaSink> {
        let encoder = encoder(&settings, schema).map_err(anyhow::Error::msg)?;
        admin::ensure_topic(&settings.brokers, &settings.topic).await?;
        let wanted = use_transactions(&settings).await;
        let (producer, transactional) = match start_producer(&settings, wanted).await {
            Err(error) if wanted => {
                tracing::warn!(
                    topic = %settings.topic,
                    %error,
                    "The kafka sink could not start a transactional producer; it uses an \
                     idempotent one instead."
                );
                (start_producer(&settings, false).await?, false)
            }
            started => (started?, wanted),
        };
        let producer = Arc::new(producer);
        let headers = OwnedHeaders::new().insert(Header {
            key: "sluice.pipeline",
            value: Some(settings.pipeline.as_str()),
        });
        Ok(KafkaSink {
            producer,
            settings,
            encoder,
            headers,
            transactional,
            write_lock: tokio::sync::Mutex::new(()),
            writing: Default::default(),
            failed: Default::default(),
        })
    }

    /// `ok`, `degraded` (the client reports errors while a write waits, as when the
    /// brokers are down) or `failed`, with the client's errors.
    pub fn status(&self) -> KafkaStatus {
        use std::sync::atomic::Ordering::SeqCst;
        let context = self.producer.context();
        context.status(self.writing.load(SeqCst), self.failed.load(SeqCst))
    }

    /// Whether each write is a transaction.
    pub fn is_transactional(&self) -> bool {
        self.transactional
    }

    /// Sends one message per row and returns once all are acknowledged (or committed).
    pub async fn write(&self, rows: &RowBatch) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let _serialised = self.write_lock.lock().await;
        self.producer.context().reset();
        if self.transactional {
            self.producer
                .begin_transaction()
                .map_err(|e| KafkaSinkError::Client(e.to_string()))?;
        }
        use std::sync::atomic::Ordering::SeqCst;
        self.writing.store(true, SeqCst);
        let enqueued = self.enqueue(rows).await;
        let finished = self.finish(rows.len(), enqueued.is_ok()).await;
        let result = enqueued.and(finished);
        self.failed.store(result.is_err(), SeqCst);
        self.writing.store(false, SeqCst);
        result
    }

    /// Hands every row to librdkafka, waiting while its local queue is full.
    async fn enqueue(&self, rows: &RowBatch) -> anyhow::Result<()> {
        let (mut key, mut payload) = (String::new(), String::new());
        for row in rows.batch().rows() {
            let keyed = self.encoder.encode(row, &mut key, &mut payload)?;
            loop {
                let mut record = BaseRecord::to(&self.settings.topic)
                    .payload(payload.as_str())
                    .headers(self.headers.clone());
                if keyed {
                    record = record.key(key.as_str());
                }
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        tokio::time::sleep(QUEUE_FULL_PAUSE).await;
                    }
                    Err((error, _)) => return Err(KafkaSinkError::Client(error.to_string()).into()),
                }
            }
        }
        Ok(())
    }

    /// Waits for every message: commits the transaction (or aborts it when `commit` is false
    /// or a message failed), or flushes the idempotent producer.
    async fn finish(&self, total: usize, commit: bool) -> anyhow::Result<()> {
        let producer = Arc::clone(&self.producer);
        let transactional = self.transactional;
        let topic = self.settings.topic.clone();
        tokio::task::spawn_blocking(move || {
            let outcome = complete(&producer, &topic, total, transactional && commit);
            if transactional
                && (outcome.is_err() || !commit)
                && let Err(error) = producer.abort_transaction(FINISH_TIMEOUT)
            {
                tracing::warn!(%topic, %error, "Could not abort the kafka sink's transaction.");
            }
            outcome
        })
        .await??;
        Ok(())
    }
}

/// Commits the transaction (`commit`) or flushes; then checks every message was delivered.
/// Blocking.
fn complete(
    producer: &ThreadedProducer<Deliveries>,
    topic: &str,
    total: usize,
    commit: bool,
) -> Result<(), KafkaSinkError> {
    let flushed = if commit {
        producer.commit_transaction(FINISH_TIMEOUT)
    } else {
        producer.flush(FINISH_TIMEOUT)
    };
    if let Some(failure) = producer.context().failure(topic, total) {
        return Err(failure);
    }
    flushed.map_err(|e| match commit {
        true => KafkaSinkError::Transaction {
            topic: topic.to_owned(),
            reason: e.to_string(),
        },
        false => KafkaSinkError::Client(e.to_string()),
    })
}

/// Whether the brokers support transactions; says why not when they do not.
async fn use_transactions(settings: &KafkaSinkSettings) -> bool {
    let topic = &settings.topic;
    match admin::supports_transactions(&settings.brokers).await {
        Ok(true) => true,
        Ok(false) => {
            tracing::info!(
                %topic,
                "The Kafka brokers do not support transactions; the kafka sink relies on an \
                 idempotent producer and keyed messages instead."
            );
            false
        }
        Err(reason) => {
            tracing::info!(
                %topic,
                %reason,
                "Could not ask the Kafka brokers whether they support transactions; the kafka \
                 sink uses an idempotent producer."
            );
            false
        }
    }
}

fn encoder(settings: &KafkaSinkSettings, schema: &[Field]) -> Result<Encoder, String> {
    let key = if settings.key.is_empty() {
        encode::default_key(schema)
    } else {
        settings.key.clone()
    };
    let indexes = encode::key_indexes(&key, schema)?;
    Ok(Encoder::new(schema, indexes, settings.format))
}
