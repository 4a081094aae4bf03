//! Finding the records that make a stateless plugin trap or break a limit: the batch is split
//! in halves, recursively, each half run on the instance (replaced by a fresh one after each
//! failure) until every failing part is a single record. A batch of `n` records with one
//! culprit costs about `2·log2(n)` calls. The rows of the parts that succeed are kept in
//! input order; the culprits are reported with the violation.

use super::stage::{TransformStage, is_violation};
use crate::wasm::{Batch, PluginEngine, PluginError, PluginOutput, Rows};

/// The result of bisecting a batch.
pub(super) struct Bisected {
    /// The rows of the records that went through, plus every failure, culprits included
    /// (indices in the whole batch).
    pub(super) output: PluginOutput,
    /// The culprit records: index in the batch and the violation each one causes.
    pub(super) culprits: Vec<(u32, PluginError)>,
}

impl TransformStage {
    /// Bisects `batch`, which failed as a whole with `error` (the instance has already been
    /// replaced).
    pub(super) fn bisect(
        &mut self,
        engine: &PluginEngine,
        batch: &Batch,
        error: &PluginError,
    ) -> Bisected {
        let mut found = Bisected {
            output: PluginOutput {
                rows: Rows::empty(),
                origins: Vec::new(),
                failures: Vec::new(),
            },
            culprits: Vec::new(),
        };
        let rows = batch.ends.len() as u32;
        if rows == 1 {
            found.culprits.push((0, error.clone()));
        } else {
            self.halves(engine, batch, 0, rows, &mut found);
        }
        for (index, error) in &found.culprits {
            found.output.failures.push((*index, error.to_string()));
        }
        found.output.failures.sort_by_key(|(i, _)| *i);
        found
    }

    /// Runs both halves of the failing range `lo..hi` (at least two records).
    fn halves(
        &mut self,
        engine: &PluginEngine,
        batch: &Batch,
        lo: u32,
        hi: u32,
        found: &mut Bisected,
    ) {
        let mid = lo + (hi - lo) / 2;
        for (a, b) in [(lo, mid), (mid, hi)] {
            self.part(engine, batch, a, b, found);
        }
    }

    /// Runs the records `lo..hi` of `batch`; on a violation, bisects them further.
    fn part(
        &mut self,
        engine: &PluginEngine,
        batch: &Batch,
        lo: u32,
        hi: u32,
        found: &mut Bisected,
    ) {
        let sub = Rows::Packed(slice(batch, lo as usize, hi as usize));
        match self.instance.process(&sub) {
            Ok(out) => merge(&mut found.output, out, lo, hi),
            Err(error) if is_violation(&error) => {
                self.restart(engine);
                if hi - lo == 1 {
                    found.culprits.push((lo, error));
                } else {
                    self.halves(engine, batch, lo, hi, found);
                }
            }
            Err(error) => {
                let reason = error.to_string();
                found
                    .output
                    .failures
                    .extend((lo..hi).map(|i| (i, reason.clone())));
            }
        }
    }
}

/// Rows `lo..hi` of `batch` as a batch of their own.
fn slice(batch: &Batch, lo: usize, hi: usize) -> Batch {
    let start = if lo == 0 { 0 } else { batch.ends[lo - 1] };
    let end = batch.ends[hi - 1];
    Batch {
        data: batch.data[start as usize..end as usize].to_vec(),
        ends: batch.ends[lo..hi].iter().map(|e| e - start).collect(),
    }
}

/// Appends `part` (the output of the records `offset..end`, packed while bisecting) to
/// `into`; rows that do not read fail those records.
fn merge(into: &mut PluginOutput, part: PluginOutput, offset: u32, end: u32) {
    let Rows::Packed(into_rows) = &mut into.rows else {
        unreachable!("a bisected output is packed")
    };
    let rows = match part.rows.into_packed() {
        Ok(rows) => rows,
        Err(e) => {
            let reason = format!("its output did not read: {}", e.message);
            into.failures
                .extend((offset..end).map(|i| (i, reason.clone())));
            return;
        }
    };
    let base = into_rows.data.len() as u32;
    into_rows.data.extend_from_slice(&rows.data);
    into_rows.ends.extend(rows.ends.iter().map(|e| e + base));
    into.origins.extend(part.origins.iter().map(|o| o + offset));
    into.failures
        .extend(part.failures.into_iter().map(|(i, r)| (i + offset, r)));
}
