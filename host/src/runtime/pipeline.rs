//! Running one pipeline: the source thread, the chain on its own thread (or, for a pipeline
//! whose state splits by partition, a dispatcher and the task threads of `tasks`), and the
//! writer loop that hands each result batch to every sink and the dead letters to their
//! destination, then writes checkpoints and commits the source offsets behind them. Bounded
//! channels between them give backpressure from the slowest sink to the source.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;

use super::barrier::{Barrier, ChainSwap};
use super::chain::{Chain, ChainError, ChainErrorKind, ChainOutput};
use super::checkpoint::{Checkpoint, CheckpointStore, Fenced};
use super::continuity::Continuity;
use super::deadletter::{DeadLetter, DeadLetterSink};
use super::emissions::EmissionGuard;
use super::summary::Summary;
use super::tasks::TaskPlan;
use super::threshold::DeadLetterThreshold;
use crate::live::{ConnectorsEvent, LiveEvent, LiveHub, StatsEvent};
use crate::sinks::Sink;
use crate::sources::SourceHandle;

/// Live counters of a running pipeline.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records read from the source.
    pub records_in: AtomicU64,
    /// Rows written to the sinks.
    pub rows_out: AtomicU64,
    /// Records dead-lettered.
    pub dead_letters: AtomicU64,
    /// Late records dropped.
    pub late_dropped: AtomicU64,
    /// Current watermark (ms).
    pub watermark: AtomicI64,
    /// Final results seen again with other values (see `emissions`): always a bug.
    pub window_conflicts: AtomicU64,
    /// The source partitions this host holds, and the task (0-based) that runs each.
    pub owned: std::sync::Mutex<std::collections::BTreeMap<i32, usize>>,
    /// Partitions whose task failed for good (the other tasks go on), and why.
    pub failed_tasks: std::sync::Mutex<std::collections::BTreeMap<i32, String>>,
    /// What each task (0-based) did since the run started.
    pub task_counts: std::sync::Mutex<std::collections::BTreeMap<usize, TaskCounts>>,
}

/// What one task did since its pipeline's run started (its chains' outputs, over every
/// partition it ran).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskCounts {
    /// Records into its chains.
    pub records_in: u64,
    /// Result rows its chains emitted for the sinks.
    pub rows_out: u64,
    /// Records its chains dead-lettered.
    pub dead_letters: u64,
    /// Late records its windows dropped.
    pub late_dropped: u64,
    /// Times one of its partitions' chains restarted from a checkpoint.
    pub restarts: u64,
}

impl Stats {
    /// Zero counters and no watermark yet.
    pub fn starting() -> Self {
        Self {
            watermark: AtomicI64::new(i64::MIN),
            ..Default::default()
        }
    }

    /// The tasks and the partitions each runs, by task.
    pub fn tasks(&self) -> std::collections::BTreeMap<usize, Vec<i32>> {
        let mut tasks: std::collections::BTreeMap<usize, Vec<i32>> = Default::default();
        for (&p, &task) in self.owned.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            tasks.entry(task).or_default().push(p);
        }
        tasks
    }

    /// Adds to the counts of `task`.
    pub(super) fn count(&self, task: usize, add: impl FnOnce(&mut TaskCounts)) {
        let mut counts = self.task_counts.lock().unwrap_or_else(|e| e.into_inner());
        add(counts.entry(task).or_default());
    }

    /// Records that `task` runs `partitions` (`None`: they were let go).
    pub(super) fn own(&self, partitions: &[i32], task: Option<usize>) {
        let mut owned = self.owned.lock().unwrap_or_else(|e| e.into_inner());
        for &p in partitions {
            match task {
                Some(task) => owned.insert(p, task),
                None => owned.remove(&p),
            };
        }
    }
}

