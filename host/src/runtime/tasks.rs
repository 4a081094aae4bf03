//! Tasks: a pipeline whose state splits by source partition (see `keys`) runs one task per
//! partition it holds. A task has its own plugin instances (own stores, own limits), its
//! partition's window state and watermark, and its own checkpoints
//! (`<pipeline>/partition-<p>/`, fenced per partition). Tasks are spread over `parallelism`
//! worker threads; a dispatcher routes each source batch's records to the task of their
//! partition.
//!
//! Ownership follows the source: a partition the host owns from the start or is assigned by
//! the consumer group starts its task from that partition's newest checkpoint, whichever host
//! wrote it (records before the checkpoint's offset are skipped, as they are in its state); a
//! revoked partition checkpoints and lets go; a partition whose checkpoints a newer owner
//! claimed (this host stalled past its session) is dropped without writing more.
//!
//! A task whose window traps or breaks a limit under `on_violation: restart` restarts alone:
//! new instances, its partition's checkpoint restored, and the source asked to read that
//! partition again from the checkpoint's offset (its records still in flight from before are
//! dropped until the re-read ones arrive); at most [`MAX_RESTARTS`] times in a row. A task
//! that fails for good stops alone, reported in the status, while the others go on; the run
//! then ends failed, naming it. Every
//! task's results go through the pipeline's one writer, each checkpoint after its own task's
//! results. A shuffle (input keyed otherwise, through an internal topic) would be one more
//! dispatcher in front of the same tasks.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, mpsc as sync_mpsc};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;

use super::chain::Chain;
use super::checkpoint::CheckpointStore;
use super::counters::StageInfo;
use super::pipeline::{Input, Message, Next, Stats};
use crate::sources::SourceBatch;
use crate::spec::SpecErrors;

/// How often the workers are told that time passed (see [`Work::Tick`]).
pub(super) const TICK: Duration = Duration::from_millis(500);

/// Builds the chain of one partition's task.
pub type ChainFactory = Arc<dyn Fn(i32) -> Result<Chain, SpecErrors> + Send + Sync>;

/// What the tasks of one pipeline share.
pub struct TaskPlan {
    /// Builds a task's chain (its stages count into the pipeline's counters).
    pub factory: ChainFactory,
    /// Worker threads.
    pub workers: usize,
    /// The pipeline's checkpoint store; each task writes below it, in its partition's folder.
    pub store: CheckpointStore,
    /// Which source the offsets belong to.
    pub source: String,
    /// Checkpoint interval.
    pub interval: Duration,
    /// Partitions held from the start (a source that assigns itself).
    pub owned: Vec<i32>,
    /// Partitions whose checkpoints a newer owner claimed: their tasks stop without writing.
    pub fenced: Mutex<BTreeMap<i32, std::time::Instant>>,
    /// Set once a task processed its first records (start-up is measured to that log line).
    pub started: AtomicBool,
    /// Where to ask the source to read a partition again (a task restarting alone).
    pub rewind: Option<sync_mpsc::Sender<(i32, i64)>>,
    /// The pipeline's counters, where tasks that failed for good are listed.
    pub stats: Arc<Stats>,
    /// The source's offsets are positions in a log read again after a restart (Kafka, files),
    /// not a webhook's count of what it accepted.
    pub replayable: bool,
}

