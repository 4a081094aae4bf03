//! Which (window, group) sums a batch changed, for early results (`emit_early`).
//!
//! Marking is one comparison per reading and window, no hashing: each window keeps, per group
//! slot, the number of the last batch that touched it ([`Touched::mark`]); a slot whose mark
//! is not the current batch's is new to this batch and is recorded once. The list and the
//! marks are reused from batch to batch, so steady-state tracking allocates nothing.

use crate::aggregate::{Aggregator, WindowSums};
use crate::intern::cmp_encoded_keys;
use std::collections::BTreeMap;

/// The (window start, group slot) pairs touched since the last [`Touched::begin`].
#[derive(Clone, Debug, Default)]
pub struct Touched {
    /// The current batch's number; never 0 after `begin` (0 is "never touched").
    epoch: u32,
    /// (window start, group id, slot in that window), in first-touch order.
    pub(crate) keys: Vec<(i64, u32, u32)>,
}

impl Touched {
    /// Starts a new batch: forgets what the previous one touched.
    pub fn begin(&mut self, open: &mut BTreeMap<i64, WindowSums>) {
        self.keys.clear();
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            // After 2^32 batches: clear the marks so an old mark cannot equal a new epoch.
            open.values_mut().for_each(|w| w.marks.fill(0));
            self.epoch = 1;
        }
    }

    /// Records that the sums of group `gid`, at `slot` in the window starting at `start`
    /// (whose marks are `marks`), changed, unless this batch recorded it already.
    #[inline]
    pub fn mark(&mut self, marks: &mut Vec<u32>, start: i64, gid: u32, slot: u32) {
        let at = slot as usize;
        if marks.len() <= at {
            marks.resize(at + 1, 0);
        }
        if marks[at] != self.epoch {
            marks[at] = self.epoch;
            self.keys.push((start, gid, slot));
        }
    }

    /// Number of (window, group) pairs touched in this batch.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether this batch touched nothing.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl Aggregator {
    /// Turns tracking of touched (window, group) pairs on or off (off by default).
    pub fn track_touched(&mut self, on: bool) {
        self.touched = on.then(Touched::default);
    }

    /// Starts a batch: what [`Aggregator::emit_touched`] reports starts empty.
    pub fn begin_batch(&mut self) {
        if let Some(t) = &mut self.touched {
            t.begin(&mut self.open);
        }
    }

    /// Emits the current sums of every (group, window) touched since
    /// [`Aggregator::begin_batch`], ordered by (window start, group key), as
    /// `emit(group key, start, end, sums)`; nothing when tracking is off.
    pub fn emit_touched(&mut self, mut emit: impl FnMut(&[u8], i64, i64, &[i64])) {
        let Some(t) = &mut self.touched else {
            return;
        };
        let (open, groups, n) = (&self.open, &self.groups, self.n_values);
        t.keys.sort_unstable_by(|&(sa, ga, _), &(sb, gb, _)| {
            sa.cmp(&sb)
                .then_with(|| cmp_encoded_keys(groups.key(ga), groups.key(gb)))
        });
        let mut window: Option<(i64, &WindowSums)> = None;
        for &(start, gid, slot) in &t.keys {
            if window.is_none_or(|(s, _)| s != start) {
                window = open.get(&start).map(|w| (start, w));
            }
            // A window emitted since it was touched has nothing left to report.
            let Some((_, w)) = window.filter(|(s, _)| *s == start) else {
                continue;
            };
            let at = slot as usize * n;
            emit(
                groups.key(gid),
                start,
                self.windows.end(start),
                &w.sums[at..at + n],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pair_is_recorded_once_per_batch() {
        let mut open = BTreeMap::new();
        let (mut t, mut marks) = (Touched::default(), Vec::new());
        t.begin(&mut open);
        t.mark(&mut marks, 0, 5, 2);
        t.mark(&mut marks, 0, 5, 2);
        t.mark(&mut marks, 0, 3, 0);
        assert_eq!(t.keys, [(0, 5, 2), (0, 3, 0)]);
        t.begin(&mut open);
        assert!(t.is_empty());
        t.mark(&mut marks, 0, 3, 0);
        assert_eq!((t.len(), marks.as_slice()), (1, &[2, 0, 1][..]));
    }

    #[test]
    fn epoch_wraps_without_stale_marks() {
        let mut open = BTreeMap::from([(0, WindowSums::default())]);
        let w = open.get_mut(&0).unwrap();
        w.marks = vec![1, 7];
        let mut t = Touched {
            epoch: u32::MAX,
            keys: Vec::new(),
        };
        t.begin(&mut open);
        assert_eq!((t.epoch, open[&0].marks.as_slice()), (1, &[0, 0][..]));
        let mut marks = open.remove(&0).unwrap().marks;
        t.mark(&mut marks, 0, 9, 0);
        assert_eq!(t.keys, [(0, 9, 0)]);
    }
}
