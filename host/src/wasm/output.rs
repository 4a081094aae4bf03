//! What a plugin call returns, checked at the boundary before the host uses it: row ends
//! within the data and in order, every row decoding under the instance's output schema
//! (fields, null tags, UTF-8 text, nothing left over) — for a 0.2 plugin, every column's
//! buffers inside its arena (in time per column) and then every value as the host reads it
//! into rows — one origin per row pointing into the input, failures pointing into the input, failure reasons of bounded length, and the whole
//! output (rows and reasons) within the instance's output limit. Output that breaks these is
//! a plugin violation (handled by the step's `on_violation`), never a host panic. Failures
//! naming one record (a message of several lines) are merged into one, so a call has at
//! most one failure per input record and each record becomes at most one dead letter.

use sluice_plugin_sdk::rows::{Field, RowReader};

use super::bindings::{Batch, Output, v0_2};
use super::instance::PluginOutput;
use super::rows::{ColumnRows, Rows};

/// The longest failure reason kept (bytes); longer ones are cut at a character boundary.
pub const MAX_REASON_BYTES: usize = 1024;

/// Checks `out` of a call over `inputs` input records (`None`: a call without input, such
/// as a window's `advance`); returns it in host types, or why it is malformed.
pub fn check(
    out: Output,
    inputs: Option<usize>,
    max_bytes: usize,
    schema: &[Field],
) -> Result<PluginOutput, String> {
    let (data, ends) = (out.rows.data, out.rows.ends);
    let mut previous = 0u32;
    for (i, &end) in ends.iter().enumerate() {
        if end < previous || end as usize > data.len() {
            return Err(format!(
                "returned malformed output: row {i} ends at byte {end}, after {previous}, in {} \
                 bytes of rows",
                data.len()
            ));
        }
        check_row(schema, &data[previous as usize..end as usize])
            .map_err(|e| format!("returned malformed output: row {i} {e}"))?;
        previous = end;
    }
    let failures = out.failures.into_iter().map(|f| (f.index, f.reason));
    let rows = Rows::Packed(Batch { data, ends });
    check_rest(rows, out.origins, failures.collect(), inputs, max_bytes)
}

/// [`check`] for the output of a `sluice:plugin@0.2` call: the columns are checked against
/// their arena (in time per column). With `packed`, the rows are then read into the packed
/// layout, every value checked (offsets, keys, UTF-8); without, they stay columns for the
/// next 0.2 step, which checks each value it reads.
pub fn check_columns(
    out: v0_2::Output,
    inputs: Option<usize>,
    max_bytes: usize,
    schema: &[Field],
    packed: bool,
) -> Result<PluginOutput, String> {
    let malformed =
        |e: sluice_plugin_sdk::DecodeError| format!("returned malformed output: {}", e.message);
    let batch = &out.rows;
    // Zero-width rows cost nothing in the arena: count each row as a byte of output.
    let claimed = batch.arena.len().saturating_add(batch.len as usize);
    if claimed > max_bytes {
        return Err(format!(
            "returned {} rows in {} bytes, over its output limit of {max_bytes} bytes",
            batch.len,
            batch.arena.len()
        ));
    }
    let failures = out.failures.into_iter().map(|f| (f.index, f.reason));
    let rows = ColumnRows::new(out.rows, schema, max_bytes).map_err(malformed)?;
    let mut rows = Rows::Columns(rows);
    if packed {
        rows = Rows::Packed(rows.into_packed().map_err(malformed)?);
    }
    check_rest(rows, out.origins, failures.collect(), inputs, max_bytes)
}

