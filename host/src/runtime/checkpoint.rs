//! Checkpoints: a pipeline's source offsets, window state (the plugin's snapshot) and
//! watermarks, saved together as one object in any object store, only after the sinks have
//! written everything emitted before them. A restarted pipeline restores the newest
//! checkpoint that reads back intact and seeks its source to the offsets in it, so every
//! result is emitted exactly as in an uninterrupted run.
//!
//! Layout: `<url>/<pipeline>/checkpoint-<epoch, 20 digits>.bin` for a pipeline that runs as
//! one task, and `<url>/<pipeline>/partition-<p>/checkpoint-<epoch>.bin` for one whose state
//! splits by source partition (see `tasks`): each partition's offset, watermark and window
//! state then move on their own, to another task or host. Each object is written atomically
//! (object_store puts are all-or-nothing); the previous one is kept as a fallback, older ones
//! are deleted.
//!
//! Fencing: an epoch is written once. A checkpoint is put only if no object of that epoch or
//! a newer one exists (a listing, then a put-if-absent, `PutMode::Create`, where the store
//! supports it), and a host that continues from a checkpoint first claims the next epoch
//! (see [`CheckpointStore::claim`]). So a host that stalled past its session (SIGSTOP, a long
//! pause, a network cut) and wakes up after another took over is refused ([`Fenced`]) and
//! stops; it can never overwrite a newer checkpoint. An object is `SLUICECK`, a little-endian u32 header length, the
//! JSON header, the stage snapshots, and the SHA-256 of everything before it.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use futures::TryStreamExt;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::watermark::WatermarkState;
use crate::objects::{self, Location};

const MAGIC: &[u8; 8] = b"SLUICECK";
const FORMAT: u32 = 1;
/// Checkpoints kept besides the newest one.
const KEEP_PREVIOUS: usize = 1;

/// A checkpoint refused because another process wrote this epoch or a newer one: this host
/// no longer owns the pipeline's state.
#[derive(Debug, thiserror::Error)]
#[error(
    "checkpoint {epoch} of pipeline `{pipeline}` was refused: another process already wrote \
     checkpoint {newer}. This host no longer owns the pipeline (it was paused or cut off past \
     its session timeout, or a second host runs on the same state folder) and stops without \
     writing more; the newer owner goes on"
)]
pub struct Fenced {
    /// The pipeline.
    pub pipeline: String,
    /// The epoch this host tried to write.
    pub epoch: u64,
    /// The newest epoch found.
    pub newer: u64,
}

/// One checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// Sequence number, increasing over the pipeline's life.
    pub epoch: u64,
    /// When it was taken (ms since the epoch).
    pub created_ms: i64,
    /// Which source the offsets belong to (`topic` and consumer group, or file paths).
    pub source: String,
    /// Next offset to read, per source partition.
    pub offsets: BTreeMap<i32, i64>,
    /// Event time of the window step.
    pub watermarks: WatermarkState,
    /// State of each stateful stage.
    pub stages: Vec<StageState>,
}

/// The snapshot of one stateful stage.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageState {
    /// `steps[1] window turnstile-window@0.1.0`.
    pub label: String,
    /// `name@version` of the plugin that wrote it.
    pub plugin: String,
    /// Content hash of that plugin.
    pub hash: String,
    /// What its `snapshot` returned.
    pub snapshot: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    epoch: u64,
    created_ms: i64,
    source: String,
    offsets: Vec<(i32, i64)>,
    watermarks: WatermarkState,
    stages: Vec<StageHeader>,
}

#[derive(Serialize, Deserialize)]
struct StageHeader {
    label: String,
    plugin: String,
    hash: String,
    bytes: u64,
}

