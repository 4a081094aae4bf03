//! The kafka sink's producer: librdkafka settings (idempotent, `acks=all`, Java-compatible
//! partitioning, transactional when asked) and [`Deliveries`], which counts the messages of
//! the current write that could not be delivered, and the client errors (a broker down) that
//! make the sink `degraded` while librdkafka retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::{KafkaSinkError, KafkaSinkSettings, MESSAGE_TIMEOUT};

/// How long `init_transactions` may take.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates the producer; with `transactional`, also initialises its transactions.
pub(super) async fn start_producer(
    settings: &KafkaSinkSettings,
    transactional: bool,
) -> Result<ThreadedProducer<Deliveries>, KafkaSinkError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", format!("sluice-{}", settings.pipeline))
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set(
            "message.timeout.ms",
            MESSAGE_TIMEOUT.as_millis().to_string(),
        );
    if transactional {
        config
            .set(
                "transactional.id",
                format!("sluice-{}-{}", settings.pipeline, settings.topic),
            )
            .set("transaction.timeout.ms", "120000");
    }
    let producer: ThreadedProducer<Deliveries> = config
        .create_with_context(Deliveries::default())
        .map_err(|e| KafkaSinkError::Client(e.to_string()))?;
    if !transactional {
        return Ok(producer);
    }
    let producer = Arc::new(producer);
    let init = Arc::clone(&producer);
    tokio::task::spawn_blocking(move || init.init_transactions(INIT_TIMEOUT))
        .await
        .map_err(|e| KafkaSinkError::Client(e.to_string()))?
        .map_err(|e| KafkaSinkError::Client(format!("could not initialise transactions: {e}")))?;
    Arc::into_inner(producer)
        .ok_or_else(|| KafkaSinkError::Client("the producer is still shared".into()))
}

/// Counts failed deliveries of the current write, and the client's errors.
#[derive(Default)]
pub(super) struct Deliveries {
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
    /// Errors the client reported (brokers down, timeouts), all time.
    client_errors: AtomicU64,
    /// Client errors when the current write started.
    errors_at_start: AtomicU64,
    /// The last client error and when (RFC 3339).
    last_error: std::sync::Mutex<Option<(String, String)>>,
}

/// The kafka sink's status.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KafkaStatus {
    /// `ok`, `degraded` (the client reports errors while a write waits) or `failed` (the
    /// last write failed).
    pub state: &'static str,
    /// Errors the client reported so far (librdkafka retries them).
    pub retries: u64,
    /// The last client error.
    pub last_error: Option<String>,
    /// When it happened (RFC 3339, UTC).
    pub last_error_at: Option<String>,
}

impl Deliveries {
    pub(super) fn reset(&self) {
        self.errors_at_start
            .store(self.client_errors.load(Ordering::SeqCst), Ordering::SeqCst);
        self.failed.store(0, Ordering::SeqCst);
        *self.first_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub(super) fn failure(&self, topic: &str, total: usize) -> Option<KafkaSinkError> {
        let failed = self.failed.load(Ordering::SeqCst);
        (failed > 0).then(|| KafkaSinkError::Delivery {
            topic: topic.to_owned(),
            failed,
            total,
            reason: self
                .first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or_default(),
        })
    }
}

impl Deliveries {
    /// The status; `writing`: a write is waiting, `failed`: the last write failed.
    pub(super) fn status(&self, writing: bool, failed: bool) -> KafkaStatus {
        let errors = self.client_errors.load(Ordering::SeqCst);
        let state = if failed {
            "failed"
        } else if writing && errors > self.errors_at_start.load(Ordering::SeqCst) {
            "degraded"
        } else {
            "ok"
        };
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        KafkaStatus {
            state,
            retries: errors,
            last_error: last.as_ref().map(|l| l.0.clone()),
            last_error_at: last.map(|l| l.1),
        }
    }
}

impl ClientContext for Deliveries {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "The kafka sink's client reported an error; it retries.");
        self.client_errors.fetch_add(1, Ordering::SeqCst);
        let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((format!("{error}: {reason}"), at));
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            self.failed.fetch_add(1, Ordering::SeqCst);
            let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert_with(|| error.to_string());
        }
    }
}
