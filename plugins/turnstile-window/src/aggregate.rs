//! The window state and the two counter semantics of DESIGN §6, independent of rows: readings
//! come in as (group key, turnstile key, event time, values), closed windows go out as
//! (group key, start, end, sums) ordered by (start, group key). With tracking on
//! ([`Aggregator::track_touched`], in `touched.rs`), the current sums of the (window, group)
//! pairs a batch changed can be read out as early results.

#[cfg(test)]
mod tests;

use crate::intern::{FxHashMap, Interner, bytes_eq, cmp_encoded_keys, is_text_key};
use crate::touched::Touched;
use std::collections::BTreeMap;

/// How ENTRIES and EXITS are to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counters {
    /// Register readings: count the difference between consecutive readings of a turnstile.
    Cumulative,
    /// Counts: sum them.
    Incremental,
}

/// Longest gap between two readings of a turnstile that still makes a pair (24 h).
pub const MAX_GAP_MS: i64 = 24 * 3_600_000;
/// Largest difference between two readings that is counted; larger ones count as 0.
pub const MAX_DELTA: i64 = 10_000;

/// Epoch-aligned windows `[start, start + size)`, starting every `slide`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    /// Window length in ms (> 0).
    pub size: i64,
    /// Distance between starts in ms (0 < slide ≤ size).
    pub slide: i64,
}

impl Windows {
    /// Starts of every window containing `ts`, latest first.
    pub fn starts(self, ts: i64) -> impl Iterator<Item = i64> {
        // `ts - ts mod slide` rather than a checked multiply (a 128-bit libcall on wasm32).
        let last = ts.checked_sub(ts.rem_euclid(self.slide));
        std::iter::successors(last, move |s| s.checked_sub(self.slide))
            .take_while(move |&s| s.checked_add(self.size).is_none_or(|end| end > ts))
    }

    /// The end of the window starting at `start`.
    pub fn end(self, start: i64) -> i64 {
        start.saturating_add(self.size)
    }
}

/// The last kept reading of one turnstile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Predecessor {
    /// Its event time.
    pub ts: i64,
    /// Its register values.
    pub values: Box<[i64]>,
    /// The group id of its last paired reading ([`NO_GROUP`] if none); a cache.
    pub group: u32,
}

/// The `group` of a [`Predecessor`] with no cached group.
pub const NO_GROUP: u32 = u32::MAX;

/// The sums of one window, per group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowSums {
    /// Group id → slot.
    pub(crate) slots: FxHashMap<u32, u32>,
    /// Group id of each slot.
    pub(crate) groups: Vec<u32>,
    /// `n_values` sums per slot.
    pub(crate) sums: Vec<i64>,
    /// Per slot, the last batch that touched it (early results only; may be shorter).
    pub(crate) marks: Vec<u32>,
}

/// All state of a window plugin instance.
#[derive(Clone, Debug)]
pub struct Aggregator {
    pub(crate) counters: Counters,
    pub(crate) windows: Windows,
    pub(crate) n_values: usize,
    pub(crate) groups: Interner,
    pub(crate) turnstiles: Interner,
    pub(crate) predecessors: Vec<Predecessor>,
    pub(crate) open: BTreeMap<i64, WindowSums>,
    /// Every window ending at or before this has been emitted.
    pub(crate) closed_upto: i64,
    /// The pairs the current batch touched, when early results are on.
    pub(crate) touched: Option<Touched>,
    deltas: Vec<i64>,
}

impl Aggregator {
    /// Empty state.
    pub fn new(counters: Counters, windows: Windows, n_values: usize) -> Self {
        Aggregator {
            counters,
            windows,
            n_values,
            groups: Interner::default(),
            turnstiles: Interner::default(),
            predecessors: Vec::new(),
            open: BTreeMap::new(),
            closed_upto: i64::MIN,
            touched: None,
            deltas: vec![0; n_values],
        }
    }

    /// Adds one reading. An `Err` is a per-record failure (late reading); the rest of the
    /// state stays consistent.
    pub fn add(
        &mut self,
        group: &[u8],
        turnstile: &[u8],
        ts: i64,
        values: &[i64],
    ) -> Result<(), String> {
        debug_assert_eq!(values.len(), self.n_values);
        match self.counters {
            Counters::Incremental => {
                let gid = self.group_id(group)?;
                self.add_to_windows(gid, ts, values)
            }
            Counters::Cumulative => self.add_cumulative(group, turnstile, ts, values),
        }
    }

    fn add_cumulative(
        &mut self,
        group: &[u8],
        turnstile: &[u8],
        ts: i64,
        values: &[i64],
    ) -> Result<(), String> {
        let (id, new) = self.turnstiles.intern(turnstile);
        self.add_cumulative_id(id, new, ts, values, |agg| {
            agg.turnstile_group(id as usize, group)
        })
    }

