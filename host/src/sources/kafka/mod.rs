//! `kafka` source: an rdkafka consumer read on its own thread into batches (by count and
//! time). Long-running, it is a static member of the pipeline's consumer group (see
//! `group`): each assigned partition starts at the checkpoint's offset (else the group's
//! committed one), and assignments, revocations and ends of partitions travel with the
//! batches so that event time follows the partitions the host owns. With `--once` it
//! assigns every partition of the topic itself and stops at the high watermarks read at
//! start. Offsets are committed only when the runtime says the sinks have written
//! everything before them.

mod end;
mod group;
mod spec;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

pub use group::{Change, Membership, Positions, SourceContext, instance_id};

use super::{Origin, SourceBatch, SourceHandle};
pub use spec::{KafkaSourceSpec, StartFrom};

const META_TIMEOUT: Duration = Duration::from_secs(10);

/// The consumer group's session timeout unless the spec's `properties` set one: a host that
/// dies without a restart gives its partitions up after this (librdkafka's default is 45 s).
const SESSION_TIMEOUT_MS: &str = "10000";

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
    /// Static group membership (`group.instance.id`, see [`instance_id`]) when subscribing;
    /// `properties` may set another.
    pub instance_id: Option<String>,
}

/// Connects, checks the topic, and starts the consumer thread.
pub fn start(settings: KafkaSettings, stop: Arc<AtomicBool>) -> anyhow::Result<SourceHandle> {
    let consumer = consumer(&settings)?;
    let topic = settings.spec.topic.clone();
    let partitions = topic_partitions(&consumer, &settings)?;
    let starts = start_positions(&consumer, &settings, &partitions)?;
    let positions = Arc::new(Positions::new(partitions.len()));
    for (&p, start) in &starts {
        positions.set(p, start.position);
    }
    let look_back = crate::produce::MAX_BATCH_RECORDS as i64;
    let once = settings.once;
    let (ends, membership) = if once {
        (assign_all(&consumer, &settings, &starts, look_back)?, None)
    } else {
        let membership = Arc::new(Membership {
            topic: topic.clone(),
            positions: positions.clone(),
            lows: partitions
                .iter()
                .map(|p| starts.get(p).map_or(0, |s| s.low))
                .collect(),
            look_back,
            changes: Default::default(),
            pending: Default::default(),
        });
        let _ = consumer.context().membership.set(membership.clone());
        consumer
            .subscribe(&[&topic])
            .context("Could not subscribe to the topic.")?;
        (BTreeMap::new(), Some(membership))
    };
    let (tx, rx) = mpsc::channel(4);
    let (commit_tx, commit_rx) = std::sync::mpsc::channel();
    let (rewind_tx, rewind_rx) = std::sync::mpsc::channel();
    let reader = Reader {
        rewinds: rewind_rx,
        lows: starts.iter().map(|(&p, s)| (p, s.low)).collect(),
        all_ends: ends.clone(),
        look_back,
        empty_at_start: partitions
            .iter()
            .filter(|p| once && !ends.contains_key(p))
            .copied()
            .collect(),
        consumer,
        settings,
        tx,
        commits: commit_rx,
        stop,
        ends,
        positions,
        membership,
    };
    let thread = std::thread::Builder::new()
        .name("source-kafka".into())
        .spawn(move || reader.run())?;
    Ok(SourceHandle {
        batches: rx,
        commits: commit_tx,
        origin: Origin { topic },
        owned: if once { partitions.clone() } else { Vec::new() },
        ends: starts.iter().map(|(&p, s)| (p, s.high)).collect(),
        partitions,
        thread,
        rewind: Some(rewind_tx),
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
        .set("session.timeout.ms", SESSION_TIMEOUT_MS)
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
        // Prefetch: at most 4 MB of payload and 20,000 messages per partition (librdkafka's
        // defaults, 64 MB and 100,000, are for many topics on a large box). Each queued
        // message costs ~250 bytes of librdkafka bookkeeping besides its payload: at 16 MB
        // and the default count, the queue was 44 MB of a 93 MB heap peak at 10x (heaptrack),
        // the largest part of the host's memory. When the queue is full librdkafka pauses
        // fetching for `fetch.queue.backoff.ms` (1 s by default, which stalled runs for a
        // second at a time); 10 ms resumes as soon as there is room.
        .set("queued.max.messages.kbytes", "4096")
        .set("queued.min.messages", "20000")
        .set("fetch.queue.backoff.ms", "10")
        .set("log_level", "3");
    if let Some(id) = settings.instance_id.as_deref().filter(|_| !settings.once) {
        // Static membership: a restarted host is the same member and gets its partitions
        // back at once, instead of waiting for the dead one's session to expire.
        config.set("group.instance.id", id);
    }
    for (key, value) in &settings.spec.properties {
        if key == "group.instance.id" && value.trim().is_empty() {
            // `group.instance.id: ""`: a dynamic member (no static membership).
            config.remove(key);
        } else {
            config.set(key, value);
        }
    }
    config
        .create_with_context(SourceContext::default())
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

/// Where a partition starts, read once at start.
struct Start {
    /// Its first offset.
    low: i64,
    /// Its end (high watermark).
    high: i64,
    /// The next record to read: the checkpoint's offset, else the group's committed offset,
    /// else the start the spec asks for.
    position: i64,
}

/// The start of every partition of the topic.
fn start_positions(
    consumer: &Source,
    settings: &KafkaSettings,
    partitions: &[i32],
) -> anyhow::Result<BTreeMap<i32, Start>> {
    let topic = &settings.spec.topic;
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, META_TIMEOUT)
        .context("Could not read the consumer group's committed offsets.")?;
    let mut starts = BTreeMap::new();
    for &p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, META_TIMEOUT)
            .with_context(|| format!("Could not read the offsets of {topic}/{p}."))?;
        let resume = settings.resume.as_ref().and_then(|r| r.get(&p)).copied();
        // A checkpoint past the reported end: the broker may report less than it holds.
        let high = match resume {
            Some(r) if r > high => end::true_end(&settings.brokers, topic, p, low, high)?,
            _ => high,
        };
        let committed = committed.find_partition(topic, p).map(|e| e.offset());
        let position = match resume.map(Offset::Offset).or(committed) {
            Some(Offset::Offset(o)) if o >= low => o,
            _ if settings.spec.start == StartFrom::Latest => high,
            _ => low,
        };
        tracing::debug!(partition = p, low, high, position, "Partition start.");
        starts.insert(
            p,
            Start {
                low,
                high,
                position,
            },
        );
    }
    Ok(starts)
}

