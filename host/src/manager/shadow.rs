//! Shadow runs: a candidate version of a pipeline's steps (a new plugin version, a new
//! config) runs beside the live pipeline on the same input before it replaces it, and the
//! rows it would emit are compared with the live chain's.
//!
//! A shadow is two runs the manager keeps beside the pipeline's entry, never in the folder:
//! a *baseline* (the live spec) and a *candidate* (the live spec with the new steps). Both
//! start from a copy of the live pipeline's newest checkpoints (window state, watermarks and
//! offsets, per partition), read the same Kafka topic in consumer groups of their own, and
//! write only to the host's live hub, under internal names (`<name>--shadow-baseline`,
//! `--shadow-candidate`): no sink, no dead-letter store and no offset of the live pipeline is
//! touched. The diff compares their results views window by window ([`crate::live::diff`]);
//! as both read the same records from the same state, the baseline's rows are the ones the
//! live pipeline emits for them. `promote` stops both and puts the candidate spec in force
//! through the ordinary replace (a switch in place at a checkpoint, or a restart from the
//! checkpoints for a pipeline that runs as tasks); `discard` stops both and removes their
//! state. A shadow lives in memory: a host restart ends it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::switch::only_steps_differ;
use super::{Detail, Lag, Manager, ManagerError, offsets};
use crate::live::diff::ViewDiff;
use crate::runtime::{self, CheckpointStore, Stats};
use crate::sinks::SinkSpec;
use crate::sources::SourceSpec;
use crate::spec::{DlqLakeSpec, DlqSpec, Loaded};

/// The two roles of a shadow's runs.
const ROLES: [&str; 2] = ["baseline", "candidate"];
/// Differing rows shown in full.
pub const FIRST_ROWS: usize = 10;

/// A shadow of one pipeline.
pub(super) struct Shadow {
    /// The candidate spec as sent.
    raw: String,
    /// When it started (RFC 3339).
    started: String,
    /// Checkpointed partitions it started from.
    copied: usize,
    runs: Vec<ShadowRun>,
}

/// One of a shadow's two runs.
struct ShadowRun {
    role: &'static str,
    loaded: Loaded,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    status: Arc<Mutex<RunStatus>>,
}

#[derive(Default)]
struct RunStatus {
    state: &'static str,
    error: Option<String>,
    stats: Option<Arc<Stats>>,
}

/// What `GET /api/v1/pipelines/{name}/shadow` answers.
#[derive(Debug, Serialize)]
pub struct ShadowView {
    /// The live pipeline.
    pub pipeline: String,
    /// When the shadow started.
    pub started: String,
    /// The live pipeline's checkpoints (one per partition for tasks) it started from; 0: it
    /// started without state, from the source's `start` position.
    pub checkpoints_copied: usize,
    /// The candidate spec as sent.
    pub candidate_spec: String,
    /// The baseline and the candidate run.
    pub runs: Vec<ShadowRunView>,
    /// Their rows compared.
    pub diff: ViewDiff,
}

/// One run of a shadow.
#[derive(Debug, Serialize)]
pub struct ShadowRunView {
    /// `baseline` or `candidate`.
    pub role: String,
    /// Its internal name (its live channel: `/api/v1/pipelines/{name}/live` and `/results`).
    pub name: String,
    /// The plugins of its steps (`name@version`).
    pub plugins: Vec<String>,
    /// starting, running, finished or failed.
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Records read.
    pub records_in: u64,
    /// Rows its last stage emitted.
    pub rows_out: u64,
    /// Consumer lag of its group, per partition.
    pub lag: Vec<Lag>,
}

