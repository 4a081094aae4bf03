//! A task worker: one thread running the tasks of some partitions (see `tasks`): starting a
//! task from its partition's checkpoint, running its part of each batch through its chain in
//! offset order, checkpointing it, letting it go on revocation, and restarting it alone (or
//! stopping it for good) when its chain fails.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc as sync_mpsc};

use tokio::sync::mpsc;

use super::super::MAX_RESTARTS;
use super::super::barrier::Barrier;
use super::super::chain::{Chain, ChainError, ChainErrorKind};
use super::super::checkpoint::Fenced;
use super::super::continuity::{first_gap, skip_before, truncate};
use super::super::pipeline::{Message, chain_failed};
use super::{TaskPlan, Work};
use crate::sources::SourceBatch;

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
    /// Its partition's position at its last checkpoint (or restore).
    saved: Option<i64>,
}

/// A worker thread and the tasks it runs.
pub(super) struct Worker {
    /// Its number (the task number in status and metrics).
    index: usize,
    plan: Arc<TaskPlan>,
    tx: mpsc::Sender<Message>,
    runtime: tokio::runtime::Handle,
    tasks: BTreeMap<i32, Task>,
    /// Restarts in a row, by partition (reset by a checkpoint).
    restarts: BTreeMap<i32, u32>,
}

impl Worker {
    pub(super) fn new(
        index: usize,
        plan: Arc<TaskPlan>,
        tx: mpsc::Sender<Message>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            index,
            plan,
            tx,
            runtime,
            tasks: BTreeMap::new(),
            restarts: BTreeMap::new(),
        }
    }

    /// Works until the dispatcher hangs up, then checkpoints every task it still runs.
    pub(super) fn run(mut self, work: sync_mpsc::Receiver<Work>) -> anyhow::Result<()> {
        while let Ok(next) = work.recv() {
            let open = match next {
                Work::Assign(p) => {
                    // The source starts the partition again from its checkpoint's (or the
                    // group's) offset: so does its task, from the newest checkpoint.
                    self.plan.unfence(p);
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
                Work::Tick => self.checkpoint_quiet()?,
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
        if let Some(since) = self.plan.fenced_since(p) {
            if since.elapsed() < super::RECLAIM_AFTER || batch.is_empty() {
                self.tasks.remove(&p);
                return Ok(true);
            }
            tracing::warn!(
                partition = p,
                "Records of the partition still arrive {} s after another host's checkpoint \
                 fenced it: this host owns it; continuing from its newest checkpoint.",
                super::RECLAIM_AFTER.as_secs()
            );
            self.plan.unfence(p);
            self.tasks.remove(&p);
        }
        if self.plan.has_failed(p) {
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
                self.fail_for_good(p, message);
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
        self.plan.stats.count(self.index, |c| {
            c.records_in += output.records_in;
            c.rows_out += output.rows.as_ref().map_or(0, |r| r.ends.len() as u64);
            c.dead_letters += output.dead.len() as u64;
            c.late_dropped += output.late_dropped;
        });
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
            self.plan.stats.count(self.index, |c| c.restarts += 1);
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
        self.fail_for_good(p, message);
        Ok(true)
    }

    /// Stops the task of `p` for good, saying why once in the log and in the run's stats.
    fn fail_for_good(&self, p: i32, message: String) {
        tracing::error!(partition = p, error = %message, "A task failed; the pipeline's other tasks go on.");
        self.plan.failed().insert(p, message);
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
            super::super::Host::restore(&mut chain, checkpoint, &pipeline, &store.describe)?;
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
            saved: resume_at,
        })
    }

    /// Checkpoints each task whose checkpoint is due and that consumed records since its
    /// last one (its partition went quiet); false when the writer is gone.
    fn checkpoint_quiet(&mut self) -> anyhow::Result<bool> {
        let quiet: Vec<i32> = self
            .tasks
            .iter()
            .filter(|(p, t)| {
                !t.awaiting_rewind
                    && t.barrier.due()
                    && t.barrier.positions.contains_key(p)
                    && t.barrier.positions.get(p) != t.saved.as_ref()
            })
            .map(|(&p, _)| p)
            .collect();
        for p in quiet {
            let mut task = self.tasks.remove(&p).expect("listed above");
            let open = self.checkpoint(p, &mut task, false)?;
            self.tasks.insert(p, task);
            if !open {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Sends a checkpoint of `task`; false when the writer is gone.
    fn checkpoint(&self, p: i32, task: &mut Task, releasing: bool) -> anyhow::Result<bool> {
        let checkpoint = task
            .barrier
            .take(&mut task.chain)
            .map_err(|e| failed(&task.chain, e))?;
        task.saved = checkpoint.offsets.get(&p).copied();
        let message = Message::Checkpoint(checkpoint, Some(p), releasing);
        Ok(self.tx.blocking_send(message).is_ok())
    }
}

fn failed(chain: &Chain, error: ChainError) -> anyhow::Error {
    chain_failed(&chain.pipeline, error)
}
