//! `kafka` source: an rdkafka consumer in a consumer group, read on its own thread into
//! batches (by count and time). With `--once` it assigns every partition of the topic
//! itself, resumes from the group's committed offsets, and stops at the high watermarks
//! read at start. Offsets are committed only when the runtime says the sinks have written
//! everything before them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::{Origin, SourceBatch, SourceHandle};
use crate::spec::{KafkaSourceSpec, StartFrom};

const META_TIMEOUT: Duration = Duration::from_secs(10);

/// Routes librdkafka's error events to our log: reaching the end of a partition is an event
/// the source handles, not an error.
pub struct SourceContext;

impl ClientContext for SourceContext {
    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF) => {
                tracing::debug!(reason, "Reached the end of a partition.");
            }
            _ => tracing::warn!(%error, reason, "The Kafka client reported an error."),
        }
    }
}

impl ConsumerContext for SourceContext {}

/// The source's consumer type.
pub type Source = BaseConsumer<SourceContext>;

/// Settings resolved from the spec.
pub struct KafkaSettings {
    /// Bootstrap servers (already resolved from `embedded`).
    pub brokers: String,
    /// Consumer group.
    pub group: String,
    /// The spec.
    pub spec: KafkaSourceSpec,
    /// Records per batch.
    pub max_records: usize,
    /// Time a batch may wait to fill.
    pub max_wait: Duration,
    /// Stop at the high watermarks read at start.
    pub once: bool,
    /// Where to continue per partition (a checkpoint's offsets), over the group's commits.
    pub resume: Option<BTreeMap<i32, i64>>,
}

/// Connects, checks the topic, and starts the consumer thread.
pub fn start(settings: KafkaSettings, stop: Arc<AtomicBool>) -> anyhow::Result<SourceHandle> {
    let consumer = consumer(&settings)?;
    let topic = settings.spec.topic.clone();
    let partitions = topic_partitions(&consumer, &settings)?;
    let (ends, positions) = if settings.once {
        assign_all(&consumer, &settings, &partitions)?
    } else {
        consumer
            .subscribe(&[&topic])
            .context("Could not subscribe to the topic.")?;
        // Records before a checkpoint's offsets are already in the restored state.
        (BTreeMap::new(), settings.resume.clone().unwrap_or_default())
    };
    let (tx, rx) = mpsc::channel(4);
    let (commit_tx, commit_rx) = std::sync::mpsc::channel();
    let reader = Reader {
        consumer,
        settings,
        tx,
        commits: commit_rx,
        stop,
        ends,
        positions,
    };
    let thread = std::thread::Builder::new()
        .name("source-kafka".into())
        .spawn(move || reader.run())?;
    Ok(SourceHandle {
        batches: rx,
        commits: commit_tx,
        origin: Origin { topic },
        partitions,
        thread,
    })
}

/// The consumer with the source's settings (also the consume-only loop of `make bench`).
pub fn consumer(settings: &KafkaSettings) -> anyhow::Result<Source> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &settings.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set(
            "auto.offset.reset",
            match settings.spec.start {
                StartFrom::Earliest => "earliest",
                StartFrom::Latest => "latest",
            },
        )
        .set("fetch.min.bytes", "1")
        // A broker may hold a fetch until this expires even with data ready (tansu does):
        // librdkafka's 500 ms default put up to half a second between batches.
        .set("fetch.wait.max.ms", "20")
        // Prefetch: at most 16 MB of payload (librdkafka's default 64 MB, plus ~150 bytes of
        // overhead per message, was the largest part of the host's heap in `make bench`).
        // When the queue is full librdkafka pauses fetching for `fetch.queue.backoff.ms` (1 s
        // by default, which stalled runs for a second at a time); 10 ms resumes as soon as
        // there is room. (Fewer prefetched messages, `queued.min.messages` 30,000, saves
        // another ~15 MB but fetches the partitions less evenly: the first result took 0.65 s
        // instead of 0.25 s.)
        .set("queued.max.messages.kbytes", "16384")
        .set("fetch.queue.backoff.ms", "10")
        .set("log_level", "3");
    for (key, value) in &settings.spec.properties {
        config.set(key, value);
    }
    config
        .create_with_context(SourceContext)
        .context("Could not create the Kafka consumer.")
}

