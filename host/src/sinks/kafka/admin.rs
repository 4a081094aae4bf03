//! What the Kafka sink asks the cluster before producing: that the brokers answer, that the
//! topic exists (created when missing), and whether the brokers support transactions.
//!
//! Transaction support is read from the broker's ApiVersions answer (a tiny hand-written
//! request over plain TCP), because librdkafka only notices a missing `EndTxn` at the first
//! commit, after the messages are already written. tansu 0.6 answers `InitProducerId` and
//! `AddPartitionsToTxn` but has no `EndTxn`, so it counts as not supporting them.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::KafkaSinkError;

/// How long the brokers get to answer a metadata, topic or ApiVersions request.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Partitions of a topic the sink creates.
const PARTITIONS: i32 = 3;
/// API keys a transactional producer needs: InitProducerId, AddPartitionsToTxn, EndTxn.
const TRANSACTION_APIS: [i16; 3] = [22, 24, 26];

/// Checks the brokers answer and creates `topic` (3 partitions, replication 1) if missing.
pub async fn ensure_topic(brokers: &str, topic: &str) -> Result<(), KafkaSinkError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", "sluice-kafka-sink-admin")
        .create()
        .map_err(|e| KafkaSinkError::Client(e.to_string()))?;
    let admin = Arc::new(admin);
    let probe = Arc::clone(&admin);
    let metadata = tokio::task::spawn_blocking(move || probe.inner().fetch_metadata(None, TIMEOUT))
        .await
        .map_err(|e| KafkaSinkError::Client(e.to_string()))?
        .map_err(|e| KafkaSinkError::Unreachable {
            brokers: brokers.to_owned(),
            reason: e.to_string(),
        })?;
    let exists = metadata
        .topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
    if exists {
        return Ok(());
    }
    let failed = |reason: String| KafkaSinkError::Topic {
        topic: topic.to_owned(),
        reason,
    };
    let new_topic = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(|e| failed(e.to_string()))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(failed(code.to_string())),
        }
    }
    tracing::info!("Created topic {topic} with {PARTITIONS} partitions for the Kafka sink.");
    Ok(())
}

/// Whether the first bootstrap broker that answers supports transactions. `Err` says why
/// none could be asked (TLS or SASL listeners, for instance).
pub async fn supports_transactions(brokers: &str) -> Result<bool, String> {
    let mut last_error = String::from("no bootstrap address");
    for address in brokers.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        match tokio::time::timeout(TIMEOUT, api_keys(address)).await {
            Ok(Ok(keys)) => return Ok(TRANSACTION_APIS.iter().all(|k| keys.contains(k))),
            Ok(Err(error)) => last_error = format!("{address}: {error}"),
            Err(_) => last_error = format!("{address}: no answer within {TIMEOUT:?}"),
        }
    }
    Err(last_error)
}

/// The API keys a broker supports (ApiVersions v0).
async fn api_keys(address: &str) -> std::io::Result<Vec<i16>> {
    const CLIENT_ID: &[u8] = b"sluice-probe";
    let mut stream = TcpStream::connect(address).await?;
    let mut request = Vec::with_capacity(32);
    let size = 2 + 2 + 4 + 2 + CLIENT_ID.len();
    request.extend_from_slice(&(size as i32).to_be_bytes());
    request.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    request.extend_from_slice(&0i16.to_be_bytes()); // version 0
    request.extend_from_slice(&1i32.to_be_bytes()); // correlation id
    request.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
    request.extend_from_slice(CLIENT_ID);
    stream.write_all(&request).await?;
    let size = stream.read_i32().await?;
    if !(10..=1 << 20).contains(&size) {
        return Err(std::io::Error::other(format!("odd response size {size}")));
    }
    let mut body = vec![0; size as usize];
    stream.read_exact(&mut body).await?;
    parse_api_keys(&body).ok_or_else(|| std::io::Error::other("malformed ApiVersions response"))
}

/// Parses an ApiVersions v0 response body: correlation id, error code, `[key, min, max]`.
fn parse_api_keys(body: &[u8]) -> Option<Vec<i16>> {
    let count = i32::from_be_bytes(body.get(6..10)?.try_into().ok()?);
    let count = usize::try_from(count).ok()?;
    (0..count)
        .map(|i| {
            let at = 10 + i * 6;
            Some(i16::from_be_bytes(body.get(at..at + 2)?.try_into().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_api_versions_v0() {
        let mut body = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 2];
        body.extend_from_slice(&[0, 22, 0, 0, 0, 4, 0, 26, 0, 0, 0, 3]);
        assert_eq!(parse_api_keys(&body), Some(vec![22, 26]));
        assert_eq!(parse_api_keys(&body[..15]), None);
    }
}
