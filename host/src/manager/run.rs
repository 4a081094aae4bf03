//! Starting and stopping the run of one pipeline: the supervising task that starts it on
//! the host, publishes its state into the manager's entry and records how it ended, and
//! the measurement of the consumption pause when one run follows another.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::Manager;
use super::state::{Note, Run, State, SwapTarget, Switch};
use crate::runtime::{self, StageInfo};
use crate::spec::Loaded;

/// How long the manager watches a new run for its first batch to measure the pause.
const PAUSE_WATCH: Duration = Duration::from_secs(600);

impl Manager {
    /// Starts a run of `name` with its spec in force (its previous run must be stopped).
    /// `previous_last_batch_ms`: when the run before it handled its last batch, to measure
    /// the consumption pause.
    pub(super) fn start_run(&self, name: &str, previous_last_batch_ms: Option<i64>) {
        let manager = self.clone();
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(name) else {
            return;
        };
        let Some(loaded) = entry.loaded.clone() else {
            return;
        };
        entry.generation += 1;
        entry.state = State::Starting;
        entry.held = false;
        // The new run's counters replace the old ones once it runs.
        entry.stages.clear();
        entry.stats = None;
        entry.summary = None;
        entry.start_failed = false;
        let stop = Arc::new(AtomicBool::new(false));
        let requested = Arc::new(AtomicBool::new(false));
        let generation = entry.generation;
        let (run_name, flag) = (name.to_owned(), stop.clone());
        let task = tokio::spawn(async move {
            manager.supervise(&run_name, generation, loaded, flag).await;
        });
        entry.run = Some(Run {
            stop,
            requested,
            task,
            swap: None,
        });
        if let Some(previous) = previous_last_batch_ms.filter(|&ms| ms > 0) {
            let manager = self.clone();
            let name = name.to_owned();
            tokio::spawn(async move { manager.measure_pause(&name, generation, previous).await });
        }
    }

    /// Stops the run of `name` (if any), waits for it, and puts the pipeline in `state`.
    /// Returns when the stopped run handled its last batch (ms since the epoch, 0 if never).
    pub(super) async fn stop_run(&self, name: &str, state: State) -> i64 {
        let run = self.with(name, |e| e.run.take()).flatten();
        if let Some(run) = run {
            tracing::info!(
                pipeline = name,
                "Stopping the pipeline: finishing the batches in flight."
            );
            run.stop().await;
        }
        self.with(name, |e| {
            // Stopping keeps the outcome of a run that already ended on its own.
            let ended = matches!(e.state, State::Failed | State::Finished);
            if !(ended && state == State::Stopped) {
                e.state = state;
            }
            e.held = state == State::Paused;
            last_batch_ms(&e.stages)
        })
        .unwrap_or(0)
    }

    async fn supervise(&self, name: &str, generation: u64, loaded: Loaded, stop: Arc<AtomicBool>) {
        let host = self.inner.host.clone();
        let started = host.start(&loaded, self.inner.once, stop.clone()).await;
        let running = match started {
            Ok(running) => running,
            Err(error) => {
                let message = format!("The pipeline could not start: {error:#}");
                tracing::error!(pipeline = name, "{message}");
                self.report(name, generation, |e| {
                    e.state = State::Failed;
                    e.start_failed = true;
                    e.last_error = Some(Note::now(message));
                });
                return;
            }
        };
        let on_start = |running: &runtime::Running| {
            let (stats, stages) = (running.stats.clone(), running.chain.stages());
            let switchable = running.tasks.is_none();
            let target = SwapTarget {
                swap: running.swap.clone(),
                topic: running.source.origin.topic.clone(),
                partitions: running.source.owned.clone(),
            };
            self.report(name, generation, |e| {
                e.state = State::Running;
                e.stats = Some(stats);
                e.stages = stages;
                if let Some(run) = e.run.as_mut() {
                    // Tasks over partitions take a new spec by a restart from their checkpoints.
                    run.swap = switchable.then_some(target);
                }
            });
        };
        on_start(&running);
        tracing::info!(pipeline = name, "The pipeline is running.");
        let once = self.inner.once;
        // A restart takes the spec in force then (a switch in place may have changed it).
        let in_force = || self.loaded(name).unwrap_or_else(|| loaded.clone());
        let result = runtime::run_restarting(host, in_force, once, stop, running, on_start).await;
        let requested = self
            .with(name, |e| {
                e.run
                    .as_ref()
                    .is_none_or(|r| r.requested.load(Ordering::Relaxed))
            })
            .unwrap_or(true);
        match result {
            Ok(summary) => {
                tracing::info!(pipeline = name, "The pipeline's run ended.\n{summary}");
                self.report(name, generation, |e| {
                    e.summary = Some(summary.to_string());
                    if !requested {
                        e.state = State::Finished;
                    }
                });
            }
            // Its dead-letter threshold stopped it: paused until a user resumes it.
            Err(error) if error.downcast_ref::<runtime::Paused>().is_some() => {
                let message = error.to_string();
                tracing::warn!(pipeline = name, "The pipeline is {message}");
                self.report(name, generation, |e| {
                    e.state = State::Paused;
                    e.held = true;
                    e.last_error = Some(Note::now(message));
                });
            }
            Err(error) => {
                let message = format!("{error:#}");
                tracing::error!(pipeline = name, error = %message, "The pipeline failed.");
                self.report(name, generation, |e| {
                    e.state = State::Failed;
                    e.last_error = Some(Note::now(message));
                });
            }
        }
    }

