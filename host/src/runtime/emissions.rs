//! A check on final results: a window is final when the watermark closes it, so each
//! (group, window) reaches the sinks once. Seeing the same one again with other values means
//! a window was closed before its data was complete (the bug of a watermark that moved too
//! early); the writer logs it as an error and counts it
//! (`sluice_window_conflicts_total`), it is never silent. An identical repeat (a replay after
//! a restart) is fine.
//!
//! A row's identity is its encoding up to and including `window_end` (the group fields come
//! first in a window's output, as in `newest_open` of the window step). Only pipelines whose
//! output has a `window_end` are checked.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use sluice_plugin_sdk::rows::{Field, RowReader};

use crate::sinks::RowBatch;

/// Identities remembered at most; past this the half with the oldest windows is forgotten.
const REMEMBERED: usize = 200_000;

/// The (group, window) identities emitted so far, with a hash of each final row.
#[derive(Debug, Default)]
pub struct EmissionGuard {
    seen: HashMap<u64, (u64, i64)>,
}

/// One (group, window) emitted twice with different values.
#[derive(Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The group and window, as the row's leading fields (CSV-like text).
    pub window: String,
}

impl EmissionGuard {
    /// Checks the final rows of one batch; returns the conflicts found.
    pub fn check(&mut self, rows: &RowBatch) -> Vec<Conflict> {
        let schema = rows.schema.as_slice();
        let Some(end_index) = schema.iter().position(|f| f.name == "window_end") else {
            return Vec::new();
        };
        let mut conflicts = Vec::new();
        for row in rows.batch().rows() {
            let Some((identity, window_end)) = identity(row, schema, end_index) else {
                continue;
            };
            let key = hash(identity);
            let value = hash(row);
            match self.seen.insert(key, (value, window_end)) {
                Some((before, _)) if before != value => conflicts.push(Conflict {
                    window: describe(row, &schema[..=end_index]),
                }),
                _ => {}
            }
        }
        if self.seen.len() > REMEMBERED {
            self.forget_oldest();
        }
        conflicts
    }

    fn forget_oldest(&mut self) {
        let mut ends: Vec<i64> = self.seen.values().map(|&(_, end)| end).collect();
        let middle = ends.len() / 2;
        let (_, &mut cut, _) = ends.select_nth_unstable(middle);
        self.seen.retain(|_, &mut (_, end)| end > cut);
    }
}

/// The row's bytes up to the end of `window_end`, and that value.
fn identity<'a>(row: &'a [u8], schema: &[Field], end_index: usize) -> Option<(&'a [u8], i64)> {
    let mut reader = RowReader::new(row);
    for field in &schema[..end_index] {
        reader.skip(field).ok()?;
    }
    let end = reader.timestamp().ok()?;
    Some((&row[..reader.position()], end))
}

fn hash(bytes: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// The leading fields of `row` as text, for the log.
fn describe(row: &[u8], fields: &[Field]) -> String {
    let mut reader = RowReader::new(row);
    let mut text = String::new();
    for field in fields {
        let Ok(value) = reader.value(field) else {
            break;
        };
        if !text.is_empty() {
            text.push(',');
        }
        crate::sinks::csv_value(&mut text, value);
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_plugin_sdk::rows::{BatchBuilder, FieldType};

    use super::*;

    fn batch(rows: &[(&str, i64, i64)]) -> RowBatch {
        let schema = vec![
            Field::new("station", FieldType::Str),
            Field::new("window_start", FieldType::Timestamp),
            Field::new("window_end", FieldType::Timestamp),
            Field::new("entries", FieldType::Int64),
        ];
        let mut b = BatchBuilder::new();
        for &(station, end, entries) in rows {
            b.put_str(station);
            b.put_timestamp(end - 14_400_000);
            b.put_timestamp(end);
            b.put_i64(entries);
            b.end_row();
        }
        let (data, ends) = b.into_parts();
        RowBatch {
            schema: Arc::new(schema),
            data,
            ends,
            positions: Vec::new(),
        }
    }

    #[test]
    fn a_different_second_emission_is_a_conflict_an_identical_one_is_not() {
        let mut guard = EmissionGuard::default();
        let end = 1_704_513_600_000;
        assert!(
            guard
                .check(&batch(&[("A", end, 1), ("B", end, 2)]))
                .is_empty()
        );
        assert!(guard.check(&batch(&[("A", end, 1)])).is_empty(), "a replay");
        assert!(
            guard.check(&batch(&[("A", end + 1, 5)])).is_empty(),
            "another window"
        );
        let conflicts = guard.check(&batch(&[("B", end, 3)]));
        assert_eq!(conflicts.len(), 1);
        assert_eq!(
            conflicts[0].window,
            "B,2024-01-06 00:00:00,2024-01-06 04:00:00"
        );
    }

    #[test]
    fn memory_stays_bounded_and_recent_windows_are_kept() {
        let mut guard = EmissionGuard::default();
        for i in 0..(REMEMBERED as i64 + 10) {
            let station = format!("s{}", i % 1000);
            guard.check(&batch(&[(&station, 1_000_000 * (i / 1000 + 1), i)]));
        }
        assert!(guard.seen.len() <= REMEMBERED);
        let last = 1_000_000 * ((REMEMBERED as i64 + 9) / 1000 + 1);
        let conflicts = guard.check(&batch(&[("s9", last, -1)]));
        assert_eq!(conflicts.len(), 1, "the newest windows are still known");
    }
}
