//! `stdout` sink: rows as CSV lines on standard output, header first.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;
use sluice_plugin_sdk::rows::Field;

use super::{RowBatch, SinkConfig, SinkContext, SinkFuture, SinkWriter, csv_header, csv_line};

/// `- stdout: {}`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkSpec {}

impl SinkConfig for StdoutSinkSpec {
    fn check(&self, _schema: &[Field], _pipeline: &str) -> Result<(), String> {
        Ok(())
    }

    fn build<'a>(
        &'a self,
        schema: &'a [Field],
        _ctx: &'a SinkContext<'a>,
    ) -> SinkFuture<'a, Option<Box<dyn SinkWriter>>> {
        Box::pin(async move {
            Ok(Some(
                Box::new(StdoutSink::new(schema)) as Box<dyn SinkWriter>
            ))
        })
    }
}

impl SinkWriter for StdoutSink {
    fn write<'a>(
        &'a self,
        rows: &'a RowBatch,
        _task: Option<i32>,
    ) -> SinkFuture<'a, Vec<(usize, String)>> {
        Box::pin(async move { self.print(rows).map(|()| Vec::new()) })
    }
}

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
    pub fn print(&self, rows: &RowBatch) -> anyhow::Result<()> {
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