/// A pipeline ready to run.
pub struct Running {
    /// Name.
    pub name: String,
    /// The chain.
    pub chain: Chain,
    /// The sinks.
    pub sinks: Vec<Sink>,
    /// Dead-letter destination.
    pub dlq: DeadLetterSink,
    /// The started source.
    pub source: SourceHandle,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Where statistics are published for the dashboard.
    pub live: LiveHub,
    /// Where checkpoints go.
    pub checkpoints: CheckpointStore,
    /// When the next checkpoint is due, and the positions it will hold.
    pub barrier: Barrier,
    /// Where a replacement chain (a plugin upgrade) is handed to the processing thread.
    pub swap: ChainSwap,
    /// Commit source offsets after every batch (sources that cannot replay, like the webhook,
    /// acknowledge their senders this way) instead of only at checkpoints.
    pub commit_every_batch: bool,
    /// `errors.max_dead_letters`: pauses the pipeline when crossed.
    pub threshold: Option<DeadLetterThreshold>,
    /// Tasks over source partitions, for a pipeline whose state splits by partition (`chain`
    /// is then their template: its schema and counters); `None`: `chain` runs alone.
    pub tasks: Option<Arc<TaskPlan>>,
}

/// Runs until the source ends (`--once`) or `stop` is set; returns the summary. On stop the
/// batches already read are processed and written and a final checkpoint is taken.
pub async fn run(pipeline: Running, stop: Arc<AtomicBool>) -> anyhow::Result<Summary> {
    let Running {
        name,
        chain,
        sinks,
        dlq,
        source,
        stats,
        live,
        checkpoints,
        barrier,
        swap,
        commit_every_batch,
        threshold,
        tasks,
    } = pipeline;
    let SourceHandle {
        batches,
        commits,
        thread,
        owned: source_owned,
        rewind,
        ..
    } = source;
    let (tx, rx) = mpsc::channel::<Message>(4);
    let input = Input {
        batches,
        swap,
        runtime: tokio::runtime::Handle::current(),
    };
    let (plan, owners) = (tasks.clone(), stats.clone());
    owners.own(&source_owned, Some(0));
    let processor = crate::threads::spawn("sluice-chain", move || match plan {
        Some(plan) => super::tasks::dispatch_loop(plan, input, tx, &owners),
        // A webhook (committed every batch) cannot replay: its offsets start again each run.
        None => {
            let continuity = (!commit_every_batch).then(|| Continuity::new(rewind));
            process_loop(chain, barrier, input, tx, &owners, continuity)
        }
    });
    let progress = tokio::spawn(progress_loop(name.clone(), stats.clone(), stop.clone()));
    let publisher = tokio::spawn(publish_loop(name.clone(), stats.clone(), live.clone()));
    let writer = Writer {
        name: &name,
        sinks: &sinks,
        dlq: &dlq,
        commits: &commits,
        stats: &stats,
        live: &live,
        checkpoints: &checkpoints,
        commit_every_batch,
        tasks: tasks.as_deref(),
    };
    let written = tokio::select! {
        written = writer.run(rx, threshold) => written,
        never = connectors_loop(&name, &sinks, &dlq, &live) => match never {},
    };
    progress.abort();
    publisher.abort();
    publish_stats(&name, &stats, &live, 0.0);
    stop.store(true, Ordering::Relaxed);
    let processed = processor.await?;
    drop(commits);
    let summary = written?;
    processed?;
    match thread.join() {
        Ok(result) => result?,
        Err(_) => anyhow::bail!("The source thread panicked."),
    }
    Ok(summary)
}

/// True when `error` asks for a restart from the last checkpoint (a stateful plugin broke
/// under `on_violation: restart`).
pub fn restart_requested(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<ChainError>()
            .is_some_and(|e| e.kind == ChainErrorKind::RestartFromCheckpoint)
    })
}

/// What the processing thread (or a task) hands the writer, in order.
pub(super) enum Message {
    /// The results of one source batch: the offsets after it, `true` when it was the last
    /// one, and the partition of the task that produced it (`None`: the pipeline's one chain).
    Output(ChainOutput, Vec<(i32, i64)>, bool, Option<i32>),
    /// A checkpoint covering every output its task sent before it: of the whole pipeline
    /// (`None`) or of one partition, `true` when the task lets the partition go (revoked).
    Checkpoint(Checkpoint, Option<i32>, bool),
}

/// What the processing thread waits on: the source's batches and chain swap requests.
pub(super) struct Input {
    batches: mpsc::Receiver<crate::sources::SourceBatch>,
    swap: ChainSwap,
    pub(super) runtime: tokio::runtime::Handle,
}

/// What woke the processing thread.
pub(super) enum Next {
    Batch(crate::sources::SourceBatch),
    Swap,
    SourceEnded,
}

