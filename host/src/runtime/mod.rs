//! The runtime: the [`Host`] (engine, plugin registry, state folder), and running or
//! validating the pipelines of a spec file or folder.

// A `ChainError` is built once per failed batch and carries the texts a user reads; boxing it
// would buy nothing.
#![allow(clippy::result_large_err)]

mod barrier;
mod bisect;
mod chain;
mod checkpoint;
mod continuity;
mod counters;
mod deadletter;
mod emissions;
#[cfg(feature = "failpoints")]
mod failpoint;
mod keys;
mod pipeline;
mod plan;
mod stage;
mod summary;
mod tasks;
mod threshold;
mod watermark;
mod window_step;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

pub use barrier::{Barrier, ChainSwap, SwapResult};
pub use chain::{Chain, ChainError, ChainErrorKind, ChainOutput};
pub use checkpoint::{Checkpoint, CheckpointStore, StageState, now_ms};
pub use counters::{StageCounters, StageInfo};
pub use deadletter::{DeadLetter, DeadLetterSink};
pub use pipeline::{Running, Stats, TaskCounts, restart_requested};
pub use plan::source_schema;
pub use stage::{StageError, TransformStage};
pub use summary::Summary;
pub use threshold::{DeadLetterThreshold, Paused};
pub use watermark::Watermarks;

use crate::live::{LiveEvent, RunState, StateEvent};
use crate::sinks::Sink;
use crate::sources::{self, SourceHandle};
use crate::spec::{self, DlqSpec, Loaded, SourceSpec, SpecErrors};
use crate::wasm::{PluginEngine, Registry};

/// What every pipeline of a host shares.
pub struct Host {
    /// The wasm engine.
    pub engine: Arc<PluginEngine>,
    /// Installed plugins.
    pub registry: Registry,
    /// Where the host keeps its state (compile cache, embedded broker, dead letters).
    pub state_dir: PathBuf,
    /// Live event channels (dashboard, `/api/v1/pipelines/{name}/live`).
    pub live: crate::live::LiveHub,
    /// The most any spec may grant a plugin (memory, call time, output).
    pub ceilings: crate::wasm::Limits,
    /// What specs from the API may use (files, hosts, listeners, properties, variables).
    pub api_policy: crate::policy::Policy,
}

impl Host {
    /// Opens the state folder and loads the plugins of `plugin_dirs`. Files that are not
    /// valid plugins are logged and skipped.
    pub fn new(state_dir: &Path, plugin_dirs: &[PathBuf]) -> anyhow::Result<Self> {
        std::fs::create_dir_all(state_dir).with_context(|| {
            format!("Cannot create the state folder `{}`.", state_dir.display())
        })?;
        let engine = Arc::new(PluginEngine::new(Some(state_dir.join("cache")))?);
        let (registry, errors) = Registry::load_dirs(&engine, plugin_dirs);
        for error in errors {
            tracing::warn!(%error, "Skipping a file that is not a valid plugin.");
        }
        Ok(Self {
            engine,
            registry,
            state_dir: state_dir.to_owned(),
            live: crate::live::LiveHub::with_dir(state_dir.join("live")),
            ceilings: crate::wasm::Limits::ceilings(),
            api_policy: crate::policy::Policy::new(state_dir),
        })
    }

    /// The plugin folders searched by default: `$SLUICE_PLUGIN_PATH` (colon-separated), the
    /// build output `target/plugins` (next to the binary, then under the current folder), and
    /// the uploaded plugins in `<state>/plugins`.
    pub fn default_plugin_dirs(state_dir: &Path) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::env::var("SLUICE_PLUGIN_PATH")
            .map(|p| {
                p.split(':')
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(exe_dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_owned))
        {
            dirs.push(exe_dir.join("../plugins"));
        }
        dirs.push(PathBuf::from("target/plugins"));
        dirs.push(state_dir.join("plugins"));
        dirs
    }

    /// Plans an already loaded spec without running it (what [`Host::validate`] does after
    /// loading); every error is returned.
    pub fn check(&self, loaded: &Loaded) -> Result<(), SpecErrors> {
        plan::chain(self, loaded, "", &[], true).map(drop)
    }

    /// Loads and plans a spec without running it; every error is returned.
    pub fn validate(&self, path: &Path) -> Result<Loaded, SpecErrors> {
        let loaded = spec::load_file(path)?;
        plan::chain(self, &loaded, "", &[], true)?;
        Ok(loaded)
    }