impl TaskPlan {
    /// True when a newer owner claimed `partition`'s checkpoints.
    pub(super) fn is_fenced(&self, partition: i32) -> bool {
        self.fenced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&partition)
    }

    /// When `partition` was fenced, if it is.
    fn fenced_since(&self, partition: i32) -> Option<std::time::Instant> {
        self.fenced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&partition)
            .copied()
    }

    /// Lifts the fence of `partition`.
    fn unfence(&self, partition: i32) {
        self.fenced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&partition);
    }

    fn failed(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, String>> {
        self.stats
            .failed_tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn has_failed(&self, partition: i32) -> bool {
        self.failed().contains_key(&partition)
    }

    /// The partitions whose task failed for good, and why.
    pub fn failures(&self) -> BTreeMap<i32, String> {
        self.failed().clone()
    }

    /// Marks `partition` as taken over by a newer owner.
    pub fn fence(&self, partition: i32) {
        self.fenced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(partition)
            .or_insert_with(std::time::Instant::now);
    }
}

/// How long records of a fenced partition may keep arriving before this host takes it up
/// again: past any session timeout, its consumer would have lost the partition if another
/// host had it; still getting its records, this host owns it (the refusal came from a former
/// owner's late checkpoint) and continues from the newest checkpoint.
const RECLAIM_AFTER: Duration = Duration::from_secs(30);

/// Makes the stages of `chain` count into `template`'s counters (one set per pipeline).
pub fn share_counters(chain: &mut Chain, template: &[StageInfo]) {
    let mut shared = template.iter().map(|s| Arc::clone(&s.counters));
    for stage in &mut chain.pre {
        stage.counters = shared.next().unwrap_or_default();
    }
    if let Some(window) = chain.window.as_mut() {
        window.counters = shared.next().unwrap_or_default();
    }
    for stage in &mut chain.post {
        stage.counters = shared.next().unwrap_or_default();
    }
}

/// What a worker is asked to do, in order.
pub(super) enum Work {
    /// The partition was assigned (again): a fence on it is lifted, a task it still had is
    /// dropped (it starts again from the newest checkpoint).
    Assign(i32),
    /// Records (and news) of one partition.
    Batch(i32, SourceBatch),
    /// The partition was revoked: checkpoint it and let go.
    Revoke(i32),
    /// Time passed: a task whose checkpoint is due and that consumed records since its last
    /// one checkpoints now, even when no record of its partition arrives (the topic went
    /// quiet), so that its offsets are committed and a restart does not read it all again.
    Tick,
}

/// The dispatcher: runs on the pipeline's processing thread until the source ends, routing
/// each batch to the workers; then lets every task take its final checkpoint.
pub(super) fn dispatch_loop(
    plan: Arc<TaskPlan>,
    mut input: Input,
    tx: mpsc::Sender<Message>,
    owners: &Stats,
) -> anyhow::Result<()> {
    let mut workers: Vec<Slot> = Vec::new();
    for i in 0..plan.workers {
        let (work_tx, work_rx) = sync_mpsc::sync_channel::<Work>(4);
        let (plan, tx, runtime) = (plan.clone(), tx.clone(), input.runtime.clone());
        let thread = std::thread::Builder::new()
            .name(format!("sluice-task-{i}"))
            .spawn(move || worker::Worker::new(i, plan, tx, runtime).run(work_rx))
            .context("Cannot start a task thread.")?;
        workers.push(Slot {
            work: Some(work_tx),
            thread: Some(thread),
            partitions: 0,
        });
    }
    drop(tx);
    let mut placed: BTreeMap<i32, usize> = BTreeMap::new();
    for &p in &plan.owned {
        let task = place(&mut placed, &mut workers, p);
        owners.own(&[p], Some(task));
    }
    let mut last_tick = std::time::Instant::now();
    'read: loop {
        let batch = match input.next_within(TICK) {
            Some(Next::Batch(batch)) => batch,
            // Nothing came: time still passes for the tasks (see `Work::Tick`).
            None => SourceBatch::default(),
            // Chains are switched in place only in a pipeline that runs as one task.
            Some(Next::Swap) => continue,
            Some(Next::SourceEnded) => break,
        };
        let end = batch.end;
        let mut sends = Vec::new();
        for &p in &batch.assigned {
            let task = place(&mut placed, &mut workers, p);
            owners.own(&[p], Some(task));
            sends.push((task, Work::Assign(p)));
        }
        let revoked = batch.revoked.clone();
        let held: Vec<i32> = placed.keys().copied().collect();
        for (p, part) in split(batch, held.into_iter()) {
            let known = placed.contains_key(&p);
            let task = place(&mut placed, &mut workers, p);
            if !known {
                owners.own(&[p], Some(task));
            }
            sends.push((task, Work::Batch(p, part)));
        }
        for p in revoked {
            if let Some(w) = placed.remove(&p) {
                owners.own(&[p], None);
                workers[w].partitions -= 1;
                sends.push((w, Work::Revoke(p)));
            }
        }
        // The source sends a batch about once a second even when it has no record.
        if last_tick.elapsed() >= TICK {
            last_tick = std::time::Instant::now();
            sends.extend((0..workers.len()).map(|w| (w, Work::Tick)));
        }
        for (w, work) in sends {
            let sent = workers[w]
                .work
                .as_ref()
                .is_some_and(|s| s.send(work).is_ok());
            if !sent {
                break 'read; // that worker stopped: its error is returned below
            }
        }
        if end {
            break;
        }
    }
    let mut result = Ok(());
    for slot in &mut workers {
        drop(slot.work.take());
        let outcome = match slot.thread.take().map(|t| t.join()) {
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => Err(anyhow::anyhow!("A task thread panicked.")),
            None => Ok(()),
        };
        if result.is_ok() {
            result = outcome;
        }
    }
    let failures = plan.failures();
    if result.is_ok() && !failures.is_empty() {
        let named: Vec<String> = failures
            .iter()
            .map(|(p, e)| format!("partition {p}: {e}"))
            .collect();
        result = Err(anyhow::anyhow!(
            "{} of the pipeline's tasks failed (the others ran on): {}",
            failures.len(),
            named.join("; ")
        ));
    }
    result
}