impl Manager {
    /// `POST /api/v1/pipelines/{name}/shadow`: starts a shadow of `name` with the candidate
    /// spec `text` (the same spec but for its steps).
    pub async fn start_shadow(&self, name: &str, text: &str) -> Result<ShadowView, ManagerError> {
        let candidate = super::ops::parse_untrusted(&self.inner.host.api_policy, text)?;
        if candidate.spec.name != name {
            return Err(ManagerError::NameMismatch {
                url: name.to_owned(),
                body: candidate.spec.name.clone(),
            });
        }
        let (raw, live) = self.shadowable(name)?;
        if !matches!(live.spec.source, SourceSpec::Kafka(_)) {
            return Err(ManagerError::Unsupported(format!(
                "A shadow reads the live pipeline's input again in consumer groups of its own: \
                 pipeline `{name}` has a `{}` source, not `kafka`.",
                live.spec.source.key()
            )));
        }
        if !only_steps_differ(&raw, text) {
            return Err(ManagerError::BadRequest(format!(
                "A shadow runs other steps on the same input: the candidate spec must equal \
                 pipeline `{name}`'s spec but for its `steps` (and differ in them). Apply other \
                 changes with PUT /api/v1/pipelines/{name}."
            )));
        }
        self.check(&candidate)
            .await
            .map_err(ManagerError::Invalid)?;
        let _ops = self.inner.ops.lock().await;
        if self.shadows().contains_key(name) {
            return Err(ManagerError::Conflict(format!(
                "Pipeline `{name}` has a shadow already; promote or discard it first."
            )));
        }
        let stamp = runtime::now_ms();
        let specs: Vec<(&'static str, Loaded)> = ROLES
            .into_iter()
            .zip([&live, &candidate])
            .map(|(role, loaded)| (role, self.shadow_spec(loaded, role, stamp)))
            .collect();
        for (_, loaded) in &specs {
            // Rows of an earlier shadow (a host that stopped without discarding it) go.
            self.inner.host.live.forget(&loaded.spec.name);
        }
        // Both runs get the same checkpoints, read once, so they start from the same point.
        let copied = self
            .copy_checkpoints(&live, [&specs[0].1, &specs[1].1])
            .await?;
        // Both runs start once both have their state: a failed copy starts neither.
        let runs = specs
            .into_iter()
            .map(|(role, loaded)| self.spawn_shadow_run(role, loaded))
            .collect();
        tracing::info!(
            pipeline = name,
            checkpoints = copied,
            "A shadow run started: the live steps and the candidate's, from the live checkpoints."
        );
        let shadow = Shadow {
            raw: text.to_owned(),
            started: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            copied,
            runs,
        };
        self.shadows().insert(name.to_owned(), shadow);
        drop(_ops);
        self.shadow_view(name, FIRST_ROWS).await
    }

    /// The candidate spec of a shadow given as a plugin version: `name`'s spec text as written,
    /// with the one step that runs plugin `reference`'s name switched to `reference`
    /// (`turnstile-window@^0.2`). Refused when no step or several run it, or when its
    /// reference is not written out once in the text (an interpolated one).
    pub fn candidate_with_plugin(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<String, ManagerError> {
        let (raw, loaded) = self.shadowable(name)?;
        let plugin = reference
            .split_once('@')
            .map(|(p, _)| p.trim())
            .unwrap_or_default();
        if plugin.is_empty() {
            return Err(ManagerError::BadRequest(format!(
                "`plugin` is a plugin reference `name@version`, e.g. `turnstile-window@^0.2`, not \
                 `{reference}`."
            )));
        }
        let running: Vec<&str> = loaded
            .spec
            .steps
            .iter()
            .map(|step| match step {
                crate::spec::StepSpec::Transform(t) => t.plugin.as_str(),
                crate::spec::StepSpec::Window(w) => w.plugin.as_str(),
            })
            .filter(|r| r.split_once('@').map_or(*r, |(p, _)| p).trim() == plugin)
            .collect();
        let whole = "; send the whole candidate spec instead";
        let [old] = running.as_slice() else {
            return Err(ManagerError::BadRequest(format!(
                "{} of pipeline `{name}`'s steps run plugin `{plugin}`{whole}.",
                if running.is_empty() {
                    "None"
                } else {
                    "Several"
                }
            )));
        };
        if raw.matches(old).count() != 1 {
            return Err(ManagerError::BadRequest(format!(
                "The reference `{old}` is not written out once in pipeline `{name}`'s spec file{whole}."
            )));
        }
        Ok(raw.replacen(old, reference.trim(), 1))
    }

    /// The shadow of `name`: its runs and their diff (the first `first` differing rows in
    /// full).
    pub async fn shadow_view(&self, name: &str, first: usize) -> Result<ShadowView, ManagerError> {
        let runs: Vec<(&'static str, Loaded, Arc<Mutex<RunStatus>>)> = {
            let shadows = self.shadows();
            let shadow = shadows.get(name).ok_or_else(|| self.no_shadow(name))?;
            let runs = shadow.runs.iter();
            runs.map(|r| (r.role, r.loaded.clone(), r.status.clone()))
                .collect()
        };
        let mut views = Vec::new();
        for (role, loaded, status) in runs {
            let host = self.inner.host.clone();
            let copy = loaded.clone();
            let lag = tokio::task::spawn_blocking(move || offsets::lag(&host, &copy))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            let status = status.lock().expect("shadow status lock");
            let count = |f: fn(&Stats) -> u64| status.stats.as_deref().map_or(0, f);
            views.push(ShadowRunView {
                role: role.to_owned(),
                name: loaded.spec.name.clone(),
                plugins: super::state::plugins_of(&self.inner.host.registry, &loaded.spec),
                state: status.state.to_owned(),
                error: status.error.clone(),
                records_in: count(|s| s.records_in.load(Ordering::Relaxed)),
                rows_out: count(|s| s.rows_out.load(Ordering::Relaxed)),
                lag,
            });
        }
        let diff = self
            .inner
            .host
            .live
            .diff(&views[0].name, &views[1].name, first);
        let shadows = self.shadows();
        let shadow = shadows.get(name).ok_or_else(|| self.no_shadow(name))?;
        Ok(ShadowView {
            pipeline: name.to_owned(),
            started: shadow.started.clone(),
            checkpoints_copied: shadow.copied,
            candidate_spec: shadow.raw.clone(),
            runs: views,
            diff,
        })
    }

    /// `POST .../shadow/promote`: ends the shadow and puts its candidate spec in force (the
    /// spec file is rewritten; the steps switch at a checkpoint).
    pub async fn promote_shadow(&self, name: &str) -> Result<Detail, ManagerError> {
        let raw = self
            .shadows()
            .get(name)
            .map(|s| s.raw.clone())
            .ok_or_else(|| self.no_shadow(name))?;
        self.end_shadow(name).await;
        tracing::info!(pipeline = name, "Promoting the shadow's candidate spec.");
        Ok(self.put(name, &raw).await?.0)
    }

    /// `DELETE .../shadow`: stops the shadow's runs and removes their state; the live
    /// pipeline is not touched.
    pub async fn discard_shadow(&self, name: &str) -> Result<(), ManagerError> {
        if !self.shadows().contains_key(name) {
            return Err(self.no_shadow(name));
        }
        self.end_shadow(name).await;
        tracing::info!(pipeline = name, "The shadow was discarded.");
        Ok(())
    }

    /// Stops and forgets the shadow of `name`, if any (also when the pipeline is deleted).
    pub(super) async fn end_shadow(&self, name: &str) {
        let Some(shadow) = self.shadows().remove(name) else {
            return;
        };
        for run in shadow.runs {
            run.stop.store(true, Ordering::Relaxed);
            let _ = run.task.await;
            self.inner.host.live.forget(&run.loaded.spec.name);
            let dir = self.shadow_dir().join(&run.loaded.spec.name);
            if let Err(error) = std::fs::remove_dir_all(&dir)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %dir.display(), %error, "Cannot remove a shadow run's checkpoints.");
            }
        }
    }

