//! The end-of-run summary of a pipeline: records in, rows out, dead letters, and the top
//! groups (first text column, summed first integer column — for the turnstile pipeline the
//! busiest stations by entries).

use std::collections::HashMap;
use std::fmt;

use sluice_plugin_sdk::rows::{FieldType, RowReader};

use crate::sinks::RowBatch;

/// Totals of one run.
#[derive(Debug, Default)]
pub struct Summary {
    /// Records read.
    pub records_in: u64,
    /// Rows written to the sinks.
    pub rows_out: u64,
    /// Records dead-lettered.
    pub dead_letters: u64,
    /// Late records dropped.
    pub late_dropped: u64,
    /// Column names used for `top`.
    pub top_columns: Option<(String, String)>,
    /// Sum of the first integer column per value of the first text column.
    pub totals: HashMap<String, i64>,
    /// Final status of each sink.
    pub sinks: Vec<serde_json::Value>,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Size of the last checkpoint, in bytes.
    pub checkpoint_bytes: u64,
    /// Time spent writing checkpoints.
    pub checkpoint_time: std::time::Duration,
}

impl Summary {
    /// Counts `rows` and adds them to the totals.
    pub fn add_rows(&mut self, rows: &RowBatch) {
        self.rows_out += rows.len() as u64;
        let schema = &rows.schema;
        let text = schema
            .iter()
            .position(|f| f.ty == FieldType::Str && !f.nullable);
        let number = schema
            .iter()
            .position(|f| f.ty == FieldType::Int64 && !f.nullable);
        let (Some(text), Some(number)) = (text, number) else {
            return;
        };
        self.top_columns = Some((schema[text].name.clone(), schema[number].name.clone()));
        for row in rows.batch().rows() {
            let mut reader = RowReader::new(row);
            let mut key = None;
            let mut value = None;
            for (i, field) in schema.iter().enumerate().take(text.max(number) + 1) {
                if i == text {
                    key = reader.str().ok();
                } else if i == number {
                    value = reader.i64().ok();
                } else if reader.skip(field).is_err() {
                    break;
                }
            }
            if let (Some(key), Some(value)) = (key, value) {
                *self.totals.entry(key.to_owned()).or_default() += value;
            }
        }
    }

    /// The `n` largest totals.
    pub fn top(&self, n: usize) -> Vec<(&str, i64)> {
        let mut all: Vec<(&str, i64)> = self.totals.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        all.truncate(n);
        all
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  records read:     {}", self.records_in)?;
        writeln!(f, "  rows written:     {}", self.rows_out)?;
        writeln!(f, "  dead letters:     {}", self.dead_letters)?;
        writeln!(f, "  late, dropped:    {}", self.late_dropped)?;
        if self.checkpoints > 0 {
            writeln!(
                f,
                "  checkpoints:      {} ({} bytes each, {:.1} ms on average)",
                self.checkpoints,
                self.checkpoint_bytes,
                self.checkpoint_time.as_secs_f64() * 1e3 / self.checkpoints as f64
            )?;
        }
        for sink in &self.sinks {
            if sink["sink"] == "postgres" {
                writeln!(
                    f,
                    "  warehouse:        {} rows upserted into {} ({} retries{})",
                    sink["rows_written"],
                    sink["table"].as_str().unwrap_or("?"),
                    sink["retries"],
                    sink["last_error"]
                        .as_str()
                        .map(|e| format!(", last error: {e}"))
                        .unwrap_or_default()
                )?;
            }
        }
        for sink in self.sinks.iter().filter(|s| s["sink"] == "lake") {
            if sink["retries"].as_u64().unwrap_or(0) > 0 {
                writeln!(
                    f,
                    "  lake:             {} objects written, {} after {} retries (last error: {})",
                    sink["objects_written"],
                    sink["state"].as_str().unwrap_or("?"),
                    sink["retries"],
                    sink["last_error"].as_str().unwrap_or("?")
                )?;
            }
        }
        if let Some((key, value)) = &self.top_columns {
            writeln!(f, "  top {key} by {value}:")?;
            for (name, total) in self.top(5) {
                writeln!(f, "    {name:<24} {total:>12}")?;
            }
        }
        Ok(())
    }
}
