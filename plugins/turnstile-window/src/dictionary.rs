//! The fast path for batches whose group and key columns are dictionary-encoded (as
//! turnstile-parse writes them): each dictionary entry is mapped to an interned id once per
//! batch, a turnstile is found by the tuple of its key columns' ids (one hash of a few
//! integers, no key bytes built), and a group id comes from its entry. The ids map to the
//! same interned keys as the byte path (`Aggregator::add`), so the state and its snapshots
//! are the same whichever path a batch takes; the maps here are caches of that state, dropped
//! when it is replaced (`restore`) and rebuilt as batches come.

use crate::aggregate::Aggregator;
use crate::config::{Extracted, PlanColumns};
use crate::intern::{FxHashMap, Interner};
use sluice_plugin_sdk::columns::Var;

// `PlanColumns::text` gives (group columns, key columns); `missing` names a field.

/// Most key columns the fast path packs into one key.
const MAX_KEY_COLUMNS: usize = 4;
/// An entry not mapped yet in this batch.
const UNMAPPED: u32 = u32::MAX;

/// Caches that outlive a batch.
#[derive(Clone, Debug, Default)]
pub struct Ids {
    /// Per key column: its values interned.
    values: Vec<Interner>,
    /// The key columns' value ids → turnstile id.
    turnstiles: FxHashMap<[u32; MAX_KEY_COLUMNS], u32>,
    /// Per key column, this batch's entries → value ids.
    entries: Vec<Vec<u32>>,
    /// This batch's group entries → group id (or the reason it has none).
    groups: Vec<Result<u32, String>>,
    scratch: Vec<u8>,
}

/// Whether a batch of `rows` rows in these columns can take the fast path: its group and key
/// columns are dictionary-encoded, with no more entries than rows (plus a placeholder for
/// nulls), so that mapping the entries costs no more than the rows.
pub fn applies(columns: &PlanColumns<'_>, rows: usize) -> bool {
    let (group, key) = columns.text();
    group.len() == 1
        && key.len() <= MAX_KEY_COLUMNS
        && (group.iter().chain(key)).all(|c| c.entries().is_some_and(|n| n <= rows + 1))
}

impl Ids {
    /// Adds every row of a batch that [`applies`]; per-row failures go to `fail`.
    pub fn add_batch(
        &mut self,
        agg: &mut Aggregator,
        columns: &PlanColumns<'_>,
        rows: usize,
        cumulative: bool,
        scratch: &mut Extracted,
        mut fail: impl FnMut(u32, String),
    ) {
        let (group, key) = columns.text();
        let group = group[0];
        self.values.resize_with(key.len(), Interner::default);
        self.entries.resize_with(key.len(), Vec::new);
        for (entries, column) in self.entries.iter_mut().zip(key) {
            entries.clear();
            entries.resize(column.entries().unwrap_or(0), UNMAPPED);
        }
        self.groups.clear();
        self.groups
            .resize(group.entries().unwrap_or(0), Err(String::new()));
        let mut mapped = vec![false; self.groups.len()];
        for i in 0..rows {
            let added = columns.extract_values(i, scratch).and_then(|()| {
                // The group's entry must read before the reading changes any state, as in
                // the byte path.
                let entry = (group.key(i))
                    .filter(|&e| group.entry(e).is_some())
                    .ok_or_else(|| columns.missing(true, 0))?;
                let turnstile = if cumulative {
                    Some(self.turnstile(agg, columns, i)?)
                } else {
                    None
                };
                let (groups, scratch_key) = (&mut self.groups, &mut self.scratch);
                let mut gid = |agg: &mut Aggregator| {
                    group_id(groups, &mut mapped, scratch_key, agg, group, entry)
                };
                match turnstile {
                    Some((id, new)) => {
                        agg.add_cumulative_id(id, new, scratch.ts, &scratch.values, gid)
                    }
                    None => {
                        let gid = gid(agg)?;
                        agg.add_to_windows(gid, scratch.ts, &scratch.values)
                    }
                }
            });
            if let Err(reason) = added {
                fail(i as u32, reason);
            }
        }
    }

    /// The turnstile of row `i`: from the packed value ids of its key columns, or interned
    /// by its key bytes the first time.
    fn turnstile(
        &mut self,
        agg: &mut Aggregator,
        columns: &PlanColumns<'_>,
        i: usize,
    ) -> Result<(u32, bool), String> {
        let key = columns.text().1;
        let missing_key = |c: usize| columns.missing(false, c);
        let mut packed = [0u32; MAX_KEY_COLUMNS];
        for (c, column) in key.iter().enumerate() {
            let entry = column.key(i).ok_or_else(|| missing_key(c))?;
            let slot = (self.entries[c].get_mut(entry as usize)).ok_or_else(|| missing_key(c))?;
            if *slot == UNMAPPED {
                let bytes = column.entry(entry).ok_or_else(|| missing_key(c))?;
                *slot = self.values[c].intern(bytes).0;
            }
            packed[c] = *slot;
        }
        if let Some(&id) = self.turnstiles.get(&packed) {
            return Ok((id, false));
        }
        self.scratch.clear();
        for (c, column) in key.iter().enumerate() {
            let bytes = column.bytes(i).ok_or_else(|| missing_key(c))?;
            self.scratch
                .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            self.scratch.extend_from_slice(bytes);
        }
        let (id, new) = agg.turnstiles.intern(&self.scratch);
        self.turnstiles.insert(packed, id);
        Ok((id, new))
    }
}

/// The group id of group entry `entry`, looked up the first time this batch needs it.
fn group_id(
    groups: &mut [Result<u32, String>],
    mapped: &mut [bool],
    scratch: &mut Vec<u8>,
    agg: &mut Aggregator,
    group: Var<'_>,
    entry: u32,
) -> Result<u32, String> {
    let e = entry as usize;
    let (Some(slot), Some(done)) = (groups.get_mut(e), mapped.get_mut(e)) else {
        return Err("a group_by field lies outside the batch".to_owned());
    };
    if !*done {
        let bytes = group
            .entry(entry)
            .ok_or("a group_by field lies outside the batch")?;
        scratch.clear();
        scratch.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        scratch.extend_from_slice(bytes);
        *slot = agg.group_id(scratch);
        *done = true;
    }
    slot.clone()
}