impl Checkpoint {
    /// The object's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let header = Header {
            format: FORMAT,
            epoch: self.epoch,
            created_ms: self.created_ms,
            source: self.source.clone(),
            offsets: self.offsets.iter().map(|(&p, &o)| (p, o)).collect(),
            watermarks: self.watermarks.clone(),
            stages: self
                .stages
                .iter()
                .map(|s| StageHeader {
                    label: s.label.clone(),
                    plugin: s.plugin.clone(),
                    hash: s.hash.clone(),
                    bytes: s.snapshot.len() as u64,
                })
                .collect(),
        };
        let header = serde_json::to_vec(&header).expect("a checkpoint header serialises");
        let mut out = Vec::with_capacity(
            48 + header.len() + self.stages.iter().map(|s| s.snapshot.len()).sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        for stage in &self.stages {
            out.extend_from_slice(&stage.snapshot);
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Reads an object back; any damage (truncation, bit flip, other format) is an error.
    pub fn decode(bytes: &[u8]) -> anyhow::Result<Self> {
        if bytes.len() < MAGIC.len() + 4 + 32 || &bytes[..MAGIC.len()] != MAGIC {
            bail!("not a sluice checkpoint");
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != digest {
            bail!("the checksum does not match (a damaged or partial write)");
        }
        let len = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes")) as usize;
        let header_end = 12usize
            .checked_add(len)
            .filter(|&e| e <= body.len())
            .context("the header length is out of range")?;
        let header: Header = serde_json::from_slice(&body[12..header_end])?;
        if header.format != FORMAT {
            bail!("checkpoint format {} is not supported", header.format);
        }
        let mut at = header_end;
        let mut stages = Vec::new();
        for stage in header.stages {
            let end = at
                .checked_add(stage.bytes as usize)
                .filter(|&e| e <= body.len())
                .context("a snapshot length is out of range")?;
            stages.push(StageState {
                label: stage.label,
                plugin: stage.plugin,
                hash: stage.hash,
                snapshot: body[at..end].to_vec(),
            });
            at = end;
        }
        Ok(Self {
            epoch: header.epoch,
            created_ms: header.created_ms,
            source: header.source,
            offsets: header.offsets.into_iter().collect(),
            watermarks: header.watermarks,
            stages,
        })
    }
}

/// Where one pipeline's checkpoints live.
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    location: Location,
    pipeline: String,
    /// Description for logs (`file:///…/checkpoints/turnstile/`).
    pub describe: String,
}

impl CheckpointStore {
    /// Opens `url` for pipeline `pipeline`.
    pub fn open(url: &str, pipeline: &str) -> anyhow::Result<Self> {
        let location = objects::open(url)
            .with_context(|| format!("Cannot open the checkpoint store `{url}`."))?;
        Ok(Self {
            location,
            pipeline: pipeline.to_owned(),
            describe: format!("{}/{pipeline}/", url.trim_end_matches('/')),
        })
    }

    /// The checkpoints of source partition `partition` alone (a task's).
    pub fn partition(&self, partition: i32) -> Self {
        Self {
            location: self.location.clone(),
            pipeline: format!("{}/partition-{partition}", self.pipeline),
            describe: format!("{}partition-{partition}/", self.describe),
        }
    }

    /// The partitions that have checkpoints of their own.
    pub async fn partitions(&self) -> anyhow::Result<Vec<i32>> {
        let dir = self.location.path(&self.pipeline)?;
        let listed = self.location.store.list_with_delimiter(Some(&dir)).await?;
        let mut partitions: Vec<i32> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename()?.strip_prefix("partition-")?.parse().ok())
            .collect();
        partitions.sort_unstable();
        Ok(partitions)
    }

    fn key(&self, epoch: u64) -> String {
        format!("{}/checkpoint-{epoch:020}.bin", self.pipeline)
    }

    /// Epochs of the stored checkpoints, newest first (those of this folder only, not of
    /// the partitions below it).
    async fn epochs(&self) -> anyhow::Result<Vec<u64>> {
        let dir = self.location.path(&self.pipeline)?;
        let listed = self.location.store.list_with_delimiter(Some(&dir)).await?;
        let mut epochs: Vec<u64> = listed
            .objects
            .iter()
            .filter_map(|o| o.location.filename())
            .filter_map(|f| f.strip_prefix("checkpoint-")?.strip_suffix(".bin"))
            .filter_map(|n| n.parse().ok())
            .collect();
        epochs.sort_unstable_by(|a, b| b.cmp(a));
        Ok(epochs)
    }

    /// The newest checkpoint that reads back intact, if any. A damaged one is logged and
    /// skipped in favour of the one before it.
    pub async fn latest(&self) -> anyhow::Result<Option<Checkpoint>> {
        Ok(self.latest_and_next().await?.0)
    }

    /// The newest checkpoint that reads back intact and the epoch after every stored one, from
    /// one listing (so no checkpoint written in between is missed by one and seen by the
    /// other).
    pub async fn latest_and_next(&self) -> anyhow::Result<(Option<Checkpoint>, u64)> {
        let epochs = self.epochs().await?;
        let next = epochs.first().map_or(1, |e| e + 1);
        for epoch in epochs {
            let path = self.location.path(&self.key(epoch))?;
            let read = async { anyhow::Ok(self.location.store.get(&path).await?.bytes().await?) };
            match read.await.and_then(|bytes| Checkpoint::decode(&bytes)) {
                Ok(checkpoint) => return Ok((Some(checkpoint), next)),
                Err(error) => tracing::warn!(
                    pipeline = %self.pipeline, epoch, error = %format!("{error:#}"),
                    "Skipping a checkpoint that does not read back; trying the one before it."
                ),
            }
        }
        Ok((None, next))
    }

    /// The epoch after every stored one, damaged ones included (1 when there is none).
    pub async fn next_epoch(&self) -> anyhow::Result<u64> {
        Ok(self.epochs().await?.first().map_or(1, |e| e + 1))
    }

    /// Continuing from `restored`: saves it again as epoch `epoch`, so that a process still
    /// running on the older state (a stalled former owner) is fenced from its next
    /// checkpoint on.
    pub async fn claim(&self, restored: &Checkpoint, epoch: u64) -> anyhow::Result<()> {
        let claim = Checkpoint {
            epoch,
            created_ms: now_ms(),
            ..restored.clone()
        };
        self.write(&claim).await.map(drop)
    }

    /// Writes `checkpoint` (atomically, and only if no process wrote this epoch or a newer
    /// one: else [`Fenced`]), then deletes all but the previous one. Returns the bytes
    /// written.
    pub async fn write(&self, checkpoint: &Checkpoint) -> anyhow::Result<usize> {
        let bytes = bytes::Bytes::from(checkpoint.encode());
        let size = bytes.len();
        let path = self.location.path(&self.key(checkpoint.epoch))?;
        let fenced = |newer| Fenced {
            pipeline: self.pipeline.clone(),
            epoch: checkpoint.epoch,
            newer,
        };
        if let Some(&newer) = self.epochs().await?.first()
            && newer >= checkpoint.epoch
        {
            return Err(fenced(newer).into());
        }
        // Compiled into test builds only (`--features failpoints`, as `make test` builds).
        #[cfg(feature = "failpoints")]
        if super::failpoint::checkpoint_write(checkpoint.epoch) {
            // Fault injection for the crash tests: die half-way through this checkpoint, as
            // on a store whose writes are not atomic.
            let half = bytes::Bytes::copy_from_slice(&bytes[..size / 2]);
            self.location.store.put(&path, half.into()).await?;
            tracing::error!(
                epoch = checkpoint.epoch,
                "SLUICE_FAILPOINT: crashing during a checkpoint write."
            );
            std::process::abort();
        }
        let create = object_store::PutOptions::from(object_store::PutMode::Create);
        match self
            .location
            .store
            .put_opts(&path, bytes.clone().into(), create)
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                return Err(fenced(checkpoint.epoch).into());
            }
            Err(object_store::Error::NotImplemented) => {
                // A store without conditional puts: the listing above is the only fence.
                self.location.store.put(&path, bytes.into()).await?;
            }
            Err(error) => return Err(error.into()),
        }
        for old in self
            .epochs()
            .await?
            .into_iter()
            .filter(|&e| e < checkpoint.epoch)
            .skip(KEEP_PREVIOUS)
        {
            let path = self.location.path(&self.key(old))?;
            if let Err(error) = self.location.store.delete(&path).await {
                tracing::debug!(%error, "Could not delete an old checkpoint.");
            }
        }
        Ok(size)
    }

    /// Deletes every checkpoint of the pipeline, its partitions' included (a reset to a
    /// clean start).
    pub async fn clear(&self) -> anyhow::Result<()> {
        let dir = self.location.path(&self.pipeline)?;
        let objects: Vec<_> = self.location.store.list(Some(&dir)).try_collect().await?;
        for object in objects {
            let name = object.location.filename().unwrap_or_default();
            if name.starts_with("checkpoint-") && name.ends_with(".bin") {
                self.location.store.delete(&object.location).await?;
            }
        }
        Ok(())
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(epoch: u64) -> Checkpoint {
        Checkpoint {
            epoch,
            created_ms: 1_700_000_000_000,
            source: "turnstile-stream group sluice".into(),
            offsets: [(0, 10), (1, 20)].into_iter().collect(),
            watermarks: WatermarkState {
                current: 5,
                partitions: vec![(0, 9), (1, 15)],
            },
            stages: vec![StageState {
                label: "steps[1] window w@0.1.0".into(),
                plugin: "w@0.1.0".into(),
                hash: "abc".into(),
                snapshot: vec![1, 2, 3, 4, 5],
            }],
        }
    }

    #[test]
    fn encodes_and_decodes() {
        let checkpoint = sample(3);
        assert_eq!(
            Checkpoint::decode(&checkpoint.encode()).unwrap(),
            checkpoint
        );
    }

    #[test]
    fn refuses_damaged_objects() {
        let bytes = sample(3).encode();
        assert!(Checkpoint::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(Checkpoint::decode(&flipped).is_err());
        assert!(Checkpoint::decode(b"garbage").is_err());
    }

    #[tokio::test]
    async fn keeps_the_newest_two_and_falls_back_past_damage() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let store = CheckpointStore::open(&url, "p").unwrap();
        assert_eq!(store.latest().await.unwrap(), None);
        for epoch in 1..=4 {
            store.write(&sample(epoch)).await.unwrap();
        }
        assert_eq!(store.epochs().await.unwrap(), vec![4, 3]);
        assert_eq!(store.latest().await.unwrap().unwrap().epoch, 4);
        let newest = dir
            .path()
            .join("p")
            .join(format!("checkpoint-{:020}.bin", 4));
        std::fs::write(&newest, b"SLUICECK partial").unwrap();
        assert_eq!(store.latest().await.unwrap().unwrap().epoch, 3);
        store.clear().await.unwrap();
        assert_eq!(store.latest().await.unwrap(), None);
    }

    #[tokio::test]
    async fn partitions_keep_their_own_checkpoints_beside_the_pipeline_s() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let store = CheckpointStore::open(&url, "p").unwrap();
        store.write(&sample(7)).await.unwrap();
        for p in [0, 5, 12] {
            store.partition(p).write(&sample(1)).await.unwrap();
        }
        store.partition(5).write(&sample(2)).await.unwrap();
        assert_eq!(store.partitions().await.unwrap(), vec![0, 5, 12]);
        assert_eq!(
            store.epochs().await.unwrap(),
            vec![7],
            "the partitions' are apart"
        );
        assert_eq!(store.partition(5).epochs().await.unwrap(), vec![2, 1]);
        assert!(store.partition(5).describe.ends_with("/p/partition-5/"));
        // Fencing is per partition: another partition's epochs do not count.
        store.partition(0).write(&sample(2)).await.unwrap();
        store.clear().await.unwrap();
        assert_eq!(store.latest().await.unwrap(), None);
        assert_eq!(store.partition(5).latest().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_stalled_former_owner_is_fenced_and_cannot_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let store = CheckpointStore::open(&url, "p").unwrap();
        store.write(&sample(1)).await.unwrap();
        store.write(&sample(2)).await.unwrap();
        // A new owner continues from 2 and claims 3 before processing anything.
        let restored = store.latest().await.unwrap().unwrap();
        let next = store.next_epoch().await.unwrap();
        assert_eq!(next, 3);
        store.claim(&restored, next).await.unwrap();
        // The stalled former owner wakes up and tries its next checkpoint, 3.
        let mut stale = sample(3);
        stale.offsets.insert(0, 5);
        let error = store.write(&stale).await.unwrap_err();
        let fenced = error.downcast_ref::<Fenced>().expect("fenced");
        assert_eq!((fenced.epoch, fenced.newer), (3, 3));
        assert!(
            error.to_string().contains("no longer owns the pipeline"),
            "{error}"
        );
        // Nor an older epoch, nor may it overwrite the claim.
        assert!(store.write(&sample(2)).await.is_err());
        let kept = store.latest().await.unwrap().unwrap();
        assert_eq!((kept.epoch, kept.offsets.get(&0)), (3, Some(&10)));
        // The new owner goes on.
        store.write(&sample(4)).await.unwrap();
        assert_eq!(store.latest().await.unwrap().unwrap().epoch, 4);
    }

    #[tokio::test]
    async fn a_torn_newest_object_does_not_block_the_next_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let store = CheckpointStore::open(&url, "p").unwrap();
        store.write(&sample(1)).await.unwrap();
        let torn = dir
            .path()
            .join("p")
            .join(format!("checkpoint-{:020}.bin", 2));
        std::fs::write(&torn, b"SLUICECK partial").unwrap();
        let restored = store.latest().await.unwrap().unwrap();
        assert_eq!(restored.epoch, 1);
        let next = store.next_epoch().await.unwrap();
        assert_eq!(next, 3, "after the torn one");
        store.claim(&restored, next).await.unwrap();
        assert_eq!(store.latest().await.unwrap().unwrap().epoch, 3);
    }
}
