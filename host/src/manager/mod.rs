//! The pipeline manager: owns the running pipelines of a host process. Per pipeline it keeps
//! its spec file, the spec in force, its state, the last error, and the run (stop flag and
//! task) with its counters. Every change goes through it — the folder watcher
//! ([`reload`]), the REST API and the command line — and changes are applied one at a time.
//!
//! The pipelines folder is the source of truth: a pipeline created through the API is
//! written into it as `<name>.yaml` (atomically), and deleting one removes its file.
//!
//! Replacing a spec validates the new one first (plugins resolved and initialised, schemas
//! checked): if it is invalid the running version stays untouched and the errors are kept
//! for the API. When only the steps changed, the new chain takes over the running one at a
//! batch boundary without stopping the source ([`switch`]). Otherwise the old run is
//! stopped (stop flag → its final flush, commit and checkpoint) and the new one started; the source resumes from the committed offsets (and
//! the window state from the final checkpoint, where the spec has one). The consumption
//! pause of each switch is measured and shown in the status and the log.

pub mod connectors;
pub mod files;
pub mod offsets;
mod ops;
pub mod plan;
pub mod reload;
mod run;
pub mod shadow;
pub mod state;
mod switch;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use offsets::{OffsetsRequest, PartitionOffset};
pub use run::Outcome;
pub use state::{Detail, Lag, ListItem, State, StatusView};

use crate::runtime::Host;
use crate::spec::{Loaded, SpecErrors};
use state::Entry;

/// Why a manager operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// No pipeline of that name.
    #[error("No pipeline is named `{0}`.")]
    NotFound(String),
    /// The pipeline has no shadow run.
    #[error("Pipeline `{0}` has no shadow run; start one with POST /api/v1/pipelines/{0}/shadow.")]
    NoShadow(String),
    /// No connector of that name in the pipeline.
    #[error("Pipeline `{pipeline}` has no connector `{connector}` (it has: {known}).")]
    ConnectorNotFound {
        /// Pipeline.
        pipeline: String,
        /// The name asked for.
        connector: String,
        /// Its connectors.
        known: String,
    },
    /// `POST` of a name that exists.
    #[error("A pipeline named `{0}` already exists; replace it with PUT /api/v1/pipelines/{0}.")]
    Exists(String),
    /// The spec does not validate.
    #[error("The spec is not valid:\n{0}")]
    Invalid(SpecErrors),
    /// A spec from the API uses what the host's policy does not grant it.
    #[error("The spec uses what this host does not grant to specs from the API:\n{0}")]
    Refused(SpecErrors),
    /// The body's `name` is not the one in the URL.
    #[error("The spec is named `{body}` but the URL names `{url}`; they must be the same.")]
    NameMismatch {
        /// Name in the URL.
        url: String,
        /// Name in the body.
        body: String,
    },
    /// The operation does not fit the pipeline's state.
    #[error("{0}")]
    Conflict(String),
    /// The operation does not apply to this pipeline (e.g. offsets of a file source).
    #[error("{0}")]
    Unsupported(String),
    /// The request is malformed or names something that does not exist inside it.
    #[error("{0}")]
    BadRequest(String),
    /// Anything else (I/O, broker).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The manager; cheap to clone.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

struct Inner {
    host: Arc<Host>,
    folder: PathBuf,
    once: bool,
    /// Serialises every change (API, watcher, shutdown). Checking a spec (which runs its
    /// plugins' `init`) happens before it is taken, so a slow plugin never holds it.
    ops: tokio::sync::Mutex<()>,
    /// Spec checks running at once (each instantiates the spec's plugins).
    checks: Arc<tokio::sync::Semaphore>,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// The hash of the text last seen (applied or refused) of each spec file.
    seen: Mutex<HashMap<PathBuf, String>>,
    /// Consumer lag read recently, by pipeline (a status poll does not ask the broker each
    /// time).
    lags: Mutex<HashMap<String, (std::time::Instant, Vec<Lag>)>>,
    /// The cluster this host belongs to (`--cluster`), if any.
    cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// The shadow runs, by pipeline ([`shadow`]).
    shadows: Mutex<HashMap<String, shadow::Shadow>>,
}

/// How long a consumer lag read stays fresh.
const LAG_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

