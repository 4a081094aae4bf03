//! The kafka sink's producer: librdkafka settings (idempotent, `acks=all`, Java-compatible
//! partitioning, transactional when asked) and [`Deliveries`], which counts the messages of
//! the current write that could not be delivered.

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

/// Counts failed deliveries of the current write.
#[derive(Default)]
pub(super) struct Deliveries {
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Deliveries {
    pub(super) fn reset(&self) {
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

impl ClientContext for Deliveries {}

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
