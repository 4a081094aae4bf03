//! `format: delta`: the lake as a Delta Lake table. Data files are Parquet objects with
//! deterministic names (the lake's: a hash of a window's rows, or the source offsets they
//! hold), written as batches arrive and *staged*; at each checkpoint of a task, before the
//! checkpoint is saved, the task's staged files are added to the table in one commit with a
//! `txn` action (app id `sluice-<pipeline>-<partition>`, version = the checkpoint's epoch).
//! Readers so see all of a checkpoint's rows or none.
//!
//! Exactly once: a file the table already holds is neither written nor added again, and
//! rows of a source partition at or below the highest offset a committed file names are
//! skipped. A restart after a crash (orphan files, or a commit whose checkpoint was not
//! saved) or a replay of the same input with a new consumer group and new checkpoints
//! produces the same names, so it adds no duplicate row. Concurrent writers (hosts of one
//! consumer group) race for each version with put-if-absent; the loser reads the winner's
//! commit and tries the next version.

pub mod log;

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use anyhow::Context;
use futures::TryStreamExt;
use object_store::PutPayload;
use sluice_plugin_sdk::rows::Field;

use self::log::{Add, Snapshot, TableSchema};
use crate::objects::Location;
use crate::sinks::retry::Health;

/// A Delta table a lake sink appends to.
pub struct Table {
    location: Location,
    /// `sluice-<pipeline>`: the prefix of the `txn` app ids.
    app: String,
    /// The table, for messages (`the Delta table at s3://lake/turnstile`).
    what: String,
    /// The log as last read or written; held across a commit.
    log: tokio::sync::Mutex<Snapshot>,
    /// Object keys in the table or staged: what a write need not write again.
    known: Mutex<HashSet<String>>,
    /// Files written but not yet committed, per task, by key.
    staged: Mutex<BTreeMap<Option<i32>, BTreeMap<String, Add>>>,
}

impl Table {
    /// Opens the table at `location`, creating it (version 0) when its log is empty, and
    /// checks that its schema is the rows'.
    pub async fn open(
        location: Location,
        url: &str,
        pipeline: &str,
        fields: &[Field],
        partition_by: &[String],
        health: &Health,
    ) -> anyhow::Result<Self> {
        let mut table = Self {
            location,
            app: format!("sluice-{pipeline}"),
            what: format!("The Delta table at `{url}`"),
            log: Default::default(),
            known: Default::default(),
            staged: Default::default(),
        };
        let wanted = TableSchema::of(fields, partition_by);
        let mut snapshot = Snapshot::default();
        table.catch_up(&mut snapshot).await?;
        if snapshot.version.is_none() {
            let id = table_id(url, pipeline);
            let body = log::create(&wanted, &id, now_ms());
            let path = table.location.path(&log::commit_name(0))?;
            if health
                .create(table.store(), &path, PutPayload::from(body), &table.what)
                .await?
            {
                tracing::info!(table = url, "Created the Delta table.");
            }
            table.catch_up(&mut snapshot).await?;
        }
        match &snapshot.schema {
            Some(schema) if *schema != wanted => anyhow::bail!(
                "{} has the columns {}, but the rows reaching this sink are {}: write to \
                 another table (url), or change the steps back",
                table.what,
                schema.describe(),
                wanted.describe()
            ),
            Some(_) => {}
            None => anyhow::bail!("{} has no metaData action in its log", table.what),
        }
        *table.known.lock().unwrap_or_else(|e| e.into_inner()) = snapshot.files.clone();
        *table.log.get_mut() = snapshot;
        Ok(table)
    }

    /// The keys of the table's files (to learn which source offsets it holds).
    pub async fn files(&self) -> Vec<String> {
        self.log.lock().await.files.iter().cloned().collect()
    }

    /// True when the table holds or has staged the file `key`.
    pub fn holds(&self, key: &str) -> bool {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    /// Stages `add`, written for `task`, for the task's next commit.
    pub fn stage(&self, task: Option<i32>, add: Add) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(add.key.clone());
        let mut staged = self.staged.lock().unwrap_or_else(|e| e.into_inner());
        staged.entry(task).or_default().insert(add.key.clone(), add);
    }