    /// The spec text as written and the spec in force of `name`, which a shadow starts from.
    fn shadowable(&self, name: &str) -> Result<(String, Loaded), ManagerError> {
        let (raw, loaded) = self
            .with(name, |e| (e.raw.clone(), e.loaded.clone()))
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        let loaded = loaded.ok_or_else(|| {
            ManagerError::Conflict(format!("Pipeline `{name}` has no valid spec to shadow."))
        })?;
        Ok((raw, loaded))
    }

    fn shadows(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Shadow>> {
        self.inner.shadows.lock().expect("shadows lock")
    }

    fn no_shadow(&self, name: &str) -> ManagerError {
        if self.entries().contains_key(name) {
            ManagerError::NoShadow(name.to_owned())
        } else {
            ManagerError::NotFound(name.to_owned())
        }
    }

    /// `<state>/shadow`: the checkpoints of shadow runs.
    fn shadow_dir(&self) -> std::path::PathBuf {
        let dir = self.inner.host.state_dir.join("shadow");
        std::path::absolute(&dir).unwrap_or(dir)
    }

    /// The spec of one shadow run: `loaded` under an internal name, with a consumer group of
    /// its own, its checkpoints under `<state>/shadow`, the live hub as its only sink and its
    /// dead letters counted but kept nowhere.
    fn shadow_spec(&self, loaded: &Loaded, role: &str, stamp: i64) -> Loaded {
        let mut shadow = loaded.clone();
        let spec = &mut shadow.spec;
        let live_name = spec.name.clone();
        spec.name = format!("{live_name}--shadow-{role}");
        if let SourceSpec::Kafka(kafka) = &mut spec.source {
            let group = kafka.group.clone().unwrap_or_else(|| live_name.clone());
            kafka.group = Some(format!("{group}.shadow-{role}-{stamp}"));
        }
        spec.sinks = vec![SinkSpec::Live(Default::default())];
        spec.errors.dlq = Some(DlqSpec::Lake(DlqLakeSpec {
            url: "memory://".into(),
            prefix: "_dlq".into(),
            retry: None,
        }));
        spec.errors.max_dead_letters = None;
        spec.checkpoint.url = Some(format!("file://{}", self.shadow_dir().display()));
        shadow
    }

    /// Copies the newest checkpoint of the live pipeline (of each partition, for tasks) to
    /// both shadow runs, as if their own sources had written them; returns how many.
    async fn copy_checkpoints(
        &self,
        live: &Loaded,
        shadows: [&Loaded; 2],
    ) -> Result<usize, ManagerError> {
        let host = &self.inner.host;
        let from = host.checkpoint_store(live)?;
        let mut targets = Vec::new();
        for shadow in shadows {
            let _ = std::fs::remove_dir_all(self.shadow_dir().join(&shadow.spec.name));
            let identity = shadow.spec.source.config().identity(&shadow.spec.name);
            targets.push((host.checkpoint_store(shadow)?, identity));
        }
        let copy = async {
            let mut copied = 0;
            let mut partitions: Vec<Option<i32>> = vec![None];
            partitions.extend(from.partitions().await?.into_iter().map(Some));
            for p in partitions {
                let store = |s: &CheckpointStore| p.map_or_else(|| s.clone(), |p| s.partition(p));
                let Some(mut checkpoint) = store(&from).latest().await? else {
                    continue;
                };
                for (to, identity) in &targets {
                    checkpoint.source.clone_from(identity);
                    store(to).write(&checkpoint).await?;
                }
                copied += 1;
            }
            anyhow::Ok(copied)
        };
        copy.await.map_err(|e| {
            ManagerError::Internal(e.context(format!(
                "Cannot copy the checkpoints of pipeline `{}` from `{}` for a shadow run.",
                live.spec.name, from.describe
            )))
        })
    }

    /// Starts one shadow run on the host (never `--once`: it follows the topic until it is
    /// promoted or discarded).
    fn spawn_shadow_run(&self, role: &'static str, loaded: Loaded) -> ShadowRun {
        let status = Arc::new(Mutex::new(RunStatus {
            state: "starting",
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (host, spec, flag, report) = (
            self.inner.host.clone(),
            loaded.clone(),
            stop.clone(),
            status.clone(),
        );
        let task = tokio::spawn(async move {
            let set = |state: &'static str, error: Option<String>| {
                let mut status = report.lock().expect("shadow status lock");
                status.state = state;
                status.error = error;
            };
            let name = spec.spec.name.clone();
            let running = match host.start(&spec, false, flag.clone()).await {
                Ok(running) => running,
                Err(error) => {
                    tracing::warn!(shadow = %name, error = %format!("{error:#}"), "A shadow run could not start.");
                    return set("failed", Some(format!("{error:#}")));
                }
            };
            let on_start = |running: &runtime::Running| {
                let mut status = report.lock().expect("shadow status lock");
                status.state = "running";
                status.stats = Some(running.stats.clone());
            };
            on_start(&running);
            let result =
                runtime::run_restarting(host, || spec.clone(), false, flag, running, on_start)
                    .await;
            match result {
                Ok(_) => set("finished", None),
                Err(error) => {
                    tracing::warn!(shadow = %name, error = %format!("{error:#}"), "A shadow run failed.");
                    set("failed", Some(format!("{error:#}")));
                }
            }
        });
        ShadowRun {
            role,
            loaded,
            stop,
            task,
            status,
        }
    }
}