/// The checks of origins, failures and size, common to both contract versions.
fn check_rest(
    rows: Rows,
    origins: Vec<u32>,
    raw_failures: Vec<(u32, String)>,
    inputs: Option<usize>,
    max_bytes: usize,
) -> Result<PluginOutput, String> {
    let inputs_known = inputs.unwrap_or(0);
    if !origins.is_empty() {
        if origins.len() != rows.len() {
            return Err(format!(
                "returned malformed output: {} origins for {} rows",
                origins.len(),
                rows.len()
            ));
        }
        if let Some(bad) = origins.iter().find(|&&o| o as usize >= inputs_known) {
            return Err(format!(
                "returned malformed output: a row's origin is input record {bad}, but the \
                 input had {inputs_known}"
            ));
        }
    }
    let mut failures: Vec<(u32, String)> = Vec::with_capacity(raw_failures.len());
    for (index, reason) in raw_failures {
        if index as usize >= inputs_known {
            return Err(format!(
                "returned malformed output: a failure names input record {index}, but the input \
                 had {inputs_known}"
            ));
        }
        failures.push((index, shorten(reason)));
    }
    let failures = merge(failures);
    let bytes = rows.byte_len() + failures.iter().map(|(_, r)| r.len()).sum::<usize>();
    if bytes > max_bytes {
        return Err(format!(
            "returned {bytes} bytes, over its output limit of {max_bytes} bytes"
        ));
    }
    Ok(PluginOutput {
        rows,
        origins,
        failures,
    })
}

/// Whether `row` decodes under `schema`: each field's null tag, width or length, text as
/// UTF-8, and no bytes after the last field.
fn check_row(schema: &[Field], row: &[u8]) -> Result<(), String> {
    let mut reader = RowReader::new(row);
    for field in schema {
        reader
            .value(field)
            .map_err(|e| format!("does not decode at field `{}`: {e}", field.name))?;
    }
    match reader.remaining() {
        0 => Ok(()),
        n => Err(format!("has {n} bytes after its last field")),
    }
}

/// Failures in input order, those naming one record joined into one (`; `), within
/// [`MAX_REASON_BYTES`].
fn merge(mut failures: Vec<(u32, String)>) -> Vec<(u32, String)> {
    failures.sort_by_key(|(index, _)| *index);
    let mut merged: Vec<(u32, String)> = Vec::with_capacity(failures.len());
    for (index, reason) in failures {
        match merged.last_mut() {
            Some((last, joined)) if *last == index => {
                if joined.len() < MAX_REASON_BYTES {
                    joined.push_str("; ");
                    joined.push_str(&reason);
                    *joined = shorten(std::mem::take(joined));
                }
            }
            _ => merged.push((index, reason)),
        }
    }
    merged
}

/// `reason` cut to [`MAX_REASON_BYTES`] at a character boundary, marked with `…`.
fn shorten(mut reason: String) -> String {
    if reason.len() <= MAX_REASON_BYTES {
        return reason;
    }
    let mut cut = MAX_REASON_BYTES;
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    reason.truncate(cut);
    reason.push('…');
    reason
}

#[cfg(test)]
mod tests {
    use super::super::bindings::Batch;
    use super::*;

    fn output(data: &[u8], ends: &[u32], origins: &[u32], failures: &[(u32, &str)]) -> Output {
        Output {
            rows: Batch {
                data: data.to_vec(),
                ends: ends.to_vec(),
            },
            origins: origins.to_vec(),
            failures: failures
                .iter()
                .map(|&(index, reason)| super::super::bindings::Failure {
                    index,
                    reason: reason.to_owned(),
                })
                .collect(),
        }
    }

    /// Rows of one text field: a little-endian length, then the bytes.
    fn rows(texts: &[&[u8]]) -> (Vec<u8>, Vec<u32>) {
        let mut data = Vec::new();
        let mut ends = Vec::new();
        for text in texts {
            data.extend_from_slice(&(text.len() as u32).to_le_bytes());
            data.extend_from_slice(text);
            ends.push(data.len() as u32);
        }
        (data, ends)
    }

    fn schema() -> Vec<Field> {
        vec![Field::new("s", sluice_plugin_sdk::rows::FieldType::Str)]
    }

