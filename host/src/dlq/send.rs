//! Producing replayed records: each dead letter's raw record goes back to the source topic,
//! to the partition it was read from (when it came from that topic), in source order, with
//! the headers `sluice.replay: true`, `sluice.replay.of: <topic>/<partition>/<offset>`,
//! `sluice.replay.stage` and `sluice.replay.reason`. Returns once every record is
//! acknowledged.

use std::time::Duration;

use anyhow::Context;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::runtime::DeadLetter;

/// How long librdkafka may try to deliver one record.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Where replayed records go.
pub struct Target<'a> {
    /// Bootstrap servers, resolved.
    pub brokers: &'a str,
    /// The pipeline's source topic.
    pub topic: &'a str,
}

/// Sends the records of `letters` in order and waits for every acknowledgement.
pub async fn send(target: &Target<'_>, letters: &[DeadLetter]) -> anyhow::Result<()> {
    if letters.is_empty() {
        return Ok(());
    }
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", target.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            MESSAGE_TIMEOUT.as_millis().to_string(),
        )
        .set("log_level", "3")
        .create()
        .context("Could not create the replay producer.")?;
    let mut pending: Vec<DeliveryFuture> = Vec::new();
    for letter in letters {
        let of = format!("{}/{}/{}", letter.topic, letter.partition, letter.offset);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "sluice.replay",
                value: Some("true"),
            })
            .insert(Header {
                key: "sluice.replay.of",
                value: Some(&of),
            })
            .insert(Header {
                key: "sluice.replay.stage",
                value: Some(&letter.stage),
            })
            .insert(Header {
                key: "sluice.replay.reason",
                value: Some(&letter.reason),
            });
        let mut record = FutureRecord::<(), _>::to(target.topic)
            .payload(letter.record.as_bytes())
            .headers(headers);
        if letter.topic == target.topic {
            record = record.partition(letter.partition);
        }
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    wait_all(target.topic, std::mem::take(&mut pending)).await?;
                }
                Err((e, _)) => anyhow::bail!("Could not send a replayed record: {e}"),
            }
        }
    }
    wait_all(target.topic, pending).await
}

async fn wait_all(topic: &str, pending: Vec<DeliveryFuture>) -> anyhow::Result<()> {
    for delivery in pending {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => {
                anyhow::bail!("A replayed record was not delivered to `{topic}`: {e}")
            }
            Err(_) => anyhow::bail!("The replay producer stopped before every record was sent."),
        }
    }
    Ok(())
}