impl Input {
    /// The next batch, a swap request or the end of the source; `None` when nothing came
    /// within `limit`.
    pub(super) fn next_within(&mut self, limit: Duration) -> Option<Next> {
        let (batches, swap) = (&mut self.batches, &self.swap);
        self.runtime.block_on(async {
            tokio::select! {
                batch = batches.recv() => Some(batch.map_or(Next::SourceEnded, Next::Batch)),
                () = swap.requested() => Some(Next::Swap),
                () = tokio::time::sleep(limit) => None,
            }
        })
    }
}

fn process_loop(
    mut chain: Chain,
    mut barrier: Barrier,
    mut input: Input,
    tx: mpsc::Sender<Message>,
    owners: &Stats,
    mut continuity: Option<Continuity>,
) -> anyhow::Result<()> {
    let pipeline = chain.pipeline.clone();
    let fatal = |e: ChainError| chain_failed(&pipeline, e);
    let mut first = true;
    // Positions at the last checkpoint: a quiet source (no batch for a while) still gets a
    // checkpoint of what it read once the interval passed (a webhook waits for it).
    let mut saved = barrier.positions.clone();
    loop {
        let Some(next) = input.next_within(super::tasks::TICK) else {
            if barrier.due() && barrier.positions != saved {
                let checkpoint = barrier.take(&mut chain).map_err(fatal)?;
                saved = checkpoint.offsets.clone();
                if tx
                    .blocking_send(Message::Checkpoint(checkpoint, None, false))
                    .is_err()
                {
                    return Ok(());
                }
            }
            continue;
        };
        // Between batches: a queued chain takes over here.
        if let Some((next, done)) = input.swap.take() {
            let checkpoint = swap_chain(&mut chain, &mut barrier, next, &done).map_err(fatal)?;
            if tx
                .blocking_send(Message::Checkpoint(checkpoint, None, false))
                .is_err()
            {
                return Ok(());
            }
        }
        let batch = match next {
            Next::Batch(batch) => batch,
            Next::Swap => continue,
            Next::SourceEnded => {
                // The source stopped: save where we are so that a restart continues from here.
                let checkpoint = barrier.take(&mut chain).map_err(fatal)?;
                let _ = tx.blocking_send(Message::Checkpoint(checkpoint, None, false));
                return Ok(());
            }
        };
        owners.own(&batch.assigned, Some(0));
        owners.own(&batch.revoked, None);
        let batch = match continuity.as_mut() {
            Some(continuity) => continuity.filter(batch, &barrier.positions),
            None => batch,
        };
        let offsets = batch.next_offsets();
        let end = batch.end;
        let output = chain.process(batch).map_err(fatal)?;
        if first && output.records_in > 0 {
            // Start-up is measured to this line (make bench).
            first = false;
            tracing::info!(pipeline = %chain.pipeline, records = output.records_in, "Processed the first batch.");
        }
        barrier.advance(&offsets);
        if tx
            .blocking_send(Message::Output(output, offsets, end, None))
            .is_err()
        {
            return Ok(());
        }
        if end || barrier.due() {
            let checkpoint = barrier.take(&mut chain).map_err(fatal)?;
            saved = checkpoint.offsets.clone();
            if tx
                .blocking_send(Message::Checkpoint(checkpoint, None, false))
                .is_err()
                || end
            {
                return Ok(());
            }
        }
    }
}

/// The error that stops pipeline `pipeline` after `error`. The typed error stays inside, so
/// that the caller can tell a restart request apart.
pub(super) fn chain_failed(pipeline: &str, error: ChainError) -> anyhow::Error {
    let advice = match error.kind {
        ChainErrorKind::RestartFromCheckpoint => "it restarts from its last checkpoint",
        ChainErrorKind::Fatal => "fix or replace the plugin, then restart it",
    };
    anyhow::Error::new(error).context(format!("Pipeline `{pipeline}` stopped; {advice}"))
}