    /// Commits what `task` staged (every task's, for `None`: a pipeline-wide checkpoint) as
    /// one version with `txn` version `epoch`; nothing when nothing new was staged.
    pub async fn commit(
        &self,
        task: Option<i32>,
        epoch: u64,
        health: &Health,
    ) -> anyhow::Result<()> {
        let adds: Vec<Add> = {
            let mut staged = self.staged.lock().unwrap_or_else(|e| e.into_inner());
            let taken = match task {
                Some(_) => staged.remove(&task).into_iter().collect(),
                None => std::mem::take(&mut *staged)
                    .into_values()
                    .collect::<Vec<_>>(),
            };
            taken.into_iter().flat_map(BTreeMap::into_values).collect()
        };
        if adds.is_empty() {
            return Ok(());
        }
        let app = match task {
            Some(p) => format!("{}-{p}", self.app),
            None => self.app.clone(),
        };
        let mut snapshot = self.log.lock().await;
        loop {
            let new: Vec<&Add> = adds
                .iter()
                .filter(|a| !snapshot.files.contains(&a.key))
                .collect();
            if new.is_empty() {
                return Ok(());
            }
            let version = snapshot.version.map_or(0, |v| v + 1);
            let now = now_ms();
            let body = log::append(&new, &app, epoch, now);
            let oldest = new.iter().map(|a| a.written_ms).min().unwrap_or(now);
            let path = self.location.path(&log::commit_name(version))?;
            if health
                .create(
                    self.store(),
                    &path,
                    PutPayload::from(body.clone()),
                    &self.what,
                )
                .await?
            {
                snapshot.apply(version, &body).map_err(anyhow::Error::msg)?;
                let waited_ms = now_ms() - oldest;
                tracing::debug!(table = %self.what, version, files = new.len(), app, epoch,
                    waited_ms, "Committed to the Delta table: its oldest file waited this long.");
                return Ok(());
            }
            // Another writer took the version (or our own earlier attempt did): read it
            // and try the next one with what is still missing.
            self.catch_up(&mut snapshot).await?;
        }
    }

    /// Reads the commits after `snapshot`'s version.
    async fn catch_up(&self, snapshot: &mut Snapshot) -> anyhow::Result<()> {
        let dir = self.location.path(log::LOG_DIR)?;
        let listed: Vec<object_store::ObjectMeta> = self
            .store()
            .list(Some(&dir))
            .try_collect()
            .await
            .with_context(|| format!("{} could not list its log", self.what))?;
        let mut versions: Vec<u64> = listed
            .iter()
            .filter_map(|o| o.location.filename().and_then(log::parse_commit))
            .filter(|&v| snapshot.version.is_none_or(|known| v > known))
            .collect();
        versions.sort_unstable();
        let first = snapshot.version.map_or(0, |v| v + 1);
        for (expected, version) in (first..).zip(versions) {
            if version != expected {
                anyhow::bail!(
                    "{} has no commit {expected} in its log (it starts at or jumps to \
                     {version}): its older commits were cleaned up after a checkpoint, which \
                     sluice does not read yet",
                    self.what
                );
            }
            let path = self.location.path(&log::commit_name(version))?;
            let bytes = async { self.store().get(&path).await?.bytes().await }
                .await
                .with_context(|| format!("{} could not read commit {version}", self.what))?;
            let text = String::from_utf8_lossy(&bytes);
            snapshot
                .apply(version, &text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", self.what))?;
        }
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(snapshot.files.iter().cloned());
        Ok(())
    }

    fn store(&self) -> &dyn object_store::ObjectStore {
        self.location.store.as_ref()
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A table id in UUID form, from the URL, the pipeline and the time of creation.
fn table_id(url: &str, pipeline: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{url}\n{pipeline}\n{}", now_ms()));
    let h = hex::encode(&digest[..16]);
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use sluice_plugin_sdk::rows::FieldType;

    use super::*;

    fn add(key: &str) -> Add {
        Add {
            key: key.into(),
            partition_values: BTreeMap::new(),
            size: 1,
            stats: serde_json::json!({ "numRecords": 1 }),
            written_ms: 0,
        }
    }

    async fn open(store: &Arc<InMemory>, fields: &[Field]) -> anyhow::Result<Table> {
        let location = Location {
            store: store.clone(),
            prefix: vec!["t".into()],
        };
        Table::open(location, "memory://t", "p", fields, &[], &Health::new(None)).await
    }

    #[tokio::test]
    async fn two_writers_commit_in_turn_and_a_file_is_added_once() {
        let store = Arc::new(InMemory::new());
        let fields = [Field::new("station", FieldType::Str)];
        let (a, b) = (
            open(&store, &fields).await.unwrap(),
            open(&store, &fields).await.unwrap(),
        );
        let health = Health::new(None);
        a.stage(Some(0), add("part-a.parquet"));
        b.stage(Some(1), add("part-b.parquet"));
        // b read the log at version 0; a takes version 1 first, so b's put-if-absent of
        // version 1 fails and it commits as version 2.
        a.commit(Some(0), 1, &health).await.unwrap();
        b.commit(Some(1), 1, &health).await.unwrap();
        // A replay stages a file the table holds: nothing is committed.
        a.stage(Some(0), add("part-b.parquet"));
        a.commit(Some(0), 2, &health).await.unwrap();
        let reader = open(&store, &fields).await.unwrap();
        let log = reader.log.lock().await;
        assert_eq!(log.version, Some(2));
        assert_eq!(log.files.len(), 2);
        assert_eq!((log.txns["sluice-p-0"], log.txns["sluice-p-1"]), (1, 1));
        assert!(reader.holds("part-a.parquet") && reader.holds("part-b.parquet"));
    }

    #[tokio::test]
    async fn another_schema_is_refused_with_both() {
        let store = Arc::new(InMemory::new());
        open(&store, &[Field::new("station", FieldType::Str)])
            .await
            .unwrap();
        let other = [Field::new("station", FieldType::Int64)];
        let err = open(&store, &other).await.err().unwrap().to_string();
        assert!(
            err.contains("has the columns (station string not null)"),
            "{err}"
        );
        assert!(err.contains("are (station long not null)"), "{err}");
    }
}
