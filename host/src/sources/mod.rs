//! Sources: where raw records come from. Each source runs on its own thread and hands the
//! runtime [`SourceBatch`]es through a bounded channel (backpressure: a full channel blocks
//! the source), and takes offset commits back once the sinks have written what came before.

pub mod file;
pub mod http;
pub mod kafka;
pub mod registry;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use sluice_plugin_sdk::rows::BatchBuilder;
use tokio::sync::mpsc;

pub use registry::SourceSpec;

/// What starting a source needs besides its own spec.
pub struct StartContext<'a> {
    /// The pipeline's name.
    pub pipeline: &'a str,
    /// `batch:` of the pipeline.
    pub batch: &'a crate::spec::BatchSpec,
    /// Stop at the end of what is there now (`--once`).
    pub once: bool,
    /// Set to stop the source.
    pub stop: Arc<AtomicBool>,
    /// Where to continue per partition (a checkpoint's offsets).
    pub resume: Option<BTreeMap<i32, i64>>,
    /// The host's state folder.
    pub state_dir: &'a Path,
}

/// What a source kind's spec provides. Implemented by each kind's spec struct; the kinds are
/// listed in [`registry`].
pub trait SourceConfig: Send + Sync {
    /// Starts the source's thread; also returns the resolved Kafka brokers, where it has
    /// some (the default of Kafka sinks and dead-letter topics).
    fn start(&self, ctx: StartContext<'_>) -> anyhow::Result<(SourceHandle, Option<String>)>;

    /// What a checkpoint's offsets are positions in (`kafka topic=... group=...`).
    fn identity(&self, pipeline: &str) -> String;

    /// The source's connector status: what it reads.
    fn status(&self, pipeline: &str) -> serde_json::Value;

    /// Whether records can be read again from an offset (a restart replays from a
    /// checkpoint). A webhook's cannot: its offsets are committed after every batch.
    fn replayable(&self) -> bool {
        true
    }

    /// Refuses, through `refuse(path, message)`, what the host's policy does not grant to
    /// specs from the API.
    fn check_policy(&self, policy: &crate::policy::Policy, refuse: &mut dyn FnMut(&[&str], String));

    /// The Kafka spec, where the source is a consumer group (keys, offsets, lag).
    fn kafka(&self) -> Option<&kafka::KafkaSourceSpec> {
        None
    }
}

/// A batch of raw records, packed as rows of the schema `[value: bytes]`.
#[derive(Debug, Default)]
pub struct SourceBatch {
    /// One row per record: its value as `bytes`.
    pub values: BatchBuilder,
    /// Partition of each record.
    pub partitions: Vec<i32>,
    /// Offset of each record.
    pub offsets: Vec<i64>,
    /// Partitions taken on since the last batch (a consumer group assigned them): from now on
    /// they hold the watermark until they deliver or prove idle.
    pub assigned: Vec<i32>,
    /// Partitions given up since the last batch (revoked): they stop holding the watermark.
    pub revoked: Vec<i32>,
    /// Partitions the consumer found at their end after this batch's records (the high
    /// watermark reached, nothing newer; with `--once`, finished): evidence of idleness.
    pub at_end: Vec<i32>,
    /// Partitions the source went back to on request (see `SourceHandle::rewind`): their
    /// records in this batch and after it are re-read from the requested offset; any of their
    /// records in earlier batches were read before the rewind.
    pub rewound: Vec<i32>,
    /// Every partition is finished: no batch follows (`--once`, or the end of a file).
    pub end: bool,
}

impl SourceBatch {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// True when it holds no record.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The partition and offset of record `i`, if there is one.
    pub fn position(&self, i: usize) -> Option<(i32, i64)> {
        Some((*self.partitions.get(i)?, *self.offsets.get(i)?))
    }

    /// The encoded row of record `i` (a `bytes` value).
    pub fn values_row(&self, i: usize) -> &[u8] {
        sluice_plugin_sdk::rows::Batch::new(&self.values.data, &self.values.ends).row(i)
    }

    /// True when it carries nothing: no record and no news about partitions.
    pub fn is_blank(&self) -> bool {
        self.is_empty()
            && self.assigned.is_empty()
            && self.revoked.is_empty()
            && self.at_end.is_empty()
            && self.rewound.is_empty()
    }

    /// Appends one record.
    pub fn push(&mut self, partition: i32, offset: i64, value: &[u8]) {
        self.values.put_bytes(value);
        self.values.end_row();
        self.partitions.push(partition);
        self.offsets.push(offset);
    }

    /// The records `keep(i)` selects, with all of this batch's news.
    pub fn retain(&self, keep: impl Fn(usize) -> bool) -> SourceBatch {
        let mut kept = SourceBatch {
            assigned: self.assigned.clone(),
            revoked: self.revoked.clone(),
            at_end: self.at_end.clone(),
            rewound: self.rewound.clone(),
            end: self.end,
            ..Default::default()
        };
        for i in (0..self.len()).filter(|&i| keep(i)) {
            kept.values.data.extend_from_slice(self.values_row(i));
            kept.values.ends.push(kept.values.data.len() as u32);
            kept.partitions.push(self.partitions[i]);
            kept.offsets.push(self.offsets[i]);
        }
        kept
    }

    /// The next offset to consume in each partition, after this batch.
    pub fn next_offsets(&self) -> Vec<(i32, i64)> {
        let mut next: Vec<(i32, i64)> = Vec::new();
        for (&p, &o) in self.partitions.iter().zip(&self.offsets) {
            match next.iter_mut().find(|(q, _)| *q == p) {
                Some(entry) => entry.1 = entry.1.max(o + 1),
                None => next.push((p, o + 1)),
            }
        }
        next
    }
}

/// Where a source's records come from, for provenance.
#[derive(Clone, Debug)]
pub struct Origin {
    /// Topic (or file path).
    pub topic: String,
}

/// The runtime's end of a running source.
pub struct SourceHandle {
    /// Batches, in order.
    pub batches: mpsc::Receiver<SourceBatch>,
    /// Offsets to commit: the next offset of each partition.
    pub commits: std::sync::mpsc::Sender<Vec<(i32, i64)>>,
    /// What the records are.
    pub origin: Origin,
    /// Partitions of what the source reads (every partition of the topic).
    pub partitions: Vec<i32>,
    /// The partitions it owns from the start (a source that assigns itself); a consumer
    /// group's come later, as `SourceBatch::assigned`.
    pub owned: Vec<i32>,
    /// The end (next offset to be written) of each partition when the source started, where
    /// the source knows it (Kafka): a checkpoint past it does not belong to this topic.
    pub ends: std::collections::BTreeMap<i32, i64>,
    /// The thread; joined at shutdown.
    pub thread: std::thread::JoinHandle<anyhow::Result<()>>,
    /// Where to ask the source to read a partition again from an offset (a task restarting
    /// from its checkpoint); `None` for sources that cannot (the pipeline then restarts).
    pub rewind: Option<std::sync::mpsc::Sender<(i32, i64)>>,
}
