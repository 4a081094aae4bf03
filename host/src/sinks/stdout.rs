//! `stdout` sink: rows as CSV lines on standard output, header first.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use sluice_plugin_sdk::rows::Field;

use super::{RowBatch, csv_header, csv_line};

/// Prints rows as CSV.
pub struct StdoutSink {
    header: String,
    header_done: AtomicBool,
}

impl StdoutSink {
    /// For rows of `schema`.
    pub fn new(schema: &[Field]) -> Self {
        Self {
            header: csv_header(schema),
            header_done: AtomicBool::new(false),
        }
    }

    /// Prints the rows.
    pub fn write(&self, rows: &RowBatch) -> anyhow::Result<()> {
        let mut text = String::new();
        if !self.header_done.swap(true, Ordering::Relaxed) {
            text.push_str(&self.header);
        }
        for row in rows.batch().rows() {
            csv_line(&mut text, &rows.schema, row)?;
        }
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(())
    }
}
