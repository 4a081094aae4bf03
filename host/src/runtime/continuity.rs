//! Continuity of what a chain consumes, per source partition: each record counts once, in
//! offset order, and none is skipped. Records at or below one already consumed are dropped
//! (read again around a rebalance); a gap in a partition's offsets (a broker that skipped part
//! of a record batch, as tansu 0.6 does when a fetch starts inside one) has the source read
//! the partition again from the first missing offset, once: the partition's records are
//! dropped until the source says it went back (`SourceBatch::rewound`), and a gap still there
//! afterwards is the log's own (compaction, transaction markers) and accepted. Used by the
//! pipeline that runs as one chain; a pipeline of tasks does the same per task (`tasks`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::Sender;

use crate::sources::SourceBatch;

/// What is known of each partition's continuity.
#[derive(Debug, Default)]
pub struct Continuity {
    /// Where to ask the source to read a partition again (`None`: it cannot).
    rewind: Option<Sender<(i32, i64)>>,
    /// Partitions whose records are dropped until the source went back.
    awaiting: BTreeSet<i32>,
    /// The offset each partition was last read again from.
    read_again: BTreeMap<i32, i64>,
}

impl Continuity {
    /// Continuity of a source that reads a partition again when `rewind` asks.
    pub fn new(rewind: Option<Sender<(i32, i64)>>) -> Self {
        Self {
            rewind,
            ..Default::default()
        }
    }

    /// `batch` without what `next` (the next offset of each partition in the state) says is
    /// already consumed, and cut at the first gap of each partition, for which the source (if
    /// it can go back) is asked to read the partition again.
    pub fn filter(&mut self, batch: SourceBatch, next: &BTreeMap<i32, i64>) -> SourceBatch {
        for p in &batch.rewound {
            self.awaiting.remove(p);
        }
        let mut expected: BTreeMap<i32, i64> = next.clone();
        let mut cut: BTreeSet<i32> = self.awaiting.clone();
        let mut keep = Vec::with_capacity(batch.len());
        for (&p, &offset) in batch.partitions.iter().zip(&batch.offsets) {
            if cut.contains(&p) {
                keep.push(false);
                continue;
            }
            let Some(&want) = expected.get(&p) else {
                expected.insert(p, offset + 1);
                keep.push(true);
                continue;
            };
            if offset < want {
                keep.push(false); // already consumed
                continue;
            }
            if offset > want
                && self.read_again.get(&p) != Some(&want)
                && !batch.end
                && let Some(rewind) = &self.rewind
                && rewind.send((p, want)).is_ok()
            {
                tracing::warn!(
                    partition = p,
                    missing_from = want,
                    next_read = offset,
                    "The source skipped records of the partition; reading them again."
                );
                self.read_again.insert(p, want);
                self.awaiting.insert(p);
                cut.insert(p);
                keep.push(false);
                continue;
            }
            expected.insert(p, offset + 1);
            keep.push(true);
        }
        if keep.iter().all(|&k| k) {
            return batch;
        }
        retain(batch, &keep, &cut)
    }
}

/// The records of `batch` marked in `keep`, with its news (but none of a partition's end for
/// the partitions in `cut`).
fn retain(batch: SourceBatch, keep: &[bool], cut: &BTreeSet<i32>) -> SourceBatch {
    let mut kept = batch.retain(|i| keep[i]);
    kept.at_end.retain(|p| !cut.contains(p));
    kept
}

/// The first gap in `batch`'s offsets when the next expected one is `next`: the index of the
/// record after it and the first missing offset.
pub(super) fn first_gap(batch: &SourceBatch, mut next: i64) -> Option<(usize, i64)> {
    for (i, &offset) in batch.offsets.iter().enumerate() {
        if offset != next {
            return Some((i, next));
        }
        next = offset + 1;
    }
    None
}

/// The first `keep` records of `batch` (the rest is read again), without its news of the
/// partition's end.
pub(super) fn truncate(batch: SourceBatch, keep: usize) -> SourceBatch {
    let mut kept = batch.retain(|i| i < keep);
    kept.at_end.clear();
    kept
}

/// `batch` without the records before offset `from` (already in the state) and without any
/// record at or below one kept before it (read twice): offsets strictly increase.
pub(super) fn skip_before(batch: SourceBatch, from: i64) -> SourceBatch {
    let mut floor = from;
    let keep: Vec<bool> = batch
        .offsets
        .iter()
        .map(|&offset| {
            let kept = offset >= floor;
            if kept {
                floor = offset + 1;
            }
            kept
        })
        .collect();
    if keep.iter().all(|&k| k) {
        return batch;
    }
    batch.retain(|i| keep[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: &[(i32, i64)]) -> SourceBatch {
        let mut batch = SourceBatch::default();
        for &(p, o) in records {
            batch.push(p, o, format!("r{p}-{o}").as_bytes());
        }
        batch
    }

    fn pairs(batch: &SourceBatch) -> Vec<(i32, i64)> {
        batch
            .partitions
            .iter()
            .copied()
            .zip(batch.offsets.iter().copied())
            .collect()
    }

    #[test]
    fn a_gap_is_read_again_once_and_the_other_partitions_go_on() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut continuity = Continuity::new(Some(tx));
        let next: BTreeMap<i32, i64> = [(0, 5), (1, 20)].into_iter().collect();
        // Partition 0 skips 6 and 7; partition 1 reads 19 again.
        let first = batch(&[(0, 5), (1, 19), (0, 8), (1, 20), (0, 9), (1, 21)]);
        let kept = continuity.filter(first, &next);
        assert_eq!(pairs(&kept), vec![(0, 5), (1, 20), (1, 21)]);
        assert_eq!(kept.values_row(1), batch(&[(1, 20)]).values_row(0));
        assert_eq!(rx.try_recv(), Ok((0, 6)));
        // Until the source went back, partition 0 is dropped.
        let next: BTreeMap<i32, i64> = [(0, 6), (1, 22)].into_iter().collect();
        let kept = continuity.filter(batch(&[(0, 10), (1, 22)]), &next);
        assert_eq!(pairs(&kept), vec![(1, 22)]);
        let mut again = batch(&[(0, 6), (0, 7), (0, 8)]);
        again.rewound = vec![0];
        let kept = continuity.filter(again, &next);
        assert_eq!(pairs(&kept), vec![(0, 6), (0, 7), (0, 8)]);
        // A gap still there after reading again is accepted.
        let mut still = batch(&[(0, 8)]);
        still.rewound = vec![0];
        let kept = continuity.filter(still, &next);
        assert_eq!(pairs(&kept), vec![(0, 8)]);
        assert!(rx.try_recv().is_err(), "read again once");
    }

    #[test]
    fn without_a_way_back_nothing_is_dropped_but_duplicates() {
        let mut continuity = Continuity::default();
        let next: BTreeMap<i32, i64> = [(0, 5)].into_iter().collect();
        let kept = continuity.filter(batch(&[(0, 4), (0, 5), (0, 9)]), &next);
        assert_eq!(pairs(&kept), vec![(0, 5), (0, 9)]);
        let fresh = continuity.filter(batch(&[(3, 100), (3, 101)]), &BTreeMap::new());
        assert_eq!(pairs(&fresh), vec![(3, 100), (3, 101)]);
    }
}
