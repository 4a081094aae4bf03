//! Consumer-group membership of the `kafka` source: the static member id (KIP-345,
//! `group.instance.id`) that lets a restarted host take its partitions back at once instead
//! of waiting for its dead predecessor's session to expire, and the rebalance callback that
//! starts every assigned partition at the source's own position (a checkpoint's offset, or
//! the group's committed one) and tells the reader what was assigned and revoked, so that
//! event time follows the partitions the host owns.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use sha2::{Digest, Sha256};

/// The static member id of `pipeline` on the host whose state folder is `state_dir`: the
/// same after a restart of that host, different for every other host (state folder) and
/// pipeline. A second process on the same state folder fences the first out of the group.
pub fn instance_id(state_dir: &Path, pipeline: &str) -> String {
    let folder = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_owned());
    let digest = Sha256::digest(folder.to_string_lossy().as_bytes());
    format!("sluice-{pipeline}-{}", &hex::encode(digest)[..12])
}

/// The next offset to read of each partition (`-1`: not known), shared by the reader (which
/// moves it per record) and the rebalance callback (which starts an assigned partition there).
#[derive(Debug)]
pub struct Positions {
    next: Vec<AtomicI64>,
}

impl Positions {
    /// Positions of partitions `0..count`, none known.
    pub fn new(count: usize) -> Self {
        Self {
            next: (0..count).map(|_| AtomicI64::new(-1)).collect(),
        }
    }

    /// The next offset of `partition`, when known.
    pub fn get(&self, partition: i32) -> Option<i64> {
        let slot = self.next.get(usize::try_from(partition).ok()?)?;
        Some(slot.load(Ordering::Relaxed)).filter(|&o| o >= 0)
    }

    /// Sets the next offset of `partition` (ignored for a partition created after start).
    pub fn set(&self, partition: i32, next: i64) {
        if let Some(slot) = usize::try_from(partition)
            .ok()
            .and_then(|i| self.next.get(i))
        {
            slot.store(next, Ordering::Relaxed);
        }
    }
}

/// A change of the partitions the consumer owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Partitions assigned to this consumer.
    Assigned(Vec<i32>),
    /// Partitions taken away (a rebalance, or the membership lost).
    Revoked(Vec<i32>),
}

/// What the rebalance callback needs: where each partition starts, and where to report.
#[derive(Debug)]
pub struct Membership {
    /// The source topic.
    pub topic: String,
    /// Next offset per partition.
    pub positions: std::sync::Arc<Positions>,
    /// The first offset of each partition at start (where a look-back stops).
    pub lows: Vec<i64>,
    /// How far before its position a partition is fetched (see [`fetch_from`]).
    pub look_back: i64,
    /// Changes not yet taken by the reader.
    pub changes: Mutex<Vec<Change>>,
    /// Whether `changes` may hold something (checked after every poll without a lock).
    pub pending: AtomicBool,
}

impl Membership {
    /// Takes the changes reported since the last call.
    pub fn take(&self) -> Vec<Change> {
        // A plain load first: this runs after every poll, a change is rare.
        if !self.pending.load(Ordering::Relaxed) || !self.pending.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut *self.changes.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn report(&self, change: Change) {
        self.changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(change);
        self.pending.store(true, Ordering::Release);
    }

    fn low(&self, partition: i32) -> i64 {
        usize::try_from(partition)
            .ok()
            .and_then(|i| self.lows.get(i))
            .copied()
            .unwrap_or(0)
    }
}

/// Where to fetch a partition whose next record is at `position`: a bounded look-back before
/// it, never before the partition's first offset. Some brokers (tansu 0.6) return only record
/// batches that start at or after the fetch offset, silently skipping the rest of a batch a
/// resume point falls into; the reader skips the records before `position`.
pub fn fetch_from(position: i64, low: i64, look_back: i64) -> i64 {
    position.saturating_sub(look_back).max(low).min(position)
}

/// The source's client context: routes librdkafka's errors to the log and, in a consumer
/// group, handles rebalances.
#[derive(Default)]
pub struct SourceContext {
    /// Set before the source subscribes (a consumer group); unset when it assigns itself.
    pub membership: std::sync::OnceLock<std::sync::Arc<Membership>>,
}

impl ClientContext for SourceContext {
    /// librdkafka's own log lines (`properties: { debug: cgrp }` asks for more), under the
    /// `rdkafka` target (`RUST_LOG=rdkafka=debug`).
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "rdkafka", facility, "{message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "rdkafka", facility, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "rdkafka", facility, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "rdkafka", facility, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF) => {
                tracing::debug!(reason, "Reached the end of a partition.");
            }
            _ => tracing::warn!(%error, reason, "The Kafka client reported an error."),
        }
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Some(membership) = self.membership.get() {
                    start_at_positions(membership, tpl);
                }
                tracing::info!(?partitions, "The consumer group assigned partitions.");
                let result = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                self.report(Change::Assigned(partitions));
                result
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = consumer.assignment_lost();
                tracing::info!(?partitions, lost, "The consumer group revoked partitions.");
                self.report(Change::Revoked(partitions));
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                let code: RDKafkaErrorCode = other.into();
                tracing::warn!(error = %code, "A consumer group rebalance failed.");
                self.report(Change::Revoked(partitions));
                consumer.unassign()
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, "Could not apply a consumer group rebalance.");
        }
    }
}

impl SourceContext {
    fn report(&self, change: Change) {
        if let Some(membership) = self.membership.get() {
            membership.report(change);
        }
    }
}

/// Sets the fetch offset of every assigned partition whose position is known; the others
/// start where the group's committed offset (or `auto.offset.reset`) says.
fn start_at_positions(membership: &Membership, tpl: &mut TopicPartitionList) {
    for p in tpl
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect::<Vec<_>>()
    {
        let Some(position) = membership.positions.get(p) else {
            continue;
        };
        let from = fetch_from(position, membership.low(p), membership.look_back);
        if let Err(error) = tpl.set_partition_offset(&membership.topic, p, Offset::Offset(from)) {
            tracing::warn!(%error, partition = p, "Could not set where an assigned partition starts.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_id_is_stable_per_folder_and_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let a = instance_id(dir.path(), "turnstile");
        assert_eq!(a, instance_id(dir.path(), "turnstile"));
        assert!(a.starts_with("sluice-turnstile-"), "{a}");
        assert_ne!(a, instance_id(dir.path(), "other"));
        let other = tempfile::tempdir().unwrap();
        assert_ne!(a, instance_id(other.path(), "turnstile"));
    }

    #[test]
    fn positions_are_known_only_once_set() {
        let positions = Positions::new(3);
        assert_eq!(positions.get(1), None);
        positions.set(1, 42);
        assert_eq!(positions.get(1), Some(42));
        positions.set(7, 1); // created after start: ignored
        assert_eq!(positions.get(7), None);
        assert_eq!(positions.get(-1), None);
    }

    #[test]
    fn the_look_back_stays_within_the_partition() {
        assert_eq!(fetch_from(10_000, 0, 4096), 5904);
        assert_eq!(fetch_from(100, 0, 4096), 0);
        assert_eq!(fetch_from(100, 60, 4096), 60);
        assert_eq!(fetch_from(50, 60, 4096), 50, "never after the position");
    }
}
