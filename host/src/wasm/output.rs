//! What a plugin call returns, checked at the boundary before the host uses it: row ends
//! within the data and in order, one origin per row pointing into the input, failures pointing
//! into the input (several may name one record: a message of several lines), failure reasons
//! of bounded length, and the whole output (rows and reasons) within the instance's output
//! limit. Output that breaks
//! these is a plugin violation (handled by the step's `on_violation`), never a host panic.

use super::bindings::Output;
use super::instance::PluginOutput;

/// The longest failure reason kept (bytes); longer ones are cut at a character boundary.
pub const MAX_REASON_BYTES: usize = 1024;

/// Checks `out` of a call over `inputs` input records (`None`: a call without input, such
/// as a window's `advance`); returns it in host types, or why it is malformed.
pub fn check(out: Output, inputs: Option<usize>, max_bytes: usize) -> Result<PluginOutput, String> {
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
        previous = end;
    }
    let inputs_known = inputs.unwrap_or(0);
    if !out.origins.is_empty() {
        if out.origins.len() != ends.len() {
            return Err(format!(
                "returned malformed output: {} origins for {} rows",
                out.origins.len(),
                ends.len()
            ));
        }
        if let Some(bad) = out.origins.iter().find(|&&o| o as usize >= inputs_known) {
            return Err(format!(
                "returned malformed output: a row's origin is input record {bad}, but the \
                 input had {inputs_known}"
            ));
        }
    }
    let mut bytes = data.len();
    let mut failures = Vec::with_capacity(out.failures.len());
    for failure in out.failures {
        if failure.index as usize >= inputs_known {
            return Err(format!(
                "returned malformed output: a failure names input record {}, but the input had \
                 {inputs_known}",
                failure.index
            ));
        }
        let reason = shorten(failure.reason);
        bytes += reason.len();
        failures.push((failure.index, reason));
    }
    if bytes > max_bytes {
        return Err(format!(
            "returned {bytes} bytes, over its output limit of {max_bytes} bytes"
        ));
    }
    Ok(PluginOutput {
        data,
        ends,
        origins: out.origins,
        failures,
    })
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

    #[test]
    fn well_formed_output_passes_unchanged() {
        let out = check(
            output(b"abcdef", &[2, 6], &[0, 2], &[(1, "bad")]),
            Some(3),
            100,
        )
        .unwrap();
        assert_eq!(
            (out.data.len(), out.ends, out.origins),
            (6, vec![2, 6], vec![0, 2])
        );
        assert_eq!(out.failures, vec![(1, "bad".to_owned())]);
        assert!(check(output(b"ab", &[2], &[], &[]), None, 100).is_ok());
    }

    #[test]
    fn malformed_output_is_refused_naming_what() {
        let refused = |out: Output, inputs: Option<usize>| check(out, inputs, 1000).unwrap_err();
        assert!(
            refused(output(b"abc", &[2, 9], &[], &[]), Some(1)).contains("row 1 ends at byte 9")
        );
        assert!(refused(output(b"abc", &[2, 1], &[], &[]), Some(1)).contains("row 1"));
        assert!(
            refused(output(b"abc", &[3], &[0, 0], &[]), Some(1)).contains("2 origins for 1 rows")
        );
        assert!(
            refused(output(b"abc", &[3], &[5], &[]), Some(2)).contains("origin is input record 5")
        );
        assert!(
            refused(output(b"", &[], &[], &[(4, "a")]), Some(2)).contains("names input record 4")
        );
        assert!(refused(output(b"", &[], &[], &[(0, "a")]), None).contains("the input had 0"));
    }

    #[test]
    fn reasons_are_bounded_and_count_toward_the_output_limit() {
        let long = "é".repeat(MAX_REASON_BYTES);
        let out = check(output(b"", &[], &[], &[(0, &long)]), Some(1), 10_000).unwrap();
        let reason = &out.failures[0].1;
        assert!(
            reason.len() <= MAX_REASON_BYTES + '…'.len_utf8(),
            "{}",
            reason.len()
        );
        assert!(reason.ends_with('…'));
        let error = check(
            output(b"abcd", &[4], &[], &[(0, "0123456789")]),
            Some(1),
            10,
        )
        .unwrap_err();
        assert!(
            error.contains("14 bytes, over its output limit of 10"),
            "{error}"
        );
    }
}