/// `--once`: assigns every partition at its start (with the look-back, see
/// [`group::fetch_from`]) and returns the high watermark of each partition with something to
/// read (where `--once` stops).
fn assign_all(
    consumer: &Source,
    settings: &KafkaSettings,
    starts: &BTreeMap<i32, Start>,
    look_back: i64,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let topic = &settings.spec.topic;
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for (&p, start) in starts {
        if start.position < start.high {
            ends.insert(p, start.high);
        }
        let from = group::fetch_from(start.position, start.low, look_back);
        assignment.add_partition_offset(topic, p, Offset::Offset(from))?;
    }
    consumer
        .assign(&assignment)
        .context("Could not assign the topic's partitions.")?;
    Ok(ends)
}

struct Reader {
    consumer: Source,
    settings: KafkaSettings,
    tx: mpsc::Sender<SourceBatch>,
    commits: std::sync::mpsc::Receiver<Vec<(i32, i64)>>,
    stop: Arc<AtomicBool>,
    /// `--once`: partition → offset to stop at; finished partitions are removed.
    ends: BTreeMap<i32, i64>,
    /// Next offset of each partition.
    positions: Arc<Positions>,
    /// In a consumer group: the assignments and revocations to pass on.
    membership: Option<Arc<Membership>>,
    /// `--once`: the partitions with nothing to read at start (their high watermark was
    /// read: they are at their end). In a consumer group nothing is known before the
    /// assignment.
    empty_at_start: Vec<i32>,
    /// Requests to read a partition again from an offset.
    rewinds: std::sync::mpsc::Receiver<(i32, i64)>,
    /// The first offset of each partition at start.
    lows: BTreeMap<i32, i64>,
    /// `--once`: where each partition ends, as read at start.
    all_ends: BTreeMap<i32, i64>,
    look_back: i64,
}