    /// Adds a reading of turnstile `id` (`new` when just interned), whose group id `group`
    /// gives when the reading makes a pair.
    pub(crate) fn add_cumulative_id(
        &mut self,
        id: u32,
        new: bool,
        ts: i64,
        values: &[i64],
        group: impl FnOnce(&mut Self) -> Result<u32, String>,
    ) -> Result<(), String> {
        if new {
            debug_assert_eq!(id as usize, self.predecessors.len());
            self.predecessors.push(Predecessor {
                ts,
                values: values.into(),
                group: NO_GROUP,
            });
            return Ok(());
        }
        if !self.pair_with_predecessor(id as usize, ts, values)? {
            return Ok(());
        }
        let gid = group(self)?;
        let deltas = std::mem::take(&mut self.deltas);
        let result = self.add_to_windows(gid, ts, &deltas);
        self.deltas = deltas;
        result
    }

    /// Makes the reading turnstile `id`'s predecessor, unless it repeats or precedes the
    /// current one; returns whether it made a pair (then `self.deltas` holds the counts).
    fn pair_with_predecessor(
        &mut self,
        id: usize,
        ts: i64,
        values: &[i64],
    ) -> Result<bool, String> {
        let pred = &mut self.predecessors[id];
        if ts == pred.ts {
            return Ok(false);
        }
        if ts < pred.ts {
            return Err(format!(
                "late reading: event time {} is before this turnstile's previous reading at {}",
                sluice_plugin_sdk::time::format_timestamp(ts),
                sluice_plugin_sdk::time::format_timestamp(pred.ts)
            ));
        }
        let paired = ts - pred.ts <= MAX_GAP_MS;
        if paired {
            for ((d, &r), &p) in self.deltas.iter_mut().zip(values).zip(pred.values.iter()) {
                let delta = r.checked_sub(p).filter(|d| (0..=MAX_DELTA).contains(d));
                *d = delta.unwrap_or(0);
            }
        }
        pred.ts = ts;
        pred.values.copy_from_slice(values);
        Ok(paired)
    }

    /// The group id of a reading of turnstile `id`, cached per turnstile (whose group
    /// rarely changes) to save a hash lookup.
    fn turnstile_group(&mut self, id: usize, group: &[u8]) -> Result<u32, String> {
        let cached = self.predecessors[id].group;
        if cached != NO_GROUP && bytes_eq(self.groups.key(cached), group) {
            return Ok(cached);
        }
        let gid = self.group_id(group)?;
        self.predecessors[id].group = gid;
        Ok(gid)
    }

    /// The id of a group key, checking a new key is text.
    pub(crate) fn group_id(&mut self, group: &[u8]) -> Result<u32, String> {
        match self.groups.get(group) {
            Some(gid) => Ok(gid),
            None if is_text_key(group) => Ok(self.groups.intern(group).0),
            None => Err("a group_by field is not valid UTF-8 text".to_string()),
        }
    }

    /// Adds `values` to the sums of group `gid` in every open window containing `ts`.
    pub(crate) fn add_to_windows(
        &mut self,
        gid: u32,
        ts: i64,
        values: &[i64],
    ) -> Result<(), String> {
        let mut added = false;
        for start in self.windows.starts(ts) {
            if self.windows.end(start) <= self.closed_upto {
                continue;
            }
            added = true;
            let w = self.open.entry(start).or_default();
            let slot = *w.slots.entry(gid).or_insert_with(|| {
                w.groups.push(gid);
                w.sums.extend(std::iter::repeat_n(0, values.len()));
                (w.groups.len() - 1) as u32
            });
            if let Some(t) = &mut self.touched {
                t.mark(&mut w.marks, start, gid, slot);
            }
            let at = slot as usize * values.len();
            for (s, v) in w.sums[at..at + values.len()].iter_mut().zip(values) {
                *s = s.wrapping_add(*v);
            }
        }
        if added {
            return Ok(());
        }
        Err(format!(
            "late reading: event time {} falls only in windows already emitted (up to {})",
            sluice_plugin_sdk::time::format_timestamp(ts),
            sluice_plugin_sdk::time::format_timestamp(self.closed_upto)
        ))
    }

    /// Emits and forgets every window whose end is at or before `watermark`, in start order,
    /// each window's groups in key order: `emit(group key, start, end, sums)`.
    pub fn advance(&mut self, watermark: i64, mut emit: impl FnMut(&[u8], i64, i64, &[i64])) {
        let mut order = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            let start = *entry.key();
            let end = self.windows.end(start);
            if end > watermark {
                break;
            }
            let w = entry.remove();
            order.clear();
            order.extend(0..w.groups.len());
            order.sort_unstable_by(|&a, &b| {
                cmp_encoded_keys(self.groups.key(w.groups[a]), self.groups.key(w.groups[b]))
            });
            for &slot in &order {
                let at = slot * self.n_values;
                emit(
                    self.groups.key(w.groups[slot]),
                    start,
                    end,
                    &w.sums[at..at + self.n_values],
                );
            }
        }
        self.closed_upto = self.closed_upto.max(watermark);
    }

    /// Number of windows not yet emitted.
    pub fn open_windows(&self) -> usize {
        self.open.len()
    }

    /// Number of turnstiles with a predecessor.
    pub fn turnstiles(&self) -> usize {
        self.predecessors.len()
    }
}
