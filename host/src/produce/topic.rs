//! Target topic of `sluice produce`: checks the brokers are reachable and creates the topic
//! (given partitions, replication 1) when it does not exist; an existing topic is used as is.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::ProduceError;

/// How long the brokers get to answer the first metadata request.
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// Makes sure `topic` exists and returns its partition count. Blocking.
pub(crate) fn ensure(brokers: &str, topic: &str, partitions: i32) -> Result<i32, ProduceError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", "sluice-produce-admin")
        .create()
        .map_err(|e| ProduceError::Client {
            reason: e.to_string(),
        })?;
    if let Some(existing) = partition_count(&admin, brokers, topic)? {
        tracing::info!("Topic {topic} exists with {existing} partitions; producing into it as is.");
        return Ok(existing);
    }
    create(&admin, topic, partitions)?;
    tracing::info!("Created topic {topic} with {partitions} partitions.");
    Ok(partitions)
}

/// Partition count of `topic`, or `None` when the cluster does not know it. Asks for all
/// topics, so that the request never auto-creates the topic with broker defaults.
fn partition_count(
    admin: &AdminClient<DefaultClientContext>,
    brokers: &str,
    topic: &str,
) -> Result<Option<i32>, ProduceError> {
    let metadata = admin
        .inner()
        .fetch_metadata(None, REACH_TIMEOUT)
        .map_err(|e| ProduceError::Unreachable {
            brokers: brokers.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().len() as i32))
}

fn create(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    partitions: i32,
) -> Result<(), ProduceError> {
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(REACH_TIMEOUT));
    let failed = |reason: String| ProduceError::Topic {
        topic: topic.to_owned(),
        reason,
    };
    let results = futures::executor::block_on(admin.create_topics([&new_topic], &options))
        .map_err(|e| failed(e.to_string()))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(failed(code.to_string())),
        }
    }
    Ok(())
}