/// Hands the state of `chain` to `next` at this batch boundary; `next` takes over unless it
/// cannot restore that state (then `chain` goes on). Returns the checkpoint taken.
fn swap_chain(
    chain: &mut Chain,
    barrier: &mut Barrier,
    mut next: Chain,
    done: &std::sync::mpsc::Sender<super::barrier::SwapResult>,
) -> Result<Checkpoint, ChainError> {
    let started = Instant::now();
    let checkpoint = barrier.take(chain)?;
    if next.output != chain.output {
        // The sinks were built for the old output (table columns, CSV header).
        let _ = done.send(Err(format!(
            "the new steps output other fields ({}) than the running ones ({}), which the sinks \
             were built for",
            field_names(&next.output),
            field_names(&chain.output)
        )));
        return Ok(checkpoint);
    }
    match next.restore(&checkpoint) {
        Ok(()) => {
            // What the partitions proved (at their end, idle) is not in a checkpoint.
            if let (Some(new), Some(old)) = (next.window.as_mut(), chain.window.as_ref()) {
                new.watermarks.take_over(&old.watermarks);
            }
            *chain = next;
            tracing::info!(pipeline = %chain.pipeline, took = ?started.elapsed(), "Switched to the new plugin chain.");
            let _ = done.send(Ok(started.elapsed()));
        }
        Err(error) => {
            let _ = done.send(Err(error.to_string()));
        }
    }
    Ok(checkpoint)
}

fn field_names(fields: &[sluice_plugin_sdk::rows::Field]) -> String {
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    names.join(", ")
}

/// The async half: writes results to the sinks and dead letters to their destination in
/// order, then checkpoints and commits the source offsets behind them.
struct Writer<'a> {
    name: &'a str,
    sinks: &'a [Sink],
    dlq: &'a DeadLetterSink,
    commits: &'a std::sync::mpsc::Sender<Vec<(i32, i64)>>,
    stats: &'a Stats,
    live: &'a LiveHub,
    checkpoints: &'a CheckpointStore,
    commit_every_batch: bool,
    tasks: Option<&'a TaskPlan>,
}

