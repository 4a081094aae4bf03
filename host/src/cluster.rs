//! The hosts of one cluster (`sluice run --cluster URL`): several hosts that run the same
//! pipelines share their partitions through each pipeline's consumer group and their state
//! through the checkpoint store; this module shares what is left, through one object store
//! location (any object_store URL), with no protocol of its own:
//!
//! - `config/<pipeline>.yaml`: the specs of pipelines created, replaced or deleted through
//!   the REST API of any host. Every host polls them and mirrors them into its own pipelines
//!   folder, where its folder watcher applies them. A spec file that a host's folder holds
//!   with other text than the shared one, and that did not come from the shared store, is
//!   file-managed: it stays in force on that host, with a warning, and is never overwritten
//!   or deleted by the cluster.
//! - `hosts/<id>.json`: each host's record (id, API address, pipelines, tasks and the
//!   partitions each owns, consumer lag), rewritten every [`BEAT`]; a record older than
//!   [`GONE_AFTER`] is a host that is gone. `GET /api/v1/cluster` lists them.
//!
//! Why the object store and not a compacted Kafka topic (Kafka Connect's config topic): the
//! checkpoints already need shared storage, a spec is one small object written whole, and a
//! pipeline need not read from Kafka at all (file or webhook sources).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures::TryStreamExt;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::manager::Manager;
use crate::objects::{self, Location};

/// How often a host publishes its record and reads the shared specs.
pub const BEAT: Duration = Duration::from_secs(1);
/// A host whose record is older than this is gone.
pub const GONE_AFTER: Duration = Duration::from_secs(10);

/// One host as the cluster sees it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HostRecord {
    /// `sluice-host-<hash of its state folder>`.
    pub id: String,
    /// Its API address, when it serves one.
    pub address: Option<String>,
    /// When the record was written (ms since the Unix epoch).
    pub updated_ms: i64,
    /// Its pipelines.
    pub pipelines: Vec<HostPipeline>,
}

/// One pipeline on one host.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HostPipeline {
    /// Pipeline name.
    pub name: String,
    /// `running`, `paused`, `failed`, ...
    pub state: String,
    /// Hash of the spec in force on this host (hosts that disagree show other hashes).
    pub spec_hash: String,
    /// Its tasks on this host and the source partitions each owns.
    pub tasks: Vec<TaskRecord>,
    /// Consumer lag of the partitions this host owns (records), when the source is Kafka.
    pub lag: Option<i64>,
}

/// One task.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TaskRecord {
    /// Task number on its host.
    pub task: usize,
    /// The source partitions it owns.
    pub partitions: Vec<i32>,
    /// Those of its partitions whose work failed for good (the other tasks go on), and why.
    #[serde(default)]
    pub failed: Vec<TaskFailure>,
    /// What it did since its pipeline's run started.
    #[serde(default)]
    pub counts: crate::runtime::TaskCounts,
}

/// A partition whose task failed for good.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TaskFailure {
    /// The partition.
    pub partition: i32,
    /// Why.
    pub error: String,
}

impl TaskRecord {
    /// The tasks of a pipeline from its counters.
    pub fn of(stats: &crate::runtime::Stats) -> Vec<Self> {
        let failed = stats
            .failed_tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let counts = stats
            .task_counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // A task that let all its partitions go still shows what it did.
        let mut tasks = stats.tasks();
        for &task in counts.keys() {
            tasks.entry(task).or_default();
        }
        tasks
            .into_iter()
            .map(|(task, partitions)| Self {
                task,
                counts: counts.get(&task).copied().unwrap_or_default(),
                failed: partitions
                    .iter()
                    .filter_map(|p| {
                        failed.get(p).map(|error| TaskFailure {
                            partition: *p,
                            error: error.clone(),
                        })
                    })
                    .collect(),
                partitions,
            })
            .collect()
    }
}

/// The shared location of a cluster.
pub struct Cluster {
    location: Location,
    /// This host's id.
    pub id: String,
    /// Its API address.
    pub address: Mutex<Option<String>>,
    /// The hash of each shared spec as this host last mirrored (or wrote) it: a local file
    /// with that text is the cluster's to replace or delete.
    synced: Mutex<HashMap<String, String>>,
    /// Where `synced` is kept across restarts.
    synced_file: PathBuf,
}