    /// Builds the processing chain of `loaded` for a source of `partitions` (what `start`
    /// runs; public for benchmarks and embedding).
    pub fn chain(
        &self,
        loaded: &Loaded,
        topic: &str,
        partitions: &[i32],
        once: bool,
    ) -> Result<Chain, SpecErrors> {
        plan::chain(self, loaded, topic, partitions, once)
    }

    /// [`Host::chain`] over rows of `input` instead of raw source records (`sluice plugin
    /// test`'s typed fixtures; feed it with [`Chain::process_rows`]).
    pub fn chain_over(
        &self,
        loaded: &Loaded,
        input: Vec<sluice_plugin_sdk::rows::Field>,
        partitions: &[i32],
    ) -> Result<Chain, SpecErrors> {
        plan::chain_over(self, loaded, input, "", partitions, true)
    }

    /// Builds the pipeline of `loaded`, connects its sinks and starts its source. When the
    /// pipeline has a checkpoint, its window state and watermarks are restored and the source
    /// continues from the checkpoint's offsets.
    ///
    /// A pipeline whose state splits by source partition (see `keys`) runs as tasks, one per
    /// partition, on `parallelism` threads; each task restores its partition's checkpoint
    /// when it starts (see `tasks`).
    pub async fn start(
        self: &Arc<Self>,
        loaded: &Loaded,
        once: bool,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<Running> {
        let spec = &loaded.spec;
        let checkpoints = self.checkpoint_store(loaded)?;
        let identity = source_identity(&spec.source, &spec.name);
        let partitioned = keys::scope(spec) == keys::StateScope::Partition;
        let (restored, epoch, resume) = if partitioned {
            let resume = self
                .partition_offsets(&checkpoints, &identity, &spec.name)
                .await?;
            (None, 0, Some(resume).filter(|r| !r.is_empty()))
        } else {
            let restored = self.restored(&checkpoints, &identity, &spec.name).await?;
            let epoch = self
                .claim(&checkpoints, restored.as_ref(), &spec.name)
                .await?;
            let resume = restored.as_ref().map(|c| c.offsets.clone());
            (restored, epoch, resume)
        };
        if resume.is_none() {
            // Starting over: the results a dashboard saw belong to the run that is gone.
            self.live.clear_results(&spec.name);
        }
        let (source, brokers) = self.start_source(loaded, once, stop.clone(), resume.clone())?;
        if let Err(error) = fits(spec, &source, resume.as_ref(), &checkpoints.describe) {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(error);
        }
        let topic = source.origin.topic.clone();
        let held: &[i32] = if partitioned { &[] } else { &source.owned };
        let mut chain = plan::chain(self, loaded, &topic, held, once)?;
        if let Some(checkpoint) = &restored {
            Self::restore(&mut chain, checkpoint, &spec.name, &checkpoints.describe)?;
        }
        let stats = Arc::new(Stats::starting());
        let tasks = partitioned.then(|| {
            let (host, spec_in_force, template) = (self.clone(), loaded.clone(), chain.stages());
            let factory: tasks::ChainFactory = Arc::new(move |p| {
                let mut chain = plan::chain(&host, &spec_in_force, &topic, &[p], once)?;
                tasks::share_counters(&mut chain, &template);
                Ok(chain)
            });
            let workers = keys::tasks(spec, source.partitions.len());
            tracing::info!(pipeline = %spec.name, tasks = workers, partitions = source.partitions.len(),
                "The pipeline runs as tasks over its source partitions.");
            Arc::new(tasks::TaskPlan {
                factory,
                workers,
                store: checkpoints.clone(),
                source: identity.clone(),
                interval: checkpoint_interval(spec),
                owned: source.owned.clone(),
                fenced: Default::default(),
                started: Default::default(),
                rewind: source.rewind.clone(),
                stats: stats.clone(),
                replayable: spec.source.config().replayable(),
            })
        });
        let mut sinks = Vec::new();
        let ctx = crate::sinks::SinkContext {
            pipeline: &spec.name,
            live: &self.live,
            brokers: brokers.as_deref(),
        };
        for (i, sink) in spec.sinks.iter().enumerate() {
            let at = |e: anyhow::Error| {
                let error = loaded.error(
                    &["sinks", &i.to_string(), plan::sink_key(sink)],
                    format!("{e:#}"),
                );
                SpecErrors(vec![error])
            };
            if let Some(built) = Sink::build(sink, &chain.output, &ctx).await.map_err(at)? {
                sinks.push(built);
            }
        }
        let dlq = self.dead_letters(loaded, brokers.as_deref())?;
        tracing::info!(pipeline = %spec.name, dead_letters = %dlq.describe(),
            checkpoints = %checkpoints.describe, "Pipeline started.");
        Ok(Running {
            name: spec.name.clone(),
            chain,
            sinks,
            dlq,
            source,
            stats,
            live: self.live.clone(),
            barrier: Barrier::new(
                identity,
                checkpoint_interval(spec),
                restored.as_ref(),
                epoch,
            ),
            checkpoints,
            swap: Default::default(),
            commit_every_batch: !spec.source.config().replayable() && !acks_at_checkpoints(spec),
            threshold: spec
                .errors
                .max_dead_letters
                .as_ref()
                .map(|m| DeadLetterThreshold::new(m.count, m.per_records)),
            tasks,
        })
    }

    /// The offsets of the newest checkpoint of each partition that has its own (a
    /// pipeline that runs as tasks), where the source continues.
    async fn partition_offsets(
        &self,
        store: &CheckpointStore,
        identity: &str,
        name: &str,
    ) -> anyhow::Result<std::collections::BTreeMap<i32, i64>> {
        let read = async {
            let mut offsets = std::collections::BTreeMap::new();
            for p in store.partitions().await? {
                if let Some(c) = store.partition(p).latest().await?
                    && c.source == identity
                    && let Some(&offset) = c.offsets.get(&p)
                {
                    offsets.insert(p, offset);
                }
            }
            anyhow::Ok(offsets)
        };
        let offsets = read.await.with_context(|| {
            format!(
                "Cannot read the checkpoints of pipeline `{name}` in `{}`.",
                store.describe
            )
        })?;
        if !offsets.is_empty() {
            tracing::info!(
                pipeline = name,
                ?offsets,
                "Continuing from the partitions' last checkpoints."
            );
        }
        Ok(offsets)
    }

    /// Restores `checkpoint` into `chain`. A plugin that refuses the saved state (its config
    /// changed, e.g. other counters) starts with empty window state from the checkpoint's
    /// offsets, said in the log; a trap or limit while restoring stops the start.
    pub(crate) fn restore(
        chain: &mut Chain,
        checkpoint: &Checkpoint,
        name: &str,
        store: &str,
    ) -> anyhow::Result<()> {
        match chain.restore(checkpoint) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.error, crate::wasm::PluginError::Guest { .. }) => {
                tracing::warn!(pipeline = name, epoch = checkpoint.epoch, reason = %e,
                    "The window plugin refused the state of the last checkpoint (its config changed); \
                     continuing from the checkpoint's offsets with empty window state.");
                Ok(())
            }
            Err(e) => Err(anyhow::anyhow!(
                "Pipeline `{name}` cannot continue from its checkpoint {} in `{store}`: {e}. Use a \
                 plugin version that can read this state, or delete the checkpoint to start over.",
                checkpoint.epoch
            )),
        }
    }

    /// Where the checkpoints of `loaded` go: `checkpoint.url`, or `<state>/checkpoints`.
    pub fn checkpoint_store(&self, loaded: &Loaded) -> anyhow::Result<CheckpointStore> {
        let url = match loaded.spec.checkpoint.url.as_deref() {
            Some(url) if !url.trim().is_empty() => url.to_owned(),
            _ => {
                let dir = std::path::absolute(self.state_dir.join("checkpoints"))?;
                format!("file://{}", dir.display())
            }
        };
        CheckpointStore::open(&url, &loaded.spec.name)
    }

    /// Claims the epoch after every stored checkpoint when continuing from `restored` (so a
    /// stalled former owner is fenced); returns the epoch of the run's first checkpoint.
    async fn claim(
        &self,
        store: &CheckpointStore,
        restored: Option<&Checkpoint>,
        name: &str,
    ) -> anyhow::Result<u64> {
        let next = store.next_epoch().await.with_context(|| {
            format!(
                "Cannot list the checkpoints of pipeline `{name}` in `{}`.",
                store.describe
            )
        })?;
        let Some(restored) = restored else {
            return Ok(next);
        };
        store.claim(restored, next).await.with_context(|| {
            format!(
                "Cannot claim checkpoint {next} of pipeline `{name}` in `{}`.",
                store.describe
            )
        })?;
        Ok(next + 1)
    }

    /// The newest checkpoint of the pipeline, when it belongs to the same source.
    async fn restored(
        &self,
        store: &CheckpointStore,
        identity: &str,
        name: &str,
    ) -> anyhow::Result<Option<Checkpoint>> {
        let latest = store.latest().await.with_context(|| {
            format!(
                "Cannot read the checkpoints of pipeline `{name}` in `{}`.",
                store.describe
            )
        })?;
        match latest {
            Some(c) if c.source == identity => {
                tracing::info!(pipeline = name, epoch = c.epoch, offsets = ?c.offsets,
                    "Continuing from the last checkpoint.");
                Ok(Some(c))
            }
            Some(c) => {
                tracing::warn!(pipeline = name, checkpoint_source = %c.source, source = identity,
                    "The last checkpoint is of another source; starting without it.");
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn start_source(
        &self,
        loaded: &Loaded,
        once: bool,
        stop: Arc<AtomicBool>,
        resume: Option<std::collections::BTreeMap<i32, i64>>,
    ) -> anyhow::Result<(SourceHandle, Option<String>)> {
        let spec = &loaded.spec;
        spec.source.config().start(sources::StartContext {
            pipeline: &spec.name,
            batch: &spec.batch,
            once,
            stop,
            resume,
            state_dir: &self.state_dir,
        })
    }

    fn dead_letters(
        &self,
        loaded: &Loaded,
        brokers: Option<&str>,
    ) -> anyhow::Result<DeadLetterSink> {
        dead_letter_sink(loaded, brokers, &self.state_dir)
    }
}

/// The dead-letter destination of `loaded`: `errors.dlq`, else `_dlq/` under the first lake
/// sink, else `<state>/dlq`. `brokers`: the source's, resolved (a Kafka topic's default).
pub fn dead_letter_sink(
    loaded: &Loaded,
    brokers: Option<&str>,
    state_dir: &Path,
) -> anyhow::Result<DeadLetterSink> {
    match &loaded.spec.errors.dlq {
        Some(DlqSpec::Lake(lake)) => {
            DeadLetterSink::lake(&lake.url, &lake.prefix, lake.retry.map(|r| r.max_elapsed.0))
        }
        Some(DlqSpec::Kafka(kafka)) => {
            let brokers = match (&kafka.brokers, brokers) {
                (Some(b), _) => crate::broker::resolve(b, state_dir)?,
                (None, Some(b)) => b.to_owned(),
                (None, None) => anyhow::bail!(
                    "{}: a Kafka dead-letter topic needs `brokers:` when the source is not Kafka.",
                    loaded.file
                ),
            };
            DeadLetterSink::kafka(&brokers, &kafka.topic)
        }
        None => {
            let lake = loaded.spec.sinks.iter().find_map(|s| {
                let config = s.config();
                config
                    .lake_url()
                    .map(|url| (url.to_owned(), config.retry()))
            });
            let (url, retry) =
                lake.unwrap_or_else(|| (format!("file://{}/dlq", state_dir.display()), None));
            DeadLetterSink::lake(&url, "_dlq", retry.map(|r| r.max_elapsed.0))
        }
    }
}

/// What a checkpoint's offsets are positions in: a topic and consumer group, or files.
fn source_identity(source: &SourceSpec, pipeline: &str) -> String {
    source.config().identity(pipeline)
}

/// Restarts from the last checkpoint allowed in a row before the pipeline fails.
pub const MAX_RESTARTS: u32 = 3;

/// Runs `running` (the started pipeline of `loaded`) to its end; when a stateful plugin breaks
/// under `on_violation: restart`, starts the pipeline again from its last checkpoint (new
/// instances, state restored, source re-read from the checkpoint's offsets), at most
/// [`MAX_RESTARTS`] times. `loaded` gives the spec in force at each restart (a plugin switch
/// in place changes it); `on_start` sees every new run (for status).
pub async fn run_restarting(
    host: Arc<Host>,
    loaded: impl Fn() -> Loaded,
    once: bool,
    stop: Arc<AtomicBool>,
    mut running: Running,
    on_start: impl Fn(&Running),
) -> anyhow::Result<Summary> {
    let mut restarts = 0;
    loop {
        let result = run(running, stop.clone()).await;
        match result {
            Err(error) if restart_requested(&error) && restarts < MAX_RESTARTS => {
                restarts += 1;
                let loaded = loaded();
                tracing::warn!(pipeline = %loaded.spec.name, restarts, error = %format!("{error:#}"),
                    "Restarting the pipeline from its last checkpoint.");
                stop.store(false, std::sync::atomic::Ordering::Relaxed);
                running = host.start(&loaded, once, stop.clone()).await?;
                on_start(&running);
            }
            Err(error) if restart_requested(&error) => {
                return Err(gave_up(&loaded().spec.name, error));
            }
            other => return other,
        }
    }
}

/// The error of a pipeline that failed again after [`MAX_RESTARTS`] restarts in a row: it
/// no longer restarts, and says so.
fn gave_up(pipeline: &str, error: anyhow::Error) -> anyhow::Error {
    let cause = error
        .chain()
        .find_map(|c| c.downcast_ref::<chain::ChainError>())
        .map_or_else(|| format!("{error:#}"), ToString::to_string);
    anyhow::anyhow!(
        "Pipeline `{pipeline}` stopped after {MAX_RESTARTS} restarts in a row from its last \
         checkpoint; fix or replace the plugin, then restart it: {cause}"
    )
}

/// Refuses checkpoint offsets that do not fit the topic: partitions it does not have (it
/// was recreated with fewer partitions, or the broker is another one), or offsets past the
/// end of a partition (it was recreated, or the broker is another one, holding fewer
/// records). Continuing would silently skip or misplace records. The choices are named.
fn fits(
    spec: &spec::PipelineSpec,
    handle: &SourceHandle,
    resume: Option<&std::collections::BTreeMap<i32, i64>>,
    store: &str,
) -> anyhow::Result<()> {
    let (Some(kafka), Some(resume)) = (spec.source.config().kafka(), resume) else {
        return Ok(());
    };
    let choices = format!(
        "the topic was recreated or this is another broker, and continuing would skip or \
         misplace records. Reset the pipeline's offsets (PUT /api/v1/pipelines/{}/offsets, \
         which also removes its checkpoints), or give it a new `checkpoint.url`.",
        spec.name
    );
    let unknown: Vec<i32> = resume
        .keys()
        .copied()
        .filter(|p| !handle.partitions.contains(p))
        .collect();
    if !unknown.is_empty() {
        anyhow::bail!(
            "The checkpoints in `{store}` hold offsets of partitions {unknown:?} of topic `{}`, \
             which has partitions {:?} on this broker: {choices}",
            kafka.topic,
            handle.partitions,
        );
    }
    let past: Vec<String> = resume
        .iter()
        .filter_map(|(p, &offset)| {
            let end = *handle.ends.get(p)?;
            (offset > end).then(|| format!("partition {p} at offset {offset} (its end: {end})"))
        })
        .collect();
    if !past.is_empty() {
        anyhow::bail!(
            "The checkpoints in `{store}` continue topic `{}` past the end of what this broker \
             holds: {}; {choices}",
            kafka.topic,
            past.join(", "),
        );
    }
    Ok(())
}

/// The longest a webhook pipeline with a window waits between checkpoints: its requests are
/// answered at checkpoints.
pub const WEBHOOK_CHECKPOINT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the pipeline answers its webhook requests only at checkpoints: an `http` source
/// cannot replay, so records whose effect is held in window state are durable only once a
/// checkpoint holds that state. (Without a window, a request is answered once the sinks
/// wrote its rows.)
pub fn acks_at_checkpoints(spec: &spec::PipelineSpec) -> bool {
    !spec.source.config().replayable()
        && spec
            .steps
            .iter()
            .any(|s| matches!(s, spec::StepSpec::Window(_)))
}

/// The checkpoint interval in force: `checkpoint.interval`, at most [`WEBHOOK_CHECKPOINT`]
/// for a pipeline that answers its webhook requests at checkpoints.
pub fn checkpoint_interval(spec: &spec::PipelineSpec) -> std::time::Duration {
    let interval = spec.checkpoint.interval.0;
    if acks_at_checkpoints(spec) {
        interval.min(WEBHOOK_CHECKPOINT)
    } else {
        interval
    }
}

/// The spec files of `path`: the file itself, or every `*.yaml`/`*.yml` in the folder.
pub fn spec_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let entries = std::fs::read_dir(path).with_context(|| {
        format!(
            "`{}` is neither a spec file nor a folder of specs.",
            path.display()
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs `running` to completion, publishing its state (`running`, then `finished`,
/// `paused` with the reason when its dead-letter threshold stopped it (the error is then a
/// [`Paused`]), or `failed` with the error) on its live channel.
pub async fn run(running: Running, stop: Arc<AtomicBool>) -> anyhow::Result<Summary> {
    let (name, live) = (running.name.clone(), running.live.clone());
    let state = |state, reason, error| StateEvent {
        state,
        reason,
        error,
    };
    live.publish(
        &name,
        LiveEvent::State(state(RunState::Running, None, None)),
    );
    let result = pipeline::run(running, stop).await;
    let ended = match &result {
        Ok(_) => state(RunState::Finished, None, None),
        Err(e) if e.downcast_ref::<Paused>().is_some() => {
            state(RunState::Paused, Some(e.to_string()), None)
        }
        Err(e) => state(RunState::Failed, None, Some(format!("{e:#}"))),
    };
    live.publish(&name, LiveEvent::State(ended));
    live.save(&name);
    result
}
