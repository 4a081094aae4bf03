//! `lake` sink: rows as objects in an object store, in Hive-style partitions `field=value/`
//! (values percent-encoded: everything but ASCII letters, digits, `-`, `_`, `.` and `~`), as
//! gzip CSV, Parquet ([`parquet`]) or a Delta Lake table ([`delta`]). Each object is written
//! whole or not at all (object_store `put`). Window results are named after a hash of their
//! rows, so writing the same rows again (a replay after a crash) replaces the object instead
//! of adding one; rows that each come from one source record are named after their source
//! positions, and a replay skips what the lake already holds ([`replay`]). While the store
//! is unavailable each object is retried with backoff (`retry: { max_elapsed: 5m }`, see
//! [`super::retry`]), the sink's status saying `degraded`.

pub mod delta;
pub mod parquet;
mod replay;
mod spec;

use std::collections::BTreeMap;
use std::io::Write;

use futures::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sluice_plugin_sdk::rows::{Field, Value, decode_row};

use self::delta::Table;
use self::delta::log::Add;
use self::parquet::ParquetEncoder;
pub use self::spec::{Compression, LakeFormat, LakeSinkSpec};
use super::retry::{Health, HealthStatus};
use super::{CommitPoint, RowBatch, csv_header, csv_value};
use crate::objects::{self, Location};

/// Characters kept as they are in partition values.
const PARTITION_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Objects written at once.
const CONCURRENCY: usize = 32;

/// The rows of one object: their folder, their values, and (for rows with source
/// positions) the source partition and the first and last offset.
struct Group<'a> {
    dir: &'a str,
    rows: Vec<&'a [Value<'a>]>,
    /// Indices of the rows in the batch (for the name of window results).
    indices: Vec<usize>,
    positions: Option<(i32, i64, i64)>,
}

/// An object to write, and what it brings.
struct Object {
    path: object_store::path::Path,
    body: Vec<u8>,
    /// The source partition and last offset it holds, in its folder.
    mark: Option<(String, i32, i64)>,
    /// Its `add` action, for a Delta table.
    add: Option<Add>,
}

/// Writes rows to a lake.
pub struct LakeSink {
    location: Location,
    format: LakeFormat,
    compression: Compression,
    header: String,
    partition_fields: Vec<usize>,
    /// Parquet and Delta.
    parquet: Option<ParquetEncoder>,
    /// Delta.
    table: Option<Table>,
    health: Health,
    /// The connector, for messages.
    what: String,
    /// What the lake holds of each source partition, for rows with source positions.
    written: Box<replay::Written>,
}

impl LakeSink {
    /// Opens the store (and the Delta table) for rows of `schema`; the spec was checked.
    pub async fn open(
        spec: &LakeSinkSpec,
        schema: &[Field],
        pipeline: &str,
    ) -> anyhow::Result<Self> {
        let mut partition_fields = Vec::new();
        for name in &spec.partition_by {
            let index = schema.iter().position(|f| &f.name == name);
            partition_fields.push(
                index.ok_or_else(|| {
                    anyhow::anyhow!("partition field `{name}` is not in the rows")
                })?,
            );
        }
        let location = objects::open(&spec.url)?;
        let compression = spec.compression();
        let health = Health::new(spec.retry.map(|r| r.max_elapsed.0));
        let (parquet, table) = match spec.format {
            LakeFormat::Csv => (None, None),
            LakeFormat::Parquet => (Some(ParquetEncoder::new(schema, &[], compression)), None),
            LakeFormat::Delta => {
                let table = Table::open(
                    location.clone(),
                    &spec.url,
                    pipeline,
                    schema,
                    &spec.partition_by,
                    &health,
                )
                .await?;
                let encoder = ParquetEncoder::new(schema, &partition_fields, compression);
                (Some(encoder), Some(table))
            }
        };
        let written = Box::<replay::Written>::default();
        if let Some(table) = &table {
            // Which source offsets the table holds: from its files' names, never from a
            // listing (a file a crash left uncommitted is not in the table).
            for key in table.files().await {
                let (dir, name) = key
                    .rsplit_once('/')
                    .map_or(("", key.as_str()), |(d, n)| (d, n));
                if let Some((partition, _, last)) = replay::parse_name(name) {
                    let dir = if dir.is_empty() {
                        String::new()
                    } else {
                        format!("{dir}/")
                    };
                    written.wrote(&dir, partition, last);
                }
            }
        }
        Ok(Self {
            location,
            format: spec.format,
            compression,
            header: csv_header(schema),
            partition_fields,
            parquet,
            table,
            health,
            what: format!("The lake sink at `{}`", spec.url),
            written,
        })
    }