impl Reader {
    fn run(mut self) -> anyhow::Result<()> {
        let mut batch = SourceBatch {
            at_end: std::mem::take(&mut self.empty_at_start),
            ..Default::default()
        };
        let topic = self.settings.spec.topic.clone();
        let mut deadline = Instant::now() + self.settings.max_wait;
        let mut last_sent = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            if let Err(closed) = self.rewind(&mut batch) {
                return closed;
            }
            if self.settings.once && self.ends.is_empty() {
                return self.finish(batch);
            }
            self.commit_pending();
            let wait = deadline.saturating_duration_since(Instant::now());
            let polled = self.consumer.poll(wait);
            self.membership_changes(&mut batch);
            match polled {
                Some(Ok(message)) => {
                    let (p, o) = (message.partition(), message.offset());
                    if self.settings.once && !self.ends.contains_key(&p) {
                        continue; // finished: records produced after the start are not ours
                    }
                    if self.positions.get(p).is_some_and(|next| o < next) {
                        continue; // before the resume point (see `group::fetch_from`)
                    }
                    if !batch.at_end.is_empty() {
                        batch.at_end.retain(|&q| q != p); // not at its end any more
                    }
                    batch.push(p, o, message.payload().unwrap_or_default());
                    self.positions.set(p, o + 1);
                }
                Some(Err(KafkaError::PartitionEOF(p))) => self.reached_end(p, &mut batch),
                Some(Err(error)) => {
                    tracing::warn!(%error, topic, "The Kafka consumer reported an error.")
                }
                None => {}
            }
            let now = Instant::now();
            // An empty batch still goes out about once a second, so that the runtime sees
            // time passing (early results, idleness).
            let tick = now.duration_since(last_sent) >= Duration::from_secs(1);
            let flush = !batch.is_blank() || tick;
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

    /// Goes back in the partitions a task asked for (it restarts from its checkpoint): the
    /// batch read so far goes out first, then the consumer seeks (with the look-back) and the
    /// next batch says the partition was rewound. `Err` when the runtime hung up.
    fn rewind(&mut self, batch: &mut SourceBatch) -> Result<(), anyhow::Result<()>> {
        let requests: Vec<(i32, i64)> = self.rewinds.try_iter().collect();
        if requests.is_empty() {
            return Ok(());
        }
        if !batch.is_blank() && self.tx.blocking_send(std::mem::take(batch)).is_err() {
            return Err(Ok(()));
        }
        let topic = self.settings.spec.topic.clone();
        for (p, offset) in requests {
            let low = self.lows.get(&p).copied().unwrap_or(0);
            let from = group::fetch_from(offset, low, self.look_back);
            match self
                .consumer
                .seek(&topic, p, Offset::Offset(from), Duration::from_secs(10))
            {
                Ok(()) => {
                    self.positions.set(p, offset);
                    if let Some(&end) = self.all_ends.get(&p) {
                        self.ends.insert(p, end);
                    }
                    batch.at_end.retain(|&q| q != p);
                    batch.rewound.push(p);
                    tracing::info!(
                        partition = p,
                        offset,
                        "Reading the partition again for a task that restarts from its checkpoint."
                    );
                }
                // Not ours any more (revoked): its next owner starts from the checkpoint.
                Err(error) => {
                    tracing::warn!(partition = p, %error, "Could not go back in a partition.")
                }
            }
        }
        Ok(())
    }

    /// Passes on what the consumer group assigned and revoked since the last poll. Records of
    /// a revoked partition already in `batch` stay: they were read while it was ours.
    fn membership_changes(&self, batch: &mut SourceBatch) {
        let Some(membership) = &self.membership else {
            return;
        };
        for change in membership.take() {
            match change {
                Change::Assigned(partitions) => {
                    batch.revoked.retain(|p| !partitions.contains(p));
                    batch.assigned.extend(partitions);
                }
                Change::Revoked(partitions) => {
                    batch.assigned.retain(|p| !partitions.contains(p));
                    batch.at_end.retain(|p| !partitions.contains(p));
                    batch.revoked.extend(partitions);
                }
            }
        }
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

    /// The consumer reached the end of `p` (evidence that it is idle, if it stays there).
    /// With `--once` the partition is finished once its position is at or past the end read
    /// at start (the broker's end-of-partition signal is trusted over the listed high
    /// watermark, which some brokers report low).
    fn reached_end(&mut self, p: i32, batch: &mut SourceBatch) {
        if !batch.at_end.contains(&p) {
            batch.at_end.push(p);
        }
        if !self.settings.once {
            return;
        }
        let position = self.positions.get(p).unwrap_or(0);
        if self.ends.get(&p).is_some_and(|&end| position >= end) {
            self.ends.remove(&p);
        }
    }

    fn finish(self, mut batch: SourceBatch) -> anyhow::Result<()> {
        batch.end = true;
        let _ = self.tx.blocking_send(batch);
        self.serve_commits()
    }

    /// Commits what the runtime checkpointed since the last poll: the newest offset of each
    /// partition (tasks checkpoint their partitions separately).
    fn commit_pending(&mut self) {
        let mut latest: BTreeMap<i32, i64> = BTreeMap::new();
        while let Ok(offsets) = self.commits.try_recv() {
            for (p, o) in offsets {
                let entry = latest.entry(p).or_insert(o);
                *entry = (*entry).max(o);
            }
        }
        if !latest.is_empty() {
            let offsets: Vec<(i32, i64)> = latest.into_iter().collect();
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
