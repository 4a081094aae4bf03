//! Sinks: where rows end. One module per sink kind, named after its YAML key, holding its
//! spec struct, its checks, its builder and its status; [`registry`] lists them, and adding a
//! kind is its module plus one line there. A sink's write returns only once the rows are
//! durably written (or staged for the next checkpoint's commit, see [`SinkWriter::commit`]),
//! which is what lets the runtime commit source offsets behind it.

mod csv;
pub mod kafka;
pub mod lake;
pub mod live;
pub mod postgres;
pub mod registry;
pub mod retry;
pub mod stdout;

use std::sync::Arc;

use futures::future::BoxFuture;
use sluice_plugin_sdk::rows::{Batch, Field};

pub use csv::{csv_header, csv_line, csv_value};
pub use registry::SinkSpec;

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
    pub live: &'a crate::live::LiveHub,
    /// The source's brokers (already resolved), the default of a Kafka sink.
    pub brokers: Option<&'a str>,
}

/// A future of a sink call.
pub type SinkFuture<'a, T> = BoxFuture<'a, anyhow::Result<T>>;

/// A place a sink's spec reaches, for the host's policy on specs from the API.
pub enum Endpoint<'a> {
    /// An object store URL (`file://`, `s3://`, ...), in `field`.
    ObjectStore { field: &'static str, url: &'a str },
    /// A PostgreSQL URL, in `field`.
    Postgres { field: &'static str, url: &'a str },
    /// Kafka bootstrap servers, in `field`.
    Brokers {
        field: &'static str,
        brokers: &'a str,
    },
}

/// What a sink kind's spec provides. Implemented by each kind's spec struct.
pub trait SinkConfig: Send + Sync {
    /// Checks the sink's fields against the rows' `schema` without any I/O (`sluice
    /// validate`, plans, API specs).
    fn check(&self, schema: &[Field], pipeline: &str) -> Result<(), String>;

    /// Builds (and connects) the sink for rows of `schema`. `Ok(None)`: the spec disables
    /// it (a `postgres` sink with an empty URL).
    fn build<'a>(
        &'a self,
        schema: &'a [Field],
        ctx: &'a SinkContext<'a>,
    ) -> SinkFuture<'a, Option<Box<dyn SinkWriter>>>;

    /// The places the sink reaches (checked against the host's policy).
    fn endpoints(&self) -> Vec<Endpoint<'_>> {
        Vec::new()
    }

    /// True when the spec turns the sink off (shown as `disabled` in its status).
    fn disabled(&self) -> bool {
        false
    }

    /// The object store URL results land in, where the sink is a lake: named in the report of
    /// a `--once` run, and the default home of dead letters.
    fn lake_url(&self) -> Option<&str> {
        None
    }

    /// How long writes retry while the store is unavailable (the dead letters' default).
    fn retry(&self) -> Option<crate::spec::RetrySpec> {
        None
    }
}

/// A checkpoint the sinks commit before it is saved.
#[derive(Clone, Copy, Debug)]
pub struct CommitPoint {
    /// The task (source partition) whose checkpoint it is; `None` for a pipeline-wide one.
    pub task: Option<i32>,
    /// The checkpoint's epoch: increasing over the life of the task's checkpoints.
    pub epoch: u64,
}

/// A running sink. Implemented by each kind's sink.
pub trait SinkWriter: Send + Sync {
    /// Writes final `rows` of `task` durably, except rows the sink rejects for good, which
    /// are returned with the reason (only the postgres sink rejects single rows; the others
    /// write all or fail).
    fn write<'a>(
        &'a self,
        rows: &'a RowBatch,
        task: Option<i32>,
    ) -> SinkFuture<'a, Vec<(usize, String)>>;

    /// True for sinks that also take early (not yet final) results.
    fn wants_early(&self) -> bool {
        false
    }

    /// Writes early results (only sinks that [`SinkWriter::wants_early`]).
    fn write_early<'a>(&'a self, _rows: &'a RowBatch) -> SinkFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    /// Makes what was written for `at.task` since its last checkpoint visible as one unit,
    /// before the checkpoint is saved (the Delta table's transaction). Writing again what a
    /// commit already holds (a replay after a crash) must add nothing.
    fn commit<'a>(&'a self, _at: CommitPoint) -> SinkFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    /// The sink's status as a JSON object: rows written, retries, last error, where the sink
    /// tracks them.
    fn status(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}

/// A configured sink of a pipeline: its kind and its writer.
pub struct Sink {
    kind: &'static str,
    writer: Box<dyn SinkWriter>,
}

impl Sink {
    /// Checks the sink's fields against `schema` without any I/O (`sluice validate`).
    pub fn check(spec: &SinkSpec, schema: &[Field], pipeline: &str) -> Result<(), String> {
        spec.config().check(schema, pipeline)
    }

    /// Builds (and connects) the sink for rows of `schema`. `Ok(None)`: the sink is disabled
    /// by its spec.
    pub async fn build(
        spec: &SinkSpec,
        schema: &[Field],
        ctx: &SinkContext<'_>,
    ) -> anyhow::Result<Option<Self>> {
        let config = spec.config();
        config
            .check(schema, ctx.pipeline)
            .map_err(anyhow::Error::msg)?;
        let writer = config.build(schema, ctx).await?;
        Ok(writer.map(|writer| Sink {
            kind: spec.key(),
            writer,
        }))
    }

    /// The sink's kind (its YAML key), for logs.
    pub fn name(&self) -> &'static str {
        self.kind
    }

    /// The sink's status as JSON (`{"sink": kind, ...}`).
    pub fn status(&self) -> serde_json::Value {
        let mut status = self.writer.status();
        if let serde_json::Value::Object(map) = &mut status {
            map.insert("sink".into(), self.kind.into());
        }
        status
    }

    /// True for sinks that also take early (not yet final) results.
    pub fn wants_early(&self) -> bool {
        self.writer.wants_early()
    }

    /// Writes `rows` of `task` durably, except rows the sink rejects for good, which are
    /// returned as dead letters. `index` is the sink's place in `sinks:`, for their stage.
    pub async fn write_or_reject(
        &self,
        rows: &RowBatch,
        index: usize,
        task: Option<i32>,
    ) -> anyhow::Result<Vec<RejectedRow>> {
        let mut rejected = Vec::new();
        for (row, reason) in self.writer.write(rows, task).await? {
            let mut record = String::new();
            csv_line(&mut record, &rows.schema, rows.batch().row(row))?;
            record.pop();
            rejected.push(RejectedRow {
                stage: format!("sinks[{index}] {}", self.kind),
                reason,
                record,
            });
        }
        Ok(rejected)
    }

    /// Writes early results (only sinks that [`Sink::wants_early`]).
    pub async fn write_early(&self, rows: &RowBatch) -> anyhow::Result<()> {
        self.writer.write_early(rows).await
    }

    /// Commits what was written for `at.task` since its last checkpoint.
    pub async fn commit(&self, at: CommitPoint) -> anyhow::Result<()> {
        self.writer.commit(at).await
    }
}
