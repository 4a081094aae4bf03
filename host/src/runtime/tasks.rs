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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc as sync_mpsc};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;

use super::MAX_RESTARTS;
use super::barrier::Barrier;
use super::chain::ChainErrorKind;
use super::chain::{Chain, ChainError};
use super::checkpoint::{CheckpointStore, Fenced};
use super::counters::StageInfo;
use super::pipeline::{Input, Message, Next, Stats, chain_failed};
use crate::sources::SourceBatch;
use crate::spec::SpecErrors;

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
    pub fenced: Mutex<BTreeSet<i32>>,
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
    fn is_fenced(&self, partition: i32) -> bool {
        self.fenced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&partition)
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
            .insert(partition);
    }
}

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
enum Work {
    /// The partition was assigned (again): a fence on it is lifted, a task it still had is
    /// dropped (it starts again from the newest checkpoint).
    Assign(i32),
    /// Records (and news) of one partition.
    Batch(i32, SourceBatch),
    /// The partition was revoked: checkpoint it and let go.
    Revoke(i32),
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
            .spawn(move || Worker::new(plan, tx, runtime).run(work_rx))
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
    'read: loop {
        let batch = match input.next() {
            Next::Batch(batch) => batch,
            // Chains are switched in place only in a pipeline that runs as one task.
            Next::Swap => continue,
            Next::SourceEnded => break,
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
fn split(batch: SourceBatch, held: impl Iterator<Item = i32>) -> BTreeMap<i32, SourceBatch> {
    let mut parts: BTreeMap<i32, SourceBatch> = BTreeMap::new();
    for i in 0..batch.len() {
        let p = batch.partitions[i];
        let part = parts.entry(p).or_default();
        part.values.data.extend_from_slice(batch.values_row(i));
        part.values.ends.push(part.values.data.len() as u32);
        part.partitions.push(p);
        part.offsets.push(batch.offsets[i]);
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

/// One partition's task.
struct Task {
    chain: Chain,
    barrier: Barrier,
    /// The restored checkpoint's offset: records before it are already in the state.
    resume_at: Option<i64>,
    /// Where its state begins: the checkpoint's offset, else its first record's.
    origin: Option<i64>,
    /// Restarted: records are dropped until the source says it read the partition again.
    awaiting_rewind: bool,
    /// The source was asked once to go back to the checkpoint's offset.
    rewound_once: bool,
    /// Its first record was logged.
    logged_first: bool,
    /// The offset from which a gap was last read again.
    gap_read_again: Option<i64>,
}

/// A worker thread and the tasks it runs.
struct Worker {
    plan: Arc<TaskPlan>,
    tx: mpsc::Sender<Message>,
    runtime: tokio::runtime::Handle,
    tasks: BTreeMap<i32, Task>,
    /// Restarts in a row, by partition (reset by a checkpoint).
    restarts: BTreeMap<i32, u32>,
}

impl Worker {
    fn new(
        plan: Arc<TaskPlan>,
        tx: mpsc::Sender<Message>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            plan,
            tx,
            runtime,
            tasks: BTreeMap::new(),
            restarts: BTreeMap::new(),
        }
    }

    /// Works until the dispatcher hangs up, then checkpoints every task it still runs.
    fn run(mut self, work: sync_mpsc::Receiver<Work>) -> anyhow::Result<()> {
        while let Ok(next) = work.recv() {
            let open = match next {
                Work::Assign(p) => {
                    // The source starts the partition again from its checkpoint's (or the
                    // group's) offset: so does its task, from the newest checkpoint.
                    self.plan
                        .fenced
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&p);
                    self.plan.failed().remove(&p);
                    self.tasks.remove(&p);
                    self.restarts.remove(&p);
                    true
                }
                Work::Batch(p, batch) => self.process(p, batch)?,
                Work::Revoke(p) => match self.tasks.remove(&p) {
                    Some(mut task) => self.checkpoint(p, &mut task, true)?,
                    None => true,
                },
            };
            if !open {
                return Ok(()); // the writer stopped; it reports why
            }
        }
        for (p, mut task) in std::mem::take(&mut self.tasks) {
            if !self.checkpoint(p, &mut task, false)? {
                break;
            }
        }
        Ok(())
    }

    /// Runs one partition's part of a batch through its task; false when the writer is gone.
    fn process(&mut self, p: i32, mut batch: SourceBatch) -> anyhow::Result<bool> {
        if self.plan.is_fenced(p) || self.plan.has_failed(p) {
            self.tasks.remove(&p);
            return Ok(true);
        }
        if !self.tasks.contains_key(&p) {
            match self.start(p) {
                Ok(task) => {
                    self.tasks.insert(p, task);
                }
                Err(error) if error.downcast_ref::<Fenced>().is_some() => {
                    tracing::warn!(partition = p, error = %format!("{error:#}"),
                        "Another host took this partition over; leaving it to them.");
                    self.plan.fence(p);
                    return Ok(true);
                }
                Err(error) => return Err(error),
            }
        }
        let task = self.tasks.get_mut(&p).expect("started above");
        if task.awaiting_rewind {
            if batch.end && !batch.rewound.contains(&p) {
                let message = format!(
                    "Pipeline `{}`: the source ended before partition {p} could be read again \
                     for its restarted task",
                    task.chain.pipeline
                );
                self.tasks.remove(&p);
                tracing::error!(partition = p, "{message}");
                self.plan.failed().insert(p, message);
                return Ok(true);
            }
            if !batch.rewound.contains(&p) {
                return Ok(true); // read before the rewind: it is read again
            }
            task.awaiting_rewind = false;
        }
        // A webhook's offsets start again at each run: they say nothing of the state.
        let replayable = self.plan.replayable;
        if let (true, Some(resume_at), Some(&first)) =
            (replayable, task.resume_at, batch.offsets.first())
        {
            if first > resume_at && !task.rewound_once && !batch.end {
                tracing::info!(
                    partition = p,
                    first,
                    resume_at,
                    "The source is past the partition's checkpoint; reading it again from there."
                );
                // The source starts past the checkpoint (at offsets another owner committed
                // later): read the partition again from the checkpoint's offset.
                if let Some(rewind) = &self.plan.rewind
                    && rewind.send((p, resume_at)).is_ok()
                {
                    task.rewound_once = true;
                    task.awaiting_rewind = true;
                    return Ok(true);
                }
            }
            // Before the checkpoint's offset: already in the restored state.
            batch = skip_before(batch, resume_at);
            if batch.offsets.last().is_some_and(|&o| o >= resume_at) {
                task.resume_at = None;
            }
        }
        // Records the state already holds (read again after the source went back, or twice
        // around a rebalance) are dropped: each record counts once, in offset order.
        if let (true, Some(&next)) = (replayable, task.barrier.positions.get(&p)) {
            batch = skip_before(batch, next);
            // And none is skipped: offsets follow each other. A gap (a broker that skipped
            // part of a record batch, as tansu 0.6 does when a fetch starts inside one) is
            // read again once; a gap still there after that is the log's own (compaction,
            // transaction markers) and accepted.
            if let Some(gap) = first_gap(&batch, next)
                && task.gap_read_again != Some(gap.1)
                && !batch.end
                && let Some(rewind) = &self.plan.rewind
                && rewind.send((p, gap.1)).is_ok()
            {
                tracing::warn!(
                    partition = p,
                    missing_from = gap.1,
                    next_read = batch.offsets[gap.0],
                    "The source skipped records of the partition; reading them again."
                );
                task.gap_read_again = Some(gap.1);
                task.awaiting_rewind = true;
                batch = truncate(batch, gap.0);
            }
        }
        if task.origin.is_none() {
            task.origin = batch.offsets.first().copied();
        }
        if !task.logged_first
            && let Some(&first) = batch.offsets.first()
        {
            task.logged_first = true;
            tracing::debug!(partition = p, first, checkpoint = ?task.barrier.positions.get(&p),
                "The task's first record.");
        }
        let offsets = batch.next_offsets();
        let end = batch.end;
        let output = match task.chain.process(batch) {
            Ok(output) => output,
            Err(error) => return self.task_failed(p, error),
        };
        if output.records_in > 0 && !self.plan.started.swap(true, Ordering::Relaxed) {
            // Start-up is measured to this line (make bench).
            tracing::info!(pipeline = %task.chain.pipeline, records = output.records_in, "Processed the first batch.");
        }
        task.barrier.advance(&offsets);
        let message = Message::Output(output, offsets, end, Some(p));
        if self.tx.blocking_send(message).is_err() {
            return Ok(false);
        }
        if end || task.barrier.due() {
            let mut task = self.tasks.remove(&p).expect("running");
            let open = self.checkpoint(p, &mut task, false)?;
            self.restarts.remove(&p);
            if !end {
                self.tasks.insert(p, task);
            }
            return Ok(open);
        }
        Ok(true)
    }

    /// After `error` in the task of `p`: restarts it alone from its partition's checkpoint
    /// when its policy asks for that and the source can read the partition again, else stops
    /// it for good (reported; the other tasks go on).
    fn task_failed(&mut self, p: i32, error: ChainError) -> anyhow::Result<bool> {
        let old = self.tasks.remove(&p).expect("running");
        let restarts = self.restarts.entry(p).or_insert(0);
        let restart =
            error.kind == ChainErrorKind::RestartFromCheckpoint && *restarts < MAX_RESTARTS;
        if let (true, Some(rewind)) = (restart, &self.plan.rewind) {
            *restarts += 1;
            let restarts = *restarts;
            tracing::warn!(pipeline = %old.chain.pipeline, partition = p, restarts, error = %error,
                "A task restarts from its partition's last checkpoint; the other tasks go on.");
            let mut task = self.start(p)?;
            let from = task.resume_at.or(old.origin);
            if let Some(from) = from {
                task.resume_at = Some(from);
                task.origin = Some(from);
                task.awaiting_rewind = rewind.send((p, from)).is_ok();
            }
            self.tasks.insert(p, task);
            return Ok(true);
        }
        let message = if error.kind == ChainErrorKind::RestartFromCheckpoint {
            format!(
                "Pipeline `{}`: the task of partition {p} stopped after {MAX_RESTARTS} restarts in \
                 a row from its checkpoint: {error}",
                old.chain.pipeline
            )
        } else {
            format!("{:#}", failed(&old.chain, error))
        };
        tracing::error!(partition = p, error = %message, "A task failed; the pipeline's other tasks go on.");
        self.plan.failed().insert(p, message);
        Ok(true)
    }

    /// Starts the task of partition `p` from its newest checkpoint, claiming the next epoch
    /// so that a stalled former owner is fenced.
    fn start(&self, p: i32) -> anyhow::Result<Task> {
        let mut attempts = 0;
        loop {
            match self.try_start(p) {
                // Another process wrote a checkpoint of the partition between our listing and
                // our claim (its former owner, finishing): read the newest one again.
                Err(error) if error.downcast_ref::<Fenced>().is_some() && attempts < 5 => {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    fn try_start(&self, p: i32) -> anyhow::Result<Task> {
        let mut chain = (self.plan.factory)(p).map_err(|e| anyhow::anyhow!("{e}"))?;
        let store = self.plan.store.partition(p);
        let (restored, next) = self.runtime.block_on(store.latest_and_next())?;
        let restored = restored.filter(|c| {
            let same = c.source == self.plan.source;
            if !same {
                tracing::warn!(partition = p, checkpoint_source = %c.source, source = %self.plan.source,
                    "The partition's last checkpoint is of another source; starting without it.");
            }
            same
        });
        let mut epoch = next;
        if let Some(checkpoint) = &restored {
            let pipeline = chain.pipeline.clone();
            super::Host::restore(&mut chain, checkpoint, &pipeline, &store.describe)?;
            self.runtime.block_on(store.claim(checkpoint, next))?;
            epoch = next + 1;
            tracing::info!(partition = p, epoch = checkpoint.epoch, offset = ?checkpoint.offsets.get(&p),
                watermark = checkpoint.watermarks.current, "The task continues from its partition's checkpoint.");
        }
        let resume_at = restored.as_ref().and_then(|c| c.offsets.get(&p).copied());
        let barrier = Barrier::new(
            self.plan.source.clone(),
            self.plan.interval,
            restored.as_ref(),
            epoch,
        );
        Ok(Task {
            chain,
            barrier,
            resume_at,
            origin: resume_at,
            awaiting_rewind: false,
            rewound_once: false,
            logged_first: false,
            gap_read_again: None,
        })
    }

    /// Sends a checkpoint of `task`; false when the writer is gone.
    fn checkpoint(&self, p: i32, task: &mut Task, releasing: bool) -> anyhow::Result<bool> {
        let checkpoint = task
            .barrier
            .take(&mut task.chain)
            .map_err(|e| failed(&task.chain, e))?;
        let message = Message::Checkpoint(checkpoint, Some(p), releasing);
        Ok(self.tx.blocking_send(message).is_ok())
    }
}

fn failed(chain: &Chain, error: ChainError) -> anyhow::Error {
    chain_failed(&chain.pipeline, error)
}

/// The first gap in `batch`'s offsets when the next expected one is `next`: the index of the
/// record after it and the first missing offset.
fn first_gap(batch: &SourceBatch, mut next: i64) -> Option<(usize, i64)> {
    for (i, &offset) in batch.offsets.iter().enumerate() {
        if offset != next {
            return Some((i, next));
        }
        next = offset + 1;
    }
    None
}

/// The first `keep` records of `batch` (the rest is read again), without its news of the
/// partition's end.
fn truncate(mut batch: SourceBatch, keep: usize) -> SourceBatch {
    let bytes = if keep == 0 {
        0
    } else {
        batch.values.ends[keep - 1] as usize
    };
    batch.values.data.truncate(bytes);
    batch.values.ends.truncate(keep);
    batch.partitions.truncate(keep);
    batch.offsets.truncate(keep);
    batch.at_end.clear();
    batch
}

/// `batch` without the records before offset `from` (already in the state) and without any
/// record at or below one kept before it (read twice): offsets strictly increase.
fn skip_before(batch: SourceBatch, from: i64) -> SourceBatch {
    let increasing = batch.offsets.windows(2).all(|w| w[0] < w[1]);
    if increasing && batch.offsets.first().is_none_or(|&o| o >= from) {
        return batch;
    }
    let mut kept = SourceBatch {
        assigned: batch.assigned.clone(),
        revoked: batch.revoked.clone(),
        at_end: batch.at_end.clone(),
        rewound: batch.rewound.clone(),
        end: batch.end,
        ..Default::default()
    };
    let mut floor = from;
    for i in 0..batch.len() {
        let offset = batch.offsets[i];
        if offset >= floor {
            kept.values.data.extend_from_slice(batch.values_row(i));
            kept.values.ends.push(kept.values.data.len() as u32);
            kept.partitions.push(batch.partitions[i]);
            kept.offsets.push(offset);
            floor = offset + 1;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: &[(i32, i64)]) -> SourceBatch {
        let mut batch = SourceBatch::default();
        for &(p, o) in records {
            batch.push(p, o, format!("r{p}-{o}").as_bytes());
        }
        batch
    }

    #[test]
    fn a_batch_splits_by_partition_with_its_news() {
        let mut b = batch(&[(0, 1), (1, 7), (0, 2), (2, 3)]);
        b.at_end = vec![1];
        b.assigned = vec![5];
        let parts = split(b, [0, 1, 2, 5, 9].into_iter());
        assert_eq!(parts.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 5]);
        assert_eq!(parts[&0].offsets, vec![1, 2]);
        assert_eq!(parts[&0].values_row(1), batch(&[(0, 2)]).values_row(0));
        assert_eq!(parts[&1].at_end, vec![1]);
        assert_eq!(parts[&5].assigned, vec![5]);
        assert!(parts.values().all(|p| !p.end));
    }

    #[test]
    fn the_end_reaches_every_held_partition() {
        let mut b = batch(&[(0, 1)]);
        b.end = true;
        let parts = split(b, [0, 3].into_iter());
        assert_eq!(parts.keys().copied().collect::<Vec<_>>(), vec![0, 3]);
        assert!(parts.values().all(|p| p.end));
        assert!(parts[&3].is_empty());
    }

    #[test]
    fn records_in_the_restored_state_are_skipped() {
        let kept = skip_before(batch(&[(0, 4), (0, 5), (0, 6)]), 5);
        assert_eq!(kept.offsets, vec![5, 6]);
        assert_eq!(kept.values_row(0), batch(&[(0, 5)]).values_row(0));
    }

    #[test]
    fn a_gap_is_found_and_the_batch_cut_before_it() {
        let b = batch(&[(0, 5), (0, 6), (0, 9), (0, 10)]);
        assert_eq!(first_gap(&b, 5), Some((2, 7)));
        assert_eq!(first_gap(&b, 4), Some((0, 4)));
        assert_eq!(first_gap(&batch(&[(0, 5), (0, 6)]), 5), None);
        let cut = truncate(b, 2);
        assert_eq!(cut.offsets, vec![5, 6]);
        assert_eq!(cut.values_row(1), batch(&[(0, 6)]).values_row(0));
        assert_eq!(cut.values.ends.len(), 2);
    }

    #[test]
    fn records_read_twice_count_once() {
        // Read up to 9, then again from 7 (the source went back after a rebalance).
        let kept = skip_before(
            batch(&[(0, 7), (0, 8), (0, 9), (0, 7), (0, 8), (0, 9), (0, 10)]),
            7,
        );
        assert_eq!(kept.offsets, vec![7, 8, 9, 10]);
        assert_eq!(kept.values_row(3), batch(&[(0, 10)]).values_row(0));
    }
}