impl Cluster {
    /// Opens the cluster location `url` for the host whose state folder is `state_dir`.
    pub fn open(url: &str, state_dir: &Path) -> anyhow::Result<Self> {
        let location = objects::open(url)
            .with_context(|| format!("Cannot open the cluster store `{url}`."))?;
        let synced_file = state_dir.join("cluster-synced.json");
        let synced = std::fs::read(&synced_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(Self {
            location,
            id: crate::sources::kafka::instance_id(state_dir, "host"),
            address: Mutex::new(None),
            synced: Mutex::new(synced),
            synced_file,
        })
    }

    fn path(&self, key: &str) -> anyhow::Result<object_store::path::Path> {
        self.location.path(key)
    }

    /// Shares `text` as the spec of pipeline `name` (created or replaced through the API).
    pub async fn publish_spec(&self, name: &str, text: &str) -> anyhow::Result<()> {
        let path = self.path(&format!("config/{name}.yaml"))?;
        self.location
            .store
            .put(&path, bytes::Bytes::from(text.to_owned()).into())
            .await?;
        self.mark(name, Some(crate::manager::files::hash(text)));
        Ok(())
    }

    /// Withdraws the shared spec of `name` (deleted through the API).
    pub async fn delete_spec(&self, name: &str) -> anyhow::Result<()> {
        let path = self.path(&format!("config/{name}.yaml"))?;
        match self.location.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        self.mark(name, None);
        Ok(())
    }

    fn mark(&self, name: &str, hash: Option<String>) {
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        match hash {
            Some(hash) => synced.insert(name.to_owned(), hash),
            None => synced.remove(name),
        };
        if let Ok(json) = serde_json::to_string(&*synced)
            && let Err(error) = crate::manager::files::write_atomic(&self.synced_file, &json)
        {
            tracing::warn!(%error, "Cannot save which specs came from the cluster.");
        }
    }

    /// The shared specs, by pipeline name.
    async fn specs(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let dir = self.path("config")?;
        let listed: Vec<_> = self.location.store.list(Some(&dir)).try_collect().await?;
        let mut specs = BTreeMap::new();
        for object in listed {
            let Some(name) = object
                .location
                .filename()
                .and_then(|f| f.strip_suffix(".yaml"))
                .map(str::to_owned)
            else {
                continue;
            };
            let got = self.location.store.get(&object.location).await;
            match got {
                Ok(got) => {
                    let text = String::from_utf8_lossy(&got.bytes().await?).into_owned();
                    specs.insert(name, text);
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(specs)
    }

    /// Mirrors the shared specs into `folder`: a new or changed one is written (unless the
    /// folder holds its own, file-managed version), one withdrawn is removed if the file is
    /// still the mirrored text. The folder watcher applies the files.
    pub async fn mirror(&self, folder: &Path) -> anyhow::Result<()> {
        let shared = self.specs().await?;
        let known: Vec<(String, String)> = self
            .synced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(n, h)| (n.clone(), h.clone()))
            .collect();
        for (name, text) in &shared {
            let file = folder.join(format!("{name}.yaml"));
            let local = std::fs::read_to_string(&file).ok();
            let hash = crate::manager::files::hash(text);
            let mirrored = known.iter().find(|(n, _)| n == name).map(|(_, h)| h);
            match &local {
                Some(local) if crate::manager::files::hash(local) == hash => {
                    if mirrored != Some(&hash) {
                        self.mark(name, Some(hash));
                    }
                }
                Some(local)
                    if mirrored.is_none_or(|h| *h != crate::manager::files::hash(local)) =>
                {
                    tracing::warn!(pipeline = %name, file = %file.display(),
                        "This host's folder has its own spec of a pipeline shared through the \
                         cluster; the folder's file stays in force here (file-managed).");
                }
                _ => {
                    crate::manager::files::write_atomic(&file, text)?;
                    self.mark(name, Some(hash));
                    tracing::info!(pipeline = %name, "A pipeline spec shared through the cluster was applied.");
                }
            }
        }
        for (name, hash) in known {
            if shared.contains_key(&name) {
                continue;
            }
            let file = folder.join(format!("{name}.yaml"));
            let local = std::fs::read_to_string(&file).ok();
            if local.is_some_and(|l| crate::manager::files::hash(&l) == hash) {
                crate::manager::files::remove(&file)?;
                tracing::info!(pipeline = %name, "A pipeline deleted through the cluster was removed.");
            }
            self.mark(&name, None);
        }
        Ok(())
    }

    /// Writes this host's record.
    pub async fn publish(&self, record: &HostRecord) -> anyhow::Result<()> {
        let path = self.path(&format!("hosts/{}.json", record.id))?;
        let json = serde_json::to_vec(record)?;
        self.location.store.put(&path, json.into()).await?;
        Ok(())
    }

    /// Removes this host's record (a clean shutdown).
    pub async fn leave(&self) {
        if let Ok(path) = self.path(&format!("hosts/{}.json", self.id)) {
            let _ = self.location.store.delete(&path).await;
        }
    }

    /// The records of the hosts that are alive, by id.
    pub async fn hosts(&self) -> anyhow::Result<Vec<HostRecord>> {
        let dir = self.path("hosts")?;
        let listed: Vec<_> = self.location.store.list(Some(&dir)).try_collect().await?;
        let now = crate::runtime::now_ms();
        let mut hosts = Vec::new();
        for object in listed {
            let Ok(got) = self.location.store.get(&object.location).await else {
                continue;
            };
            let Ok(record) = serde_json::from_slice::<HostRecord>(&got.bytes().await?) else {
                continue;
            };
            if now - record.updated_ms <= GONE_AFTER.as_millis() as i64 {
                hosts.push(record);
            }
        }
        hosts.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(hosts)
    }
}

/// Every [`BEAT`] until `stop`: publishes this host's record and mirrors the shared specs
/// into the manager's folder; at the end removes the record.
pub async fn run(manager: Manager, stop: std::sync::Arc<AtomicBool>) {
    let Some(cluster) = manager.cluster() else {
        return;
    };
    tracing::info!(host = %cluster.id, "Joined the cluster.");
    while !stop.load(Ordering::Relaxed) {
        let record = manager.host_record().await;
        if let Err(error) = cluster.publish(&record).await {
            tracing::warn!(error = %format!("{error:#}"), "Cannot publish this host's record to the cluster.");
        }
        if let Err(error) = cluster.mirror(manager.folder()).await {
            tracing::warn!(error = %format!("{error:#}"), "Cannot read the specs shared through the cluster.");
        }
        tokio::time::sleep(BEAT).await;
    }
    cluster.leave().await;
}