impl Manager {
    /// A manager of `host`'s pipelines whose specs live in `folder`. `once`: runs end when
    /// their source has nothing more (`--once`).
    pub fn new(host: Arc<Host>, folder: &Path, once: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                host,
                folder: folder.to_owned(),
                once,
                ops: tokio::sync::Mutex::new(()),
                checks: Arc::new(tokio::sync::Semaphore::new(ops::CHECKS_AT_ONCE)),
                entries: Mutex::new(BTreeMap::new()),
                seen: Mutex::new(HashMap::new()),
                lags: Mutex::new(HashMap::new()),
                cluster: std::sync::OnceLock::new(),
                shadows: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The host.
    pub fn host(&self) -> &Arc<Host> {
        &self.inner.host
    }

    /// The pipelines folder.
    pub fn folder(&self) -> &Path {
        &self.inner.folder
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.inner.entries.lock().expect("manager lock")
    }

    /// Every pipeline, sorted by name.
    pub fn list(&self) -> Vec<ListItem> {
        let shadows: Vec<String> = self
            .inner
            .shadows
            .lock()
            .expect("shadows lock")
            .keys()
            .cloned()
            .collect();
        self.entries()
            .iter()
            .map(|(name, e)| ListItem {
                name: name.clone(),
                state: e.state,
                file: e.file.display().to_string(),
                plugins: e.plugins(&self.inner.host.registry),
                last_error: e.last_error.clone(),
                shadow: shadows.contains(name),
            })
            .collect()
    }

    /// Names of the pipelines.
    pub fn names(&self) -> Vec<String> {
        self.entries().keys().cloned().collect()
    }

    /// The state of `name`.
    pub fn state(&self, name: &str) -> Option<State> {
        self.entries().get(name).map(|e| e.state)
    }

    /// Spec and status of `name`, with the consumer lag of a Kafka source.
    pub async fn detail(&self, name: &str) -> Result<Detail, ManagerError> {
        let lag = self.lag(name).await;
        let entries = self.entries();
        let entry = entries
            .get(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        Ok(Detail {
            name: name.to_owned(),
            file: entry.file.display().to_string(),
            spec: entry.spec_json(),
            status: state::status_view(entry, lag),
        })
    }

    /// The status of `name` (as in [`Manager::detail`]).
    pub async fn status(&self, name: &str) -> Result<StatusView, ManagerError> {
        Ok(self.detail(name).await?.status)
    }

    /// The stages (with their counters) of `name`'s current or last run.
    pub fn stage_infos(&self, name: &str) -> Vec<crate::runtime::StageInfo> {
        self.entries()
            .get(name)
            .map(|e| e.stages.clone())
            .unwrap_or_default()
    }

    /// The loaded spec in force of `name`.
    pub fn loaded(&self, name: &str) -> Option<Loaded> {
        self.entries().get(name).and_then(|e| e.loaded.clone())
    }

    /// The text of `name`'s spec file as written (`${VAR}` unexpanded).
    pub fn raw(&self, name: &str) -> Option<String> {
        self.entries().get(name).map(|e| e.raw.clone())
    }

    /// True when every pipeline is running or finished (`/readyz`).
    pub fn ready(&self) -> bool {
        self.entries()
            .values()
            .all(|e| matches!(e.state, State::Running | State::Finished))
    }

    /// The plugins (`name@version`) each pipeline uses, by pipeline.
    pub fn plugins_in_use(&self) -> BTreeMap<String, Vec<String>> {
        self.entries()
            .iter()
            .map(|(name, e)| (name.clone(), e.plugins(&self.inner.host.registry)))
            .collect()
    }

    /// The pipelines whose stages run the plugin `id` (`name@version`).
    pub fn pipelines_using(&self, id: &str) -> Vec<String> {
        self.plugins_in_use()
            .into_iter()
            .filter(|(_, plugins)| plugins.iter().any(|p| p == id))
            .map(|(name, _)| name)
            .collect()
    }

    /// Calls `f` with the entry of `name` when it exists.
    fn with<T>(&self, name: &str, f: impl FnOnce(&mut Entry) -> T) -> Option<T> {
        self.entries().get_mut(name).map(f)
    }

    /// Makes this host a member of `cluster`: API changes of pipelines are shared through
    /// it (see [`crate::cluster`]).
    pub fn join(&self, cluster: Arc<crate::cluster::Cluster>) {
        let _ = self.inner.cluster.set(cluster);
    }

    /// The cluster this host belongs to, if any.
    pub fn cluster(&self) -> Option<Arc<crate::cluster::Cluster>> {
        self.inner.cluster.get().cloned()
    }

    /// This host as the cluster sees it: its pipelines, their tasks, the partitions each
    /// owns and their consumer lag.
    pub async fn host_record(&self) -> crate::cluster::HostRecord {
        let cluster = self.cluster();
        let id = cluster.as_ref().map_or_else(
            || crate::sources::kafka::instance_id(&self.inner.host.state_dir, "host"),
            |c| c.id.clone(),
        );
        let address = cluster
            .as_ref()
            .and_then(|c| c.address.lock().unwrap_or_else(|e| e.into_inner()).clone());
        let views: Vec<(String, String, String, Option<Arc<crate::runtime::Stats>>)> = self
            .entries()
            .iter()
            .map(|(name, e)| {
                let state = e.state.as_str().to_owned();
                (name.clone(), state, e.hash.clone(), e.stats.clone())
            })
            .collect();
        let mut pipelines = Vec::new();
        for (name, state, spec_hash, stats) in views {
            let tasks = stats
                .as_deref()
                .map(crate::cluster::TaskRecord::of)
                .unwrap_or_default();
            let owned: Vec<i32> = tasks.iter().flat_map(|t| t.partitions.clone()).collect();
            let lag = self.lag(&name).await;
            let lag = (!lag.is_empty()).then(|| {
                lag.iter()
                    .filter(|l| owned.contains(&l.partition))
                    .map(|l| l.lag)
                    .sum()
            });
            pipelines.push(crate::cluster::HostPipeline {
                name,
                state,
                spec_hash,
                tasks,
                lag,
            });
        }
        crate::cluster::HostRecord {
            id,
            address,
            updated_ms: crate::runtime::now_ms(),
            pipelines,
        }
    }

    /// Consumer lag of `name`'s Kafka source; empty for other sources or when the broker
    /// does not answer quickly.
    pub async fn lag(&self, name: &str) -> Vec<Lag> {
        let cached = self.inner.lags.lock().expect("lag lock").get(name).cloned();
        if let Some((_, lag)) = cached.filter(|(read, _)| read.elapsed() < LAG_FRESH) {
            return lag;
        }
        let Some(loaded) = self.loaded(name) else {
            return Vec::new();
        };
        let host = self.inner.host.clone();
        let task = tokio::task::spawn_blocking(move || offsets::lag(&host, &loaded));
        let lag = match task.await {
            Ok(Ok(lag)) => lag,
            Ok(Err(error)) => {
                tracing::debug!(pipeline = name, error = %format!("{error:#}"), "Could not read the consumer lag.");
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        let now = std::time::Instant::now();
        self.inner
            .lags
            .lock()
            .expect("lag lock")
            .insert(name.to_owned(), (now, lag.clone()));
        lag
    }
}