fn topic_partitions(consumer: &Source, settings: &KafkaSettings) -> anyhow::Result<Vec<i32>> {
    let topic = &settings.spec.topic;
    let metadata = consumer.fetch_metadata(Some(topic), META_TIMEOUT).map_err(|e| {
        anyhow::anyhow!(
            "Cannot reach the Kafka brokers at `{}` ({e}). Check that a broker runs there, or set \
             `brokers:` in the spec (or KAFKA_BROKERS) to a reachable address.",
            settings.brokers
        )
    })?;
    let partitions = partitions_of(&metadata, topic);
    if partitions.is_empty() {
        bail!(
            "Topic `{topic}` does not exist on the brokers at `{}`. Create it, or fill it with \
             `sluice produce --brokers {} --topic {topic} --file <data>`.",
            settings.brokers,
            settings.brokers
        );
    }
    Ok(partitions)
}

/// The partition ids of `topic` in `metadata` (none when the topic is missing or in error).
pub fn partitions_of(metadata: &rdkafka::metadata::Metadata, topic: &str) -> Vec<i32> {
    metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect()
}

/// Assigns every partition at the checkpoint's offset, else the group's committed offset (or
/// `start`), and returns the
/// high watermark of each partition with something to read (where `--once` stops) and the
/// start position of every partition.
fn assign_all(
    consumer: &Source,
    settings: &KafkaSettings,
    partitions: &[i32],
) -> anyhow::Result<(BTreeMap<i32, i64>, BTreeMap<i32, i64>)> {
    let topic = &settings.spec.topic;
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, META_TIMEOUT)
        .context("Could not read the consumer group's committed offsets.")?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    let mut positions = BTreeMap::new();
    for &p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, META_TIMEOUT)
            .with_context(|| format!("Could not read the offsets of {topic}/{p}."))?;
        let resume = settings.resume.as_ref().and_then(|r| r.get(&p)).copied();
        let committed = committed.find_partition(topic, p).map(|e| e.offset());
        let start = match resume.map(Offset::Offset).or(committed) {
            Some(Offset::Offset(o)) if o >= low => Offset::Offset(o),
            _ if settings.spec.start == StartFrom::Latest => Offset::Offset(high),
            _ => Offset::Offset(low),
        };
        tracing::debug!(partition = p, low, high, ?start, "Assigned a partition.");
        let Offset::Offset(o) = start else {
            unreachable!("start is always an exact offset")
        };
        positions.insert(p, o);
        if o < high {
            ends.insert(p, high);
        }
        // Some brokers (tansu 0.6) only return record batches that start at or after the
        // fetch offset, silently skipping the rest of a batch a resume point falls into. Fetch
        // from a bounded look-back instead; records before the resume point are skipped.
        let fetch_from = (o - crate::produce::MAX_BATCH_RECORDS as i64).max(low);
        assignment.add_partition_offset(topic, p, Offset::Offset(fetch_from))?;
    }
    consumer
        .assign(&assignment)
        .context("Could not assign the topic's partitions.")?;
    Ok((ends, positions))
}

struct Reader {
    consumer: Source,
    settings: KafkaSettings,
    tx: mpsc::Sender<SourceBatch>,
    commits: std::sync::mpsc::Receiver<Vec<(i32, i64)>>,
    stop: Arc<AtomicBool>,
    /// `--once`: partition → offset to stop at; finished partitions are removed.
    ends: BTreeMap<i32, i64>,
    /// Next offset of each assigned partition.
    positions: BTreeMap<i32, i64>,
}