    /// Waits until no run of any pipeline is active: each ended on its own (`--once`: its
    /// source had nothing more) or was stopped, and no change is being applied.
    pub async fn wait_for_ends(&self) {
        loop {
            {
                // A change in progress (a shutdown waiting for its runs) holds this lock.
                let _ops = self.inner.ops.lock().await;
                let active = self
                    .entries()
                    .values()
                    .any(|e| e.run.as_ref().is_some_and(|r| !r.task.is_finished()));
                if !active {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How the last run of `name` ended, for `sluice run --once`.
    pub fn outcome(&self, name: &str) -> Option<Outcome> {
        self.with(name, |e| Outcome {
            state: e.state,
            summary: e.summary.clone(),
            error: e.last_error.as_ref().map(|n| n.message.clone()),
            refused: e.start_failed || !e.spec_errors.is_empty() || e.loaded.is_none(),
        })
    }

    /// Applies `f` to the entry of `name` if its current run is still `generation`.
    fn report(&self, name: &str, generation: u64, f: impl FnOnce(&mut super::state::Entry)) {
        self.with(name, |e| {
            if e.generation == generation {
                f(e);
            }
        });
    }

    /// Waits for the first batch of run `generation` and records the pause since
    /// `previous_ms` (the previous run's last batch).
    pub(super) async fn measure_pause(&self, name: &str, generation: u64, previous_ms: i64) {
        let asked = SystemTime::now();
        let started = Instant::now();
        while started.elapsed() < PAUSE_WATCH {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let first = self.with(name, |e| {
                (e.generation == generation).then(|| first_batch_ms(&e.stages))
            });
            let Some(Some(first)) = first else {
                return; // deleted, or replaced again
            };
            if first == 0 {
                continue;
            }
            let pause_ms = (first - previous_ms).max(0) as u64;
            tracing::info!(
                pipeline = name,
                pause_ms,
                "The pipeline switched runs; consumption paused for {pause_ms} ms."
            );
            self.with(name, |e| {
                e.longest_pause_ms = e.longest_pause_ms.max(pause_ms);
                e.switch = Some(Switch {
                    time: humantime::format_rfc3339_millis(asked).to_string(),
                    pause_ms,
                });
            });
            return;
        }
    }
}

/// How the last run of a pipeline ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Its state now.
    pub state: State,
    /// The run's summary, when it ended without error.
    pub summary: Option<String>,
    /// Why it failed, or paused.
    pub error: Option<String>,
    /// A user's input kept it from running: its spec is not valid, or it could not start.
    pub refused: bool,
}

/// When the first stage of a run handled its latest batch (0: never).
pub(super) fn last_batch_ms(stages: &[StageInfo]) -> i64 {
    stages
        .first()
        .map_or(0, |s| s.counters.last_batch_ms.load(Ordering::Relaxed))
}

/// When the first stage of a run handled its first batch (0: not yet).
fn first_batch_ms(stages: &[StageInfo]) -> i64 {
    stages
        .first()
        .map_or(0, |s| s.counters.first_batch_ms.load(Ordering::Relaxed))
}