impl Writer<'_> {
    async fn run(
        &self,
        mut rx: mpsc::Receiver<Message>,
        mut threshold: Option<DeadLetterThreshold>,
    ) -> anyhow::Result<Summary> {
        let mut summary = Summary::default();
        let mut guard = EmissionGuard::default();
        // The watermark of each task; the pipeline's is the least of them.
        let mut watermarks: std::collections::BTreeMap<Option<i32>, i64> = Default::default();
        // Batches with rows written (for the `sink-written` fail-point).
        #[cfg(feature = "failpoints")]
        let mut written = 0u64;
        while let Some(message) = rx.recv().await {
            match message {
                Message::Output(mut output, offsets, end, task) => {
                    if let Some(paused) = threshold.as_mut().and_then(|t| crossed(t, &output)) {
                        // Nothing of this batch is written: a resume replays it from the last
                        // checkpoint.
                        tracing::warn!(pipeline = self.name, "{paused}");
                        return Err(paused.into());
                    }
                    if let Some(rows) = &output.rows {
                        self.check_emissions(&mut guard, rows);
                    }
                    #[cfg(feature = "failpoints")]
                    let task_watermark = output.watermark;
                    watermarks.insert(task, output.watermark);
                    output.watermark = watermarks.values().copied().min().unwrap_or(i64::MIN);
                    self.write(&mut output, task, &mut summary).await?;
                    #[cfg(feature = "failpoints")]
                    if output.rows.is_some() {
                        written += 1;
                        super::failpoint::sink_written(
                            self.name,
                            written,
                            task_watermark,
                            summary.records_in,
                        );
                    }
                    if self.commit_every_batch && !offsets.is_empty() {
                        let _ = self.commits.send(offsets);
                    }
                    if end {
                        // The final statuses (connectors_loop publishes them while running).
                        publish_connectors(self.name, self.sinks, self.dlq, self.live);
                    }
                }
                Message::Checkpoint(checkpoint, partition, releasing) => {
                    if releasing {
                        watermarks.remove(&partition);
                    }
                    self.checkpoint(&checkpoint, partition, releasing, &mut summary)
                        .await?
                }
            }
        }
        summary.sinks = self.sinks.iter().map(Sink::status).collect();
        Ok(summary)
    }

    /// Makes a second, different emission of a final window visible (log and metrics).
    fn check_emissions(&self, guard: &mut EmissionGuard, rows: &crate::sinks::RowBatch) {
        let conflicts = guard.check(rows);
        let Some(first) = conflicts.first() else {
            return;
        };
        self.stats
            .window_conflicts
            .fetch_add(conflicts.len() as u64, Ordering::Relaxed);
        tracing::error!(
            pipeline = self.name,
            count = conflicts.len(),
            first = %first.window,
            "Final windows were emitted again with other values: they were closed before \
             their data was complete. This is a bug in sluice or in the window plugin; the \
             sinks now hold the newer values."
        );
    }

    async fn write(
        &self,
        output: &mut ChainOutput,
        task: Option<i32>,
        summary: &mut Summary,
    ) -> anyhow::Result<()> {
        let (name, stats) = (self.name, self.stats);
        if let Some(rows) = &output.early {
            for sink in self.sinks.iter().filter(|s| s.wants_early()) {
                sink.write_early(rows).await?;
            }
        }
        if let Some(rows) = &output.rows {
            let writes = self.sinks.iter().enumerate().map(|(i, sink)| async move {
                sink.write_or_reject(rows, i, task)
                    .await
                    .with_context(|| format!("The {} sink could not write.", sink.name()))
            });
            for result in futures::future::join_all(writes).await {
                let rejected = result?.into_iter();
                output
                    .dead
                    .extend(rejected.map(|r| DeadLetter::rejected(name, r)));
            }
            summary.add_rows(rows);
            stats
                .rows_out
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
        }
        if !output.dead.is_empty() {
            self.dlq.write(&output.dead).await.with_context(|| {
                format!(
                    "Could not write dead letters to the {}.",
                    self.dlq.describe()
                )
            })?;
            tracing::warn!(pipeline = name, count = output.dead.len(), first = %output.dead[0].reason,
                "Records were dead-lettered.");
            summary.dead_letters += output.dead.len() as u64;
            stats
                .dead_letters
                .fetch_add(output.dead.len() as u64, Ordering::Relaxed);
        }
        summary.records_in += output.records_in;
        summary.late_dropped += output.late_dropped;
        stats
            .records_in
            .fetch_add(output.records_in, Ordering::Relaxed);
        stats
            .late_dropped
            .fetch_add(output.late_dropped, Ordering::Relaxed);
        stats.watermark.store(output.watermark, Ordering::Relaxed);
        Ok(())
    }

    /// Every output before `checkpoint` is written: save it, then commit its offsets to the
    /// source (for lag monitoring and tools; a restart seeks to the checkpoint's offsets).
    /// A task's checkpoint (`partition`) that a newer owner fenced drops that task (the
    /// partition went to another host); the others go on.
    async fn checkpoint(
        &self,
        checkpoint: &Checkpoint,
        partition: Option<i32>,
        releasing: bool,
        summary: &mut Summary,
    ) -> anyhow::Result<()> {
        // Checkpoints a fenced task took after the refused one (its release at a revocation,
        // say) carry higher epochs that the store would accept: they are dropped, so that a
        // former owner never overwrites what the partition's new owner continues from.
        if let (Some(p), Some(tasks)) = (partition, self.tasks)
            && tasks.is_fenced(p)
        {
            tracing::debug!(
                pipeline = self.name,
                partition = p,
                epoch = checkpoint.epoch,
                "A checkpoint of a partition another host took over is dropped."
            );
            return Ok(());
        }
        let started = Instant::now();
        // The sinks that stage their writes (a Delta table) commit them first: a crash
        // between the two replays from the previous checkpoint, and the replay's writes are
        // the ones already committed.
        let at = crate::sinks::CommitPoint {
            task: partition,
            epoch: checkpoint.epoch,
        };
        for sink in self.sinks {
            sink.commit(at).await.with_context(|| {
                format!(
                    "The {} sink could not commit checkpoint {}.",
                    sink.name(),
                    checkpoint.epoch
                )
            })?;
        }
        let store = match partition {
            Some(p) => self.checkpoints.partition(p),
            None => self.checkpoints.clone(),
        };
        let bytes = match store.write(checkpoint).await {
            Ok(bytes) => bytes,
            Err(error) => {
                if let (Some(p), Some(tasks), Some(fenced)) =
                    (partition, self.tasks, error.downcast_ref::<Fenced>())
                {
                    tasks.fence(p);
                    if releasing {
                        // A rebalance handed the partition over; its new owner went first.
                        tracing::info!(
                            pipeline = self.name,
                            partition = p,
                            epoch = fenced.epoch,
                            "The partition's new owner already continues from its checkpoint."
                        );
                    } else {
                        tracing::warn!(pipeline = self.name, partition = p, "{fenced}");
                    }
                    return Ok(());
                }
                return Err(error.context(format!(
                    "Could not write checkpoint {} to `{}`.",
                    checkpoint.epoch, store.describe
                )));
            }
        };
        let took = started.elapsed();
        tracing::debug!(
            pipeline = self.name,
            epoch = checkpoint.epoch,
            bytes,
            ?took,
            "Checkpoint written."
        );
        summary.checkpoints += 1;
        summary.checkpoint_bytes = bytes as u64;
        summary.checkpoint_time += took;
        if !checkpoint.offsets.is_empty() && !releasing {
            let offsets = checkpoint.offsets.iter().map(|(&p, &o)| (p, o)).collect();
            let _ = self.commits.send(offsets);
        }
        Ok(())
    }
}