impl Reader {
    fn run(mut self) -> anyhow::Result<()> {
        let mut batch = SourceBatch::default();
        // Partitions with nothing to read are idle from the start.
        let topic = self.settings.spec.topic.clone();
        batch.idle.extend(
            self.positions
                .keys()
                .filter(|p| !self.ends.contains_key(p))
                .copied(),
        );
        let mut deadline = Instant::now() + self.settings.max_wait;
        let mut last_sent = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            if self.settings.once && self.ends.is_empty() {
                return self.finish(batch);
            }
            self.commit_pending();
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.consumer.poll(wait) {
                Some(Ok(message)) => {
                    let (p, o) = (message.partition(), message.offset());
                    if self.settings.once && !self.ends.contains_key(&p) {
                        continue; // finished: records produced after the start are not ours
                    }
                    if self.positions.get(&p).is_some_and(|&next| o < next) {
                        continue; // before the resume point (see `assign_all`)
                    }
                    batch.push(p, o, message.payload().unwrap_or_default());
                    self.positions.insert(p, o + 1);
                }
                Some(Err(KafkaError::PartitionEOF(p))) => self.caught_up(p, &mut batch),
                Some(Err(error)) => {
                    tracing::warn!(%error, topic, "The Kafka consumer reported an error.")
                }
                None => {}
            }
            let now = Instant::now();
            // An empty batch still goes out about once a second, so that the runtime sees idle
            // partitions and time passing (early results, watermark idleness).
            let tick = now.duration_since(last_sent) >= Duration::from_secs(1);
            let flush = !batch.is_empty() || !batch.idle.is_empty() || tick;
            if batch.len() >= self.settings.max_records || (now >= deadline && flush) {
                last_sent = now;
                if self.tx.blocking_send(std::mem::take(&mut batch)).is_err() {
                    return self.serve_commits();
                }
                deadline = now + self.settings.max_wait;
            } else if now >= deadline {
                deadline = now + self.settings.max_wait;
            }
        }
        self.serve_commits()
    }

    /// Stops reading (the runtime sees the end of the batches) and keeps committing what the
    /// runtime checkpoints until it drops its end of the channel.
    fn serve_commits(self) -> anyhow::Result<()> {
        let Self {
            consumer,
            settings,
            tx,
            commits,
            ..
        } = self;
        drop(tx);
        while let Ok(offsets) = commits.recv() {
            commit(&consumer, &settings.spec.topic, &offsets);
        }
        Ok(())
    }

    /// The consumer reached the end of `p`. With `--once` the partition is finished once its
    /// position is at or past the end read at start (the broker's end-of-partition signal is
    /// trusted over the listed high watermark, which some brokers report low).
    fn caught_up(&mut self, p: i32, batch: &mut SourceBatch) {
        batch.idle.push(p);
        if !self.settings.once {
            return;
        }
        let position = self.positions.get(&p).copied().unwrap_or(0);
        if self.ends.get(&p).is_some_and(|&end| position >= end) {
            self.ends.remove(&p);
        }
    }

    fn finish(self, mut batch: SourceBatch) -> anyhow::Result<()> {
        batch.end = true;
        let _ = self.tx.blocking_send(batch);
        self.serve_commits()
    }

    fn commit_pending(&mut self) {
        let mut latest: Option<Vec<(i32, i64)>> = None;
        while let Ok(offsets) = self.commits.try_recv() {
            latest = Some(offsets);
        }
        if let Some(offsets) = latest {
            commit(&self.consumer, &self.settings.spec.topic, &offsets);
        }
    }
}

fn commit(consumer: &Source, topic: &str, offsets: &[(i32, i64)]) {
    let mut tpl = TopicPartitionList::new();
    for &(p, o) in offsets {
        if tpl
            .add_partition_offset(topic, p, Offset::Offset(o))
            .is_err()
        {
            return;
        }
    }
    if let Err(error) = consumer.commit(&tpl, CommitMode::Sync) {
        tracing::warn!(%error, "Could not commit source offsets; they will be committed with the next checkpoint.");
    }
}