    #[test]
    fn well_formed_output_passes_unchanged() {
        let (data, ends) = rows(&[b"ab", b"cdef"]);
        let out = check(
            output(&data, &ends, &[0, 2], &[(1, "bad")]),
            Some(3),
            100,
            &schema(),
        )
        .unwrap();
        let Rows::Packed(packed) = out.rows else {
            panic!("0.1 output stays packed")
        };
        assert_eq!(
            (packed.data.len(), packed.ends, out.origins),
            (14, vec![6, 14], vec![0, 2])
        );
        assert_eq!(out.failures, vec![(1, "bad".to_owned())]);
        let (data, ends) = rows(&[b"ab"]);
        assert!(check(output(&data, &ends, &[], &[]), None, 100, &schema()).is_ok());
    }

    #[test]
    fn malformed_output_is_refused_naming_what() {
        let refused =
            |out: Output, inputs: Option<usize>| check(out, inputs, 1000, &schema()).unwrap_err();
        let (data, _) = rows(&[b"abc"]);
        assert!(
            refused(output(&data, &[7, 9], &[], &[]), Some(1)).contains("row 1 ends at byte 9")
        );
        assert!(refused(output(&data, &[7, 1], &[], &[]), Some(1)).contains("row 1"));
        assert!(
            refused(output(&data, &[7], &[0, 0], &[]), Some(1)).contains("2 origins for 1 rows")
        );
        assert!(
            refused(output(&data, &[7], &[5], &[]), Some(2)).contains("origin is input record 5")
        );
        assert!(
            refused(output(b"", &[], &[], &[(4, "a")]), Some(2)).contains("names input record 4")
        );
        assert!(refused(output(b"", &[], &[], &[(0, "a")]), None).contains("the input had 0"));
    }

    #[test]
    fn rows_that_do_not_decode_under_the_schema_are_refused() {
        let refused = |data: &[u8], ends: &[u32]| {
            check(output(data, ends, &[], &[]), None, 1000, &schema()).unwrap_err()
        };
        let error = refused(b"\x09\0\0\0abc", &[7]);
        assert!(
            error.contains("row 0 does not decode at field `s`"),
            "{error}"
        );
        let (data, ends) = rows(&[b"ok", b"\xff\xfe"]);
        let error = refused(&data, &ends);
        assert!(error.contains("row 1 does not decode"), "{error}");
        let (mut data, mut ends) = rows(&[b"ok"]);
        data.push(0);
        ends[0] += 1;
        let error = refused(&data, &ends);
        assert!(
            error.contains("row 0 has 1 bytes after its last field"),
            "{error}"
        );
    }

    #[test]
    fn failures_of_one_record_are_merged() {
        let failures = [(2, "line 3: bad"), (0, "x"), (2, "line 5: worse")];
        let out = check(output(b"", &[], &[], &failures), Some(3), 1000, &schema()).unwrap();
        assert_eq!(
            out.failures,
            vec![
                (0, "x".to_owned()),
                (2, "line 3: bad; line 5: worse".to_owned())
            ]
        );
        let many: Vec<(u32, &str)> = (0..10_000).map(|_| (0, "again")).collect();
        let out = check(output(b"", &[], &[], &many), Some(1), 100_000, &schema()).unwrap();
        assert_eq!(out.failures.len(), 1);
        assert!(out.failures[0].1.len() <= MAX_REASON_BYTES + 3);
    }

    #[test]
    fn reasons_are_bounded_and_count_toward_the_output_limit() {
        let long = "é".repeat(MAX_REASON_BYTES);
        let out = check(
            output(b"", &[], &[], &[(0, &long)]),
            Some(1),
            10_000,
            &schema(),
        )
        .unwrap();
        let reason = &out.failures[0].1;
        assert!(
            reason.len() <= MAX_REASON_BYTES + '…'.len_utf8(),
            "{}",
            reason.len()
        );
        assert!(reason.ends_with('…'));
        let (data, ends) = rows(&[b"abcd"]);
        let error = check(
            output(&data, &ends, &[], &[(0, "0123456789")]),
            Some(1),
            10,
            &schema(),
        )
        .unwrap_err();
        assert!(
            error.contains("18 bytes, over its output limit of 10"),
            "{error}"
        );
    }

