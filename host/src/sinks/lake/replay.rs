//! Exactly-once lake objects for rows that each come from one source record (pipelines
//! without a window). Such an object holds the rows of one folder (`field=value/`) from
//! one source partition and is named after the first and last source offset in it:
//! `part-<partition>-<first>-<last>.csv.gz`, the same for every run. Batches are written one
//! after another, so a folder holds every one of its rows of a source partition up to the
//! last offset named there. After a crash the source replays from the last checkpoint;
//! the rows a folder already holds are skipped, however the replay cuts its batches, and
//! an object written again gets the same name. [`Written`] keeps that high mark per folder
//! and partition, learnt by listing a folder the first time it is written in a run.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path;

/// Folders listed at once.
const LISTINGS: usize = 16;

/// The object name for rows of `partition` at offsets `first..=last`.
pub fn object_name(partition: i32, first: i64, last: i64, ext: &str) -> String {
    format!("part-{partition:05}-{first:020}-{last:020}.{ext}")
}

/// Partition, first and last offset of an object named by [`object_name`].
pub fn parse_name(name: &str) -> Option<(i32, i64, i64)> {
    let rest = name.strip_prefix("part-")?;
    let (stem, _ext) = rest.split_once('.')?;
    let mut parts = stem.split('-');
    let partition = parts.next()?.parse().ok()?;
    let first = parts.next()?.parse().ok()?;
    let last = parts.next()?.parse().ok()?;
    (parts.next().is_none() && first <= last).then_some((partition, first, last))
}

/// The last source offset written per folder and partition.
#[derive(Default)]
pub struct Written {
    folders: Mutex<HashMap<String, HashMap<i32, i64>>>,
}

impl Written {
    /// Learns the folders among `dirs` not seen yet in this run by listing them; `path`
    /// turns a folder into its store path (`None`: the store's root).
    pub async fn learn<'a>(
        &self,
        store: &dyn ObjectStore,
        dirs: impl Iterator<Item = &'a str>,
        path: impl Fn(&str) -> anyhow::Result<Option<Path>>,
    ) -> anyhow::Result<()> {
        let unknown: Vec<(String, Option<Path>)> = {
            let folders = self.lock();
            let mut unknown = Vec::new();
            for dir in dirs {
                if !folders.contains_key(dir) && !unknown.iter().any(|(d, _)| d == dir) {
                    unknown.push((dir.to_owned(), path(dir)?));
                }
            }
            unknown
        };
        let listed: Vec<(String, HashMap<i32, i64>)> = futures::stream::iter(unknown)
            .map(|(dir, prefix)| async move {
                let marks = list(store, prefix.as_ref()).await?;
                anyhow::Ok((dir, marks))
            })
            .buffer_unordered(LISTINGS)
            .try_collect()
            .await?;
        self.lock().extend(listed);
        Ok(())
    }

    /// True when `dir` already holds the row of `partition` at `offset`.
    pub fn holds(&self, dir: &str, partition: i32, offset: i64) -> bool {
        self.lock()
            .get(dir)
            .and_then(|marks| marks.get(&partition))
            .is_some_and(|&last| offset <= last)
    }

    /// Notes that `dir` now holds `partition` up to `last`.
    pub fn wrote(&self, dir: &str, partition: i32, last: i64) {
        let mut folders = self.lock();
        let mark = folders
            .entry(dir.to_owned())
            .or_default()
            .entry(partition)
            .or_insert(last);
        *mark = (*mark).max(last);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<i32, i64>>> {
        self.folders.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The last offset per partition among the objects directly in `prefix`.
async fn list(store: &dyn ObjectStore, prefix: Option<&Path>) -> anyhow::Result<HashMap<i32, i64>> {
    let listing = match store.list_with_delimiter(prefix).await {
        Ok(listing) => listing,
        Err(object_store::Error::NotFound { .. }) => return Ok(HashMap::new()),
        Err(e) => {
            let at = prefix.map_or_else(|| "/".to_owned(), Path::to_string);
            return Err(anyhow::anyhow!("cannot list `{at}` in the lake: {e}"));
        }
    };
    let mut marks = HashMap::new();
    for object in listing.objects {
        let Some(name) = object.location.filename() else {
            continue;
        };
        if let Some((partition, _, last)) = parse_name(name) {
            let mark = marks.entry(partition).or_insert(last);
            *mark = (*mark).max(last);
        }
    }
    Ok(marks)
}

#[cfg(test)]
mod tests {
    use object_store::PutPayload;
    use object_store::memory::InMemory;

    use super::*;

    #[test]
    fn names_round_trip_and_other_names_are_not_positions() {
        let name = object_name(3, 120, 4_567, "csv.gz");
        assert_eq!(
            name,
            "part-00003-00000000000000000120-00000000000000004567.csv.gz"
        );
        assert_eq!(parse_name(&name), Some((3, 120, 4_567)));
        for other in [
            "part-0123456789abcdef.csv.gz",
            "part-1-9-3.csv",
            "x-1-2-3.csv",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    #[tokio::test]
    async fn a_folder_listed_once_knows_the_last_offset_per_partition() {
        let store = InMemory::new();
        for (p, first, last) in [(0, 0, 9), (0, 10, 19), (1, 0, 4)] {
            let path = Path::parse(format!("lake/s=A/{}", object_name(p, first, last, "csv")));
            store
                .put(&path.unwrap(), PutPayload::from_static(b"x"))
                .await
                .unwrap();
        }
        let written = Written::default();
        let path = |dir: &str| Ok(Some(Path::parse(format!("lake/{dir}"))?));
        written
            .learn(&store, ["s=A", "s=B"].into_iter(), path)
            .await
            .unwrap();
        assert!(written.holds("s=A", 0, 19));
        assert!(!written.holds("s=A", 0, 20));
        assert!(written.holds("s=A", 1, 4));
        assert!(!written.holds("s=A", 2, 0));
        assert!(!written.holds("s=B", 0, 0));
        written.wrote("s=B", 0, 7);
        assert!(written.holds("s=B", 0, 7));
    }
}