    /// Objects written, retries, the last error and whether the sink is `ok`, `degraded`
    /// (retrying) or `failed`.
    pub fn status(&self) -> HealthStatus {
        self.health.status()
    }

    /// Writes `rows` of `task`, one object per folder (and source partition, for rows with
    /// source positions). For a Delta table the objects are staged for the task's next
    /// commit.
    pub async fn write(&self, rows: &RowBatch, task: Option<i32>) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let batch = rows.batch();
        let values: Vec<Vec<Value<'_>>> = batch
            .rows()
            .map(|row| decode_row(&rows.schema, row))
            .collect::<Result<_, _>>()?;
        let dirs: Vec<String> = values
            .iter()
            .map(|v| self.partition_dir(&rows.schema, v))
            .collect();
        let positioned = rows.positions.len() == rows.len();
        let groups = if positioned {
            if self.table.is_none() {
                let store = self.location.store.as_ref();
                let folder = |dir: &str| self.folder(dir);
                self.written
                    .learn(store, dirs.iter().map(String::as_str), folder)
                    .await?;
            }
            self.group_positioned(rows, &values, &dirs)
        } else {
            group(&values, &dirs)
        };
        let mut objects = Vec::with_capacity(groups.len());
        for group in groups {
            if let Some(object) = self.encode(rows, &group)? {
                objects.push(object);
            }
        }
        let mut bodies = Vec::with_capacity(objects.len());
        let mut brought = Vec::with_capacity(objects.len());
        for object in objects {
            bodies.push((object.path, object.body));
            brought.push((object.mark, object.add));
        }
        let store = self.location.store.as_ref();
        let (health, what) = (&self.health, self.what.as_str());
        let mut puts = futures::stream::iter(bodies)
            .map(|(path, body)| async move { health.put(store, &path, body.into(), what).await })
            .buffer_unordered(CONCURRENCY);
        while let Some(result) = puts.next().await {
            result?;
        }
        for (mark, add) in brought {
            if let Some((dir, partition, last)) = &mark {
                self.written.wrote(dir, *partition, *last);
            }
            if let (Some(table), Some(add)) = (&self.table, add) {
                table.stage(task, add);
            }
        }
        Ok(())
    }

    /// Commits a Delta table's staged files of `at.task` (nothing for CSV and Parquet,
    /// whose objects are visible once written).
    pub async fn commit(&self, at: CommitPoint) -> anyhow::Result<()> {
        match &self.table {
            Some(table) => table.commit(at.task, at.epoch, &self.health).await,
            None => Ok(()),
        }
    }

    /// Groups rows by folder and source partition, without the rows the lake already holds.
    fn group_positioned<'a>(
        &self,
        rows: &RowBatch,
        values: &'a [Vec<Value<'a>>],
        dirs: &'a [String],
    ) -> Vec<Group<'a>> {
        let mut groups: BTreeMap<(&str, i32), Group<'a>> = BTreeMap::new();
        for (i, (dir, &(partition, offset))) in dirs.iter().zip(&rows.positions).enumerate() {
            if self.written.holds(dir, partition, offset) {
                continue;
            }
            let group = groups.entry((dir, partition)).or_insert_with(|| Group {
                dir,
                rows: Vec::new(),
                indices: Vec::new(),
                positions: Some((partition, offset, offset)),
            });
            if let Some((_, first, last)) = &mut group.positions {
                (*first, *last) = ((*first).min(offset), (*last).max(offset));
            }
            group.rows.push(&values[i]);
            group.indices.push(i);
        }
        groups.into_values().collect()
    }

    /// Renders one group as an object, or `None` when a Delta table already holds it.
    fn encode(&self, rows: &RowBatch, group: &Group<'_>) -> anyhow::Result<Option<Object>> {
        let ext = self.ext();
        let (body, stats, hash) = match &self.parquet {
            None => {
                let mut text = self.header.clone();
                for row in &group.rows {
                    csv_row(&mut text, row);
                }
                // CSV objects are named after a hash of their text before compression.
                let hash = fnv1a(text.as_bytes());
                (self.compress(text.into_bytes())?, None, hash)
            }
            Some(encoder) => {
                let encoded = encoder.encode(&group.rows)?;
                // Parquet objects after a hash of their rows (not of the file, which a
                // newer encoder may write differently).
                let batch = rows.batch();
                let hash = group
                    .indices
                    .iter()
                    .fold(FNV_OFFSET, |h, &i| fnv1a_from(h, batch.row(i)));
                (encoded.bytes, Some(encoded.stats), hash)
            }
        };
        let name = match group.positions {
            Some((partition, first, last)) => replay::object_name(partition, first, last, ext),
            None => format!("part-{hash:016x}.{ext}"),
        };
        let key = format!("{}{name}", group.dir);
        let mark = group
            .positions
            .map(|(partition, _, last)| (group.dir.to_owned(), partition, last));
        let add = match &self.table {
            Some(table) if table.holds(&key) => return Ok(None),
            Some(_) => Some(Add {
                partition_values: self.partition_values(group.rows[0], &rows.schema),
                size: body.len(),
                stats: stats.unwrap_or_default(),
                key: key.clone(),
                written_ms: delta::now_ms(),
            }),
            None => None,
        };
        Ok(Some(Object {
            path: self.location.path(&key)?,
            body,
            mark,
            add,
        }))
    }

    /// The store path of folder `dir` (`station=X/`), `None` for the store's root.
    fn folder(&self, dir: &str) -> anyhow::Result<Option<object_store::path::Path>> {
        let segments: Vec<&str> = self
            .location
            .prefix
            .iter()
            .map(String::as_str)
            .chain(dir.split('/'))
            .filter(|s| !s.is_empty())
            .collect();
        if segments.is_empty() {
            return Ok(None);
        }
        Ok(Some(object_store::path::Path::parse(segments.join("/"))?))
    }

    fn ext(&self) -> &'static str {
        match (self.format, self.compression) {
            (LakeFormat::Csv, Compression::Gzip) => "csv.gz",
            (LakeFormat::Csv, _) => "csv",
            (LakeFormat::Parquet | LakeFormat::Delta, _) => "parquet",
        }
    }

    /// `field=value/` for each partition field (empty without `partition_by`).
    fn partition_dir(&self, schema: &[Field], values: &[Value<'_>]) -> String {
        let mut dir = String::new();
        for &i in &self.partition_fields {
            let mut text = String::new();
            csv_value(&mut text, values[i]);
            let text = text.trim_matches('"');
            dir.push_str(&schema[i].name);
            dir.push('=');
            dir.extend(utf8_percent_encode(text, PARTITION_VALUE));
            dir.push('/');
        }
        dir
    }

    /// A Delta `add`'s partition values: text as the protocol writes it (timestamps as
    /// `2024-01-01 08:00:00`, with `.mmm000` when they have milliseconds).
    fn partition_values(
        &self,
        values: &[Value<'_>],
        schema: &[Field],
    ) -> BTreeMap<String, Option<String>> {
        self.partition_fields
            .iter()
            .map(|&i| {
                let text = match values[i] {
                    Value::Null => None,
                    Value::Timestamp(ms) if ms.rem_euclid(1000) != 0 => Some(format!(
                        "{}.{:03}000",
                        sluice_plugin_sdk::time::format_timestamp(ms),
                        ms.rem_euclid(1000)
                    )),
                    Value::Str(s) => Some(s.to_owned()),
                    other => {
                        let mut text = String::new();
                        csv_value(&mut text, other);
                        Some(text)
                    }
                };
                (schema[i].name.clone(), text)
            })
            .collect()
    }

    fn compress(&self, text: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        match self.compression {
            Compression::Gzip => {
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(&text)?;
                Ok(gz.finish()?)
            }
            _ => Ok(text),
        }
    }
}

/// Groups rows (without source positions) by folder.
fn group<'a>(values: &'a [Vec<Value<'a>>], dirs: &'a [String]) -> Vec<Group<'a>> {
    let mut groups: BTreeMap<&str, Group<'a>> = BTreeMap::new();
    for (i, dir) in dirs.iter().enumerate() {
        let group = groups.entry(dir).or_insert_with(|| Group {
            dir,
            rows: Vec::new(),
            indices: Vec::new(),
            positions: None,
        });
        group.rows.push(&values[i]);
        group.indices.push(i);
    }
    groups.into_values().collect()
}

/// Appends one CSV line of `values`.
fn csv_row(out: &mut String, values: &[Value<'_>]) {
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_value(out, *value);
    }
    out.push('\n');
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// 64-bit FNV-1a: stable across runs and platforms, unlike `DefaultHasher`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_from(FNV_OFFSET, bytes)
}

fn fnv1a_from(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
