//! Sinks: where rows end. One module per sink kind, named after its YAML key; the [`Sink`]
//! enum is the registry. A sink's `write` returns only once the rows are durably written,
//! which is what lets the runtime commit source offsets behind it.

pub mod kafka;
pub mod lake;
pub mod live;
pub mod postgres;
pub mod stdout;

use std::sync::Arc;

use sluice_plugin_sdk::rows::{Batch, Field};

use crate::spec::SinkSpec;

/// Rows with their schema, shared by every sink.
#[derive(Debug)]
pub struct RowBatch {
    /// The schema of every row.
    pub schema: Arc<Vec<Field>>,
    /// Packed rows.
    pub data: Vec<u8>,
    /// End offset of each row.
    pub ends: Vec<u32>,
}

impl RowBatch {
    /// Borrowed view for decoding.
    pub fn batch(&self) -> Batch<'_> {
        Batch::new(&self.data, &self.ends)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when it holds no row.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// What sinks may need besides their own spec.
pub struct SinkContext<'a> {
    /// Pipeline name.
    pub pipeline: &'a str,
    /// The live hub of the host.
    pub live: &'a live::LiveHub,
}

/// A configured sink.
pub enum Sink {
    /// `lake:`
    Lake(lake::LakeSink),
    /// `stdout:`
    Stdout(stdout::StdoutSink),
    /// `live:`
    Live(live::LiveSink),
}

impl Sink {
    /// Builds the sink for rows of `schema`; errors name the problem in spec terms.
    pub fn build(spec: &SinkSpec, schema: &[Field], ctx: &SinkContext<'_>) -> Result<Self, String> {
        Ok(match spec {
            SinkSpec::Lake(lake) => Sink::Lake(lake::LakeSink::new(lake, schema)?),
            SinkSpec::Stdout(_) => Sink::Stdout(stdout::StdoutSink::new(schema)),
            SinkSpec::Live(_) => Sink::Live(live::LiveSink::new(ctx.pipeline, ctx.live)),
        })
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Sink::Lake(_) => "lake",
            Sink::Stdout(_) => "stdout",
            Sink::Live(_) => "live",
        }
    }

    /// True for sinks that also take early (not yet final) results.
    pub fn wants_early(&self) -> bool {
        matches!(self, Sink::Live(_))
    }

    /// Writes `rows` durably.
    pub async fn write(&self, rows: &RowBatch) -> anyhow::Result<()> {
        match self {
            Sink::Lake(sink) => sink.write(rows).await,
            Sink::Stdout(sink) => sink.write(rows),
            Sink::Live(sink) => sink.write(rows, true),
        }
    }

    /// Writes early results (only sinks that [`Sink::wants_early`]).
    pub async fn write_early(&self, rows: &RowBatch) -> anyhow::Result<()> {
        match self {
            Sink::Live(sink) => sink.write(rows, false),
            _ => Ok(()),
        }
    }
}

/// CSV text of one value: RFC 4180 quoting, timestamps as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn csv_value(out: &mut String, value: sluice_plugin_sdk::rows::Value<'_>) {
    use sluice_plugin_sdk::rows::Value;
    use std::fmt::Write;
    match value {
        Value::Null => {}
        Value::Str(s) => csv_text(out, s),
        Value::Bytes(b) => csv_text(out, &String::from_utf8_lossy(b)),
        Value::Int64(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Float64(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Boolean(v) => out.push_str(if v { "true" } else { "false" }),
        Value::Timestamp(ms) => out.push_str(&sluice_plugin_sdk::time::format_timestamp(ms)),
    }
}

fn csv_text(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Appends `row` as one CSV line.
pub fn csv_line(out: &mut String, schema: &[Field], row: &[u8]) -> anyhow::Result<()> {
    let values = sluice_plugin_sdk::rows::decode_row(schema, row)?;
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_value(out, value);
    }
    out.push('\n');
    Ok(())
}

/// The CSV header line of `schema`.
pub fn csv_header(schema: &[Field]) -> String {
    let mut line = String::new();
    for (i, field) in schema.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        csv_text(&mut line, &field.name);
    }
    line.push('\n');
    line
}
