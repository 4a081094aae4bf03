//! The golden output of a fixture: one JSON line per thing the engine produced, in order,
//! fields in schema order (`{"row": {...}}`, `{"early": {...}}`, `{"dead_letter": {...}}`,
//! and `{"late_dropped": n}` last when rows came too late), and a line diff against
//! `expected.jsonl` that a person can read.

use sluice_plugin_sdk::rows::{Field, Value, decode_row};

use crate::runtime::{ChainOutput, DeadLetter};
use crate::sinks::RowBatch;

/// Lines of output being gathered.
#[derive(Default)]
pub struct Golden {
    /// The lines so far.
    pub lines: Vec<String>,
    late: u64,
}

impl Golden {
    /// Adds what one batch produced: its rows, early rows, then dead letters.
    pub fn add(&mut self, out: &ChainOutput) -> anyhow::Result<()> {
        if let Some(rows) = &out.rows {
            self.rows("row", rows)?;
        }
        if let Some(early) = &out.early {
            self.rows("early", early)?;
        }
        for letter in &out.dead {
            self.lines.push(dead_letter(letter));
        }
        self.late += out.late_dropped;
        Ok(())
    }

    fn rows(&mut self, tag: &str, rows: &RowBatch) -> anyhow::Result<()> {
        for row in rows.batch().rows() {
            let values = decode_row(&rows.schema, row)?;
            self.lines
                .push(format!("{{\"{tag}\": {}}}", object(&rows.schema, &values)));
        }
        Ok(())
    }

    /// The output, one line each, with the late count at the end.
    pub fn finish(mut self) -> Vec<String> {
        if self.late > 0 {
            self.lines
                .push(format!("{{\"late_dropped\": {}}}", self.late));
        }
        self.lines
    }
}

/// A row as a JSON object with its fields in schema order; timestamps as
/// `YYYY-MM-DD HH:MM:SS` UTC, bytes as (lossy) text.
fn object(schema: &[Field], values: &[Value<'_>]) -> String {
    let parts: Vec<String> = schema
        .iter()
        .zip(values)
        .map(|(field, value)| {
            let json = match value {
                Value::Null => serde_json::Value::Null,
                Value::Str(s) => serde_json::Value::from(*s),
                Value::Bytes(b) => serde_json::Value::from(String::from_utf8_lossy(b)),
                Value::Int64(v) => serde_json::Value::from(*v),
                Value::Float64(v) => serde_json::Value::from(*v),
                Value::Boolean(v) => serde_json::Value::from(*v),
                Value::Timestamp(ms) => {
                    serde_json::Value::from(sluice_plugin_sdk::time::format_timestamp(*ms))
                }
            };
            format!("{}: {json}", serde_json::Value::from(field.name.as_str()))
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// A dead letter: the input line it came from (1-based, as editors count), and why.
fn dead_letter(letter: &DeadLetter) -> String {
    let line = match letter.offset {
        o if o >= 0 => serde_json::Value::from(o + 1),
        _ => serde_json::Value::Null,
    };
    format!(
        "{{\"dead_letter\": {{\"line\": {line}, \"reason\": {}}}}}",
        serde_json::Value::from(letter.reason.as_str())
    )
}

/// A readable diff of `expected` against `actual` (`-` expected only, `+` actual only), or
/// `None` when they are equal. Lines are matched by their longest common subsequence.
pub fn diff(expected: &[String], actual: &[String]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let (n, m) = (expected.len(), actual.len());
    // lcs[i][j]: the common subsequence length of expected[i..] and actual[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == actual[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            out.push_str(&format!("  {}\n", expected[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", actual[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", expected[i]));
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn the_diff_marks_what_changed_and_keeps_the_rest() {
        assert_eq!(diff(&lines("a\nb"), &lines("a\nb")), None);
        let d = diff(&lines("a\nb\nc"), &lines("a\nB\nc\nd")).unwrap();
        assert_eq!(d, "  a\n+ B\n- b\n  c\n+ d\n");
    }

    #[test]
    fn rows_keep_schema_order_and_readable_values() {
        use sluice_plugin_sdk::rows::FieldType;
        let schema = [
            Field::new("z", FieldType::Str),
            Field::new("a", FieldType::Timestamp),
            Field::nullable("n", FieldType::Int64),
        ];
        let values = [Value::Str("x\"y"), Value::Timestamp(0), Value::Null];
        assert_eq!(
            object(&schema, &values),
            r#"{"z": "x\"y", "a": "1970-01-01 00:00:00", "n": null}"#
        );
    }
}