/// The pause when `output`'s dead letters cross the threshold.
fn crossed(
    threshold: &mut DeadLetterThreshold,
    output: &ChainOutput,
) -> Option<super::threshold::Paused> {
    let first = output.dead.first().map_or("", |l: &DeadLetter| &l.reason);
    threshold.observe(output.records_in, output.dead.len() as u64, first)
}

/// Publishes the status of every sink (and of the dead-letter destination) every second,
/// also while a write blocks on a retry. Never returns.
async fn connectors_loop(
    name: &str,
    sinks: &[Sink],
    dlq: &DeadLetterSink,
    live: &LiveHub,
) -> std::convert::Infallible {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        publish_connectors(name, sinks, dlq, live);
    }
}

/// Publishes the status of every sink and of the dead-letter destination on the pipeline's
/// live channel.
fn publish_connectors(name: &str, sinks: &[Sink], dlq: &DeadLetterSink, live: &LiveHub) {
    let event = ConnectorsEvent {
        sinks: sinks.iter().map(Sink::status).collect(),
        dlq: dlq.status(),
    };
    live.publish(name, LiveEvent::Connectors(event));
}

/// Publishes the pipeline's counters on its live channel twice a second and saves its
/// results view every 5 s (when it changed).
async fn publish_loop(name: String, stats: Arc<Stats>, live: LiveHub) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last = (Instant::now(), 0u64);
    let mut ticks = 0u64;
    loop {
        tick.tick().await;
        let records = stats.records_in.load(Ordering::Relaxed);
        let rate = (records - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
        last = (Instant::now(), records);
        publish_stats(&name, &stats, &live, rate);
        ticks += 1;
        if ticks.is_multiple_of(10) {
            live.save(&name);
        }
    }
}

fn publish_stats(name: &str, stats: &Stats, live: &LiveHub, rate: f64) {
    let watermark = stats.watermark.load(Ordering::Relaxed);
    let watermark = (watermark != i64::MIN && watermark != i64::MAX)
        .then(|| sluice_plugin_sdk::time::format_timestamp(watermark));
    let event = StatsEvent {
        records_in: stats.records_in.load(Ordering::Relaxed),
        rows_out: stats.rows_out.load(Ordering::Relaxed),
        dead_letters: stats.dead_letters.load(Ordering::Relaxed),
        late_dropped: stats.late_dropped.load(Ordering::Relaxed),
        window_conflicts: stats.window_conflicts.load(Ordering::Relaxed),
        watermark,
        rate,
    };
    live.publish(name, LiveEvent::Stats(event));
}

async fn progress_loop(name: String, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    let started = Instant::now();
    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.tick().await;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let records = stats.records_in.load(Ordering::Relaxed);
        let watermark = stats.watermark.load(Ordering::Relaxed);
        let wm = if watermark == i64::MIN {
            "none yet".to_owned()
        } else {
            sluice_plugin_sdk::time::format_timestamp(watermark)
        };
        tracing::info!(
            "Pipeline {name}: {records} records in ({}/s), {} rows out, {} dead letters, watermark {wm}, {:.0?} elapsed.",
            (records - last) / 2,
            stats.rows_out.load(Ordering::Relaxed),
            stats.dead_letters.load(Ordering::Relaxed),
            started.elapsed()
        );
        last = records;
    }
}