/// A worker thread, as the dispatcher sees it.
struct Slot {
    work: Option<sync_mpsc::SyncSender<Work>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    partitions: usize,
}

/// The worker of partition `p`: where it is, else the one with the fewest partitions.
fn place(placed: &mut BTreeMap<i32, usize>, workers: &mut [Slot], p: i32) -> usize {
    *placed.entry(p).or_insert_with(|| {
        let (least, _) = workers
            .iter()
            .enumerate()
            .min_by_key(|(_, w)| w.partitions)
            .expect("at least one worker");
        workers[least].partitions += 1;
        least
    })
}

/// Splits `batch` by partition: each part holds that partition's records and news; at the
/// end of the source every partition in `held` gets a part, so that all tasks finish.
/// Records of one partition come in runs (a fetch returns each partition's records together):
/// a run is copied at once, and a batch of one partition is handed on without a copy.
fn split(mut batch: SourceBatch, held: impl Iterator<Item = i32>) -> BTreeMap<i32, SourceBatch> {
    let mut parts: BTreeMap<i32, SourceBatch> = BTreeMap::new();
    let single = batch
        .partitions
        .first()
        .copied()
        .filter(|&first| batch.partitions.iter().all(|&p| p == first));
    if let Some(p) = single {
        let part = parts.entry(p).or_default();
        part.values = std::mem::take(&mut batch.values);
        part.partitions = std::mem::take(&mut batch.partitions);
        part.offsets = std::mem::take(&mut batch.offsets);
    }
    let mut i = 0;
    while i < batch.len() {
        let p = batch.partitions[i];
        let run = batch.partitions[i..]
            .iter()
            .take_while(|&&q| q == p)
            .count();
        let part = parts.entry(p).or_default();
        let start = if i == 0 { 0 } else { batch.values.ends[i - 1] };
        let end = batch.values.ends[i + run - 1];
        // Row ends in the part: shifted from the batch's data to the part's.
        let shift = part.values.data.len() as i64 - i64::from(start);
        part.values
            .data
            .extend_from_slice(&batch.values.data[start as usize..end as usize]);
        part.values.ends.extend(
            batch.values.ends[i..i + run]
                .iter()
                .map(|&e| (i64::from(e) + shift) as u32),
        );
        part.partitions
            .extend_from_slice(&batch.partitions[i..i + run]);
        part.offsets.extend_from_slice(&batch.offsets[i..i + run]);
        i += run;
    }
    for &p in &batch.assigned {
        parts.entry(p).or_default().assigned.push(p);
    }
    for &p in &batch.at_end {
        parts.entry(p).or_default().at_end.push(p);
    }
    for &p in &batch.rewound {
        parts.entry(p).or_default().rewound.push(p);
    }
    if batch.end {
        for p in held {
            parts.entry(p).or_default();
        }
        for part in parts.values_mut() {
            part.end = true;
        }
    }
    parts
}

mod worker;

#[cfg(test)]
mod tests;
