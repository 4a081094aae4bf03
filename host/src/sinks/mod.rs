//! Sinks: where rows end. One module per sink kind, named after its YAML key; the [`Sink`]
//! enum is the registry. A sink's `write` returns only once the rows are durably written,
//! which is what lets the runtime commit source offsets behind it.

pub mod kafka;
pub mod lake;
pub mod live;
pub mod postgres;
pub mod retry;
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
    /// The source partition and offset of each row, where every row comes from one source
    /// record (pipelines without a window); empty otherwise (window results).
    pub positions: Vec<(i32, i64)>,
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

/// A row a sink rejected for good (a constraint or a value the target refuses): it becomes
/// a dead letter, and the other rows of the batch are written.
#[derive(Clone, Debug)]
pub struct RejectedRow {
    /// `sinks[1] postgres`
    pub stage: String,
    /// The target's error.
    pub reason: String,
    /// The row as one CSV line (no header).
    pub record: String,
}

/// What sinks may need besides their own spec.
pub struct SinkContext<'a> {
    /// Pipeline name.
    pub pipeline: &'a str,
    /// The live hub of the host.
    pub live: &'a live::LiveHub,
    /// The source's brokers (already resolved), the default of a Kafka sink.
    pub brokers: Option<&'a str>,
}

/// A configured sink.
pub enum Sink {
    /// `lake:`
    Lake(lake::LakeSink),
    /// `stdout:`
    Stdout(stdout::StdoutSink),
    /// `live:`
    Live(live::LiveSink),
    /// `postgres:`
    Postgres(Box<postgres::PostgresSink>),
    /// `kafka:`
    Kafka(Box<kafka::KafkaSink>),
}

impl Sink {
    /// Checks the sink's fields against `schema` without any I/O (`sluice validate`).
    pub fn check(spec: &SinkSpec, schema: &[Field], pipeline: &str) -> Result<(), String> {
        match spec {
            SinkSpec::Lake(lake) => lake::LakeSink::check(lake, schema),
            SinkSpec::Postgres(pg) => {
                postgres::PostgresSink::check(&postgres_settings(pg, pipeline), schema)
            }
            SinkSpec::Kafka(k) => kafka::KafkaSink::check(&kafka_settings(k, "", pipeline), schema),
            SinkSpec::Stdout(_) | SinkSpec::Live(_) => Ok(()),
        }
    }

    /// Builds (and connects) the sink for rows of `schema`. `Ok(None)`: the sink is disabled
    /// by its spec (a `postgres` sink with an empty URL).
    pub async fn build(
        spec: &SinkSpec,
        schema: &[Field],
        ctx: &SinkContext<'_>,
    ) -> anyhow::Result<Option<Self>> {
        Self::check(spec, schema, ctx.pipeline).map_err(anyhow::Error::msg)?;
        Ok(Some(match spec {
            SinkSpec::Lake(lake) => {
                Sink::Lake(lake::LakeSink::new(lake, schema).map_err(anyhow::Error::msg)?)
            }
            SinkSpec::Stdout(_) => Sink::Stdout(stdout::StdoutSink::new(schema)),
            SinkSpec::Live(_) => Sink::Live(live::LiveSink::new(ctx.pipeline, ctx.live)),
            SinkSpec::Postgres(pg) if pg.url.trim().is_empty() => {
                tracing::info!(pipeline = ctx.pipeline, table = %pg.table,
                    "The postgres sink is skipped: its url is empty (set WAREHOUSE_URL to enable it).");
                return Ok(None);
            }
            SinkSpec::Postgres(pg) => {
                let settings = postgres_settings(pg, ctx.pipeline);
                Sink::Postgres(Box::new(
                    postgres::PostgresSink::connect(settings, schema).await?,
                ))
            }
            SinkSpec::Kafka(k) => {
                let brokers = match (&k.brokers, ctx.brokers) {
                    (Some(b), _) => b.clone(),
                    (None, Some(b)) => b.to_owned(),
                    (None, None) => {
                        anyhow::bail!("a kafka sink needs `brokers:` when the source is not Kafka")
                    }
                };
                let settings = kafka_settings(k, &brokers, ctx.pipeline);
                Sink::Kafka(Box::new(kafka::KafkaSink::connect(settings, schema).await?))
            }
        }))
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Sink::Lake(_) => "lake",
            Sink::Stdout(_) => "stdout",
            Sink::Live(_) => "live",
            Sink::Postgres(_) => "postgres",
            Sink::Kafka(_) => "kafka",
        }
    }

    /// The sink's status as JSON (`{"sink": kind, ...}`): rows written, retries, last error
    /// where the sink tracks them.
    pub fn status(&self) -> serde_json::Value {
        let mut status = match self {
            Sink::Postgres(sink) => serde_json::to_value(sink.status()).unwrap_or_default(),
            Sink::Lake(sink) => serde_json::to_value(sink.status()).unwrap_or_default(),
            Sink::Kafka(sink) => serde_json::to_value(sink.status()).unwrap_or_default(),
            _ => serde_json::json!({}),
        };
        if let serde_json::Value::Object(map) = &mut status {
            map.insert("sink".into(), self.name().into());
        }
        status
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
            Sink::Postgres(sink) => sink.write(rows).await,
            Sink::Kafka(sink) => sink.write(rows).await,
        }
    }

    /// Writes `rows` durably, except rows the sink rejects for good, which are returned
    /// (only the postgres sink rejects single rows; the others write all or fail). `index`
    /// is the sink's place in `sinks:`, for the dead letters' stage.
    pub async fn write_or_reject(
        &self,
        rows: &RowBatch,
        index: usize,
    ) -> anyhow::Result<Vec<RejectedRow>> {
        let Sink::Postgres(sink) = self else {
            return self.write(rows).await.map(|()| Vec::new());
        };
        let mut rejected = Vec::new();
        for (row, reason) in sink.write_or_reject(rows).await? {
            let mut record = String::new();
            csv_line(&mut record, &rows.schema, rows.batch().row(row))?;
            record.pop();
            rejected.push(RejectedRow {
                stage: format!("sinks[{index}] {}", self.name()),
                reason,
                record,
            });
        }
        Ok(rejected)
    }

    /// Writes early results (only sinks that [`Sink::wants_early`]).
    pub async fn write_early(&self, rows: &RowBatch) -> anyhow::Result<()> {
        match self {
            Sink::Live(sink) => sink.write(rows, false),
            _ => Ok(()),
        }
    }
}

fn postgres_settings(
    spec: &crate::spec::PostgresSinkSpec,
    pipeline: &str,
) -> postgres::PostgresSettings {
    postgres::PostgresSettings {
        url: spec.url.clone(),
        table: spec.table.clone(),
        key: spec.key.clone(),
        pipeline: pipeline.to_owned(),
    }
}

fn kafka_settings(
    spec: &crate::spec::KafkaSinkSpec,
    brokers: &str,
    pipeline: &str,
) -> kafka::KafkaSinkSettings {
    kafka::KafkaSinkSettings {
        brokers: brokers.to_owned(),
        topic: spec.topic.clone(),
        format: match spec.format {
            crate::spec::KafkaFormatSpec::Json => kafka::KafkaFormat::Json,
            crate::spec::KafkaFormatSpec::Csv => kafka::KafkaFormat::Csv,
        },
        key: spec.key.clone(),
        pipeline: pipeline.to_owned(),
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