    /// A 0.2 output of `values` in one str column, with `origins`.
    fn columns(values: &[&[u8]], origins: &[u32]) -> v0_2::Output {
        let mut b = sluice_plugin_sdk::ColumnsBuilder::new(&schema());
        for v in values {
            b.push_bytes(v);
            b.end_row();
        }
        let (mut arena, mut columns) = (Vec::new(), Vec::new());
        b.finish(&mut arena, &mut columns);
        v0_2::Output {
            rows: v0_2::Batch {
                len: values.len() as u32,
                arena,
                columns: columns.iter().map(super::super::rows::wit_column).collect(),
            },
            origins: origins.to_vec(),
            failures: Vec::new(),
        }
    }

    #[test]
    fn column_output_is_checked_per_column_and_per_value_when_packed() {
        let ok = check_columns(
            columns(&[b"ab", b"c"], &[0, 1]),
            Some(2),
            100,
            &schema(),
            false,
        );
        assert!(matches!(ok.unwrap().rows, Rows::Columns(_)));
        let packed = check_columns(columns(&[b"ab", b"c"], &[]), None, 100, &schema(), true);
        assert!(matches!(packed.unwrap().rows, Rows::Packed(ref b) if b.ends == [6, 11]));
        // Text that is not UTF-8 passes the per-column check, not the packing.
        let bad = || columns(&[b"ab", b"\xff"], &[]);
        assert!(check_columns(bad(), None, 100, &schema(), false).is_ok());
        let e = check_columns(bad(), None, 100, &schema(), true).unwrap_err();
        assert_eq!(e, "returned malformed output: row 1, field `s`: not UTF-8");
        // More rows than the arena holds offsets for.
        let mut long = columns(&[b"ab"], &[]);
        long.rows.len = 50;
        let e = check_columns(long, None, 1000, &schema(), false).unwrap_err();
        assert!(e.contains("run past the arena"), "{e}");
        // Zero-width rows still count against the output limit.
        let mut empty = columns(&[], &[]);
        empty.rows.len = u32::MAX;
        empty.rows.columns.clear();
        let e = check_columns(empty, None, 1000, &[], false).unwrap_err();
        assert!(e.contains("4294967295 rows in "), "{e}");
        let e = check_columns(columns(&[b"a"], &[0, 1]), Some(2), 100, &schema(), false);
        assert_eq!(
            e.unwrap_err(),
            "returned malformed output: 2 origins for 1 rows"
        );
    }

    #[test]
    fn column_output_naming_one_value_on_every_row_stays_within_the_output_limit() {
        // 4,097 rows naming one 64 KiB entry: a 66 KB arena, 268 MB of rows once read.
        let mut b = sluice_plugin_sdk::ColumnsBuilder::new(&schema()).dictionary("s");
        for _ in 0..4_097 {
            b.push_bytes(&[b'x'; 64 << 10]);
            b.end_row();
        }
        let (mut arena, mut columns) = (Vec::new(), Vec::new());
        b.finish(&mut arena, &mut columns);
        let output = || v0_2::Output {
            rows: v0_2::Batch {
                len: 4_097,
                arena: arena.clone(),
                columns: columns.iter().map(super::super::rows::wit_column).collect(),
            },
            origins: Vec::new(),
            failures: Vec::new(),
        };
        let max = 1 << 20;
        let e = check_columns(output(), None, max, &schema(), true).unwrap_err();
        assert!(e.contains("more than 1048576 bytes once read"), "{e}");
        // Kept as columns it passes, and reads back only within the limit.
        let kept = check_columns(output(), None, max, &schema(), false).unwrap();
        let Rows::Columns(rows) = kept.rows else {
            panic!("kept as columns")
        };
        let (selected, bad) = rows.select(&(0..4_097).collect::<Vec<u32>>());
        assert_eq!(selected.len() + bad.len(), 4_097);
        assert!(selected.byte_len() <= 2 * max, "{}", selected.byte_len());
        assert!(bad[0].1.contains("once read"), "{}", bad[0].1);
        assert!(Rows::Columns(rows).into_packed().is_err());
    }
}
