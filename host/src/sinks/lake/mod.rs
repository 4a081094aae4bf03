//! `lake` sink: rows as gzip CSV objects in an object store, in Hive-style partitions
//! `field=value/` (values percent-encoded: everything but ASCII letters, digits, `-`, `_`,
//! `.` and `~`). Each object is written whole or not at all (object_store `put`). Window
//! results are named after a hash of their rows, so writing the same rows again (a replay
//! after a crash) replaces the object instead of adding one; rows that each come from one
//! source record are named after their source positions, and a replay skips what the lake
//! already holds ([`replay`]). While the store is unavailable each object is
//! retried with backoff (`retry: { max_elapsed: 5m }`, see [`super::retry`]), the sink's
//! status saying `degraded`.

mod replay;

use std::collections::BTreeMap;
use std::io::Write;

use futures::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sluice_plugin_sdk::rows::{Field, RowReader};

use super::retry::{Health, HealthStatus};
use super::{RowBatch, csv_header, csv_line, csv_value};
use crate::objects::{self, Location};
use crate::spec::{Compression, LakeSinkSpec};

/// Characters kept as they are in partition values.
const PARTITION_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Objects written at once.
const CONCURRENCY: usize = 32;

/// Objects to put, and the (folder, source partition, last offset) they bring.
type Encoded = (
    Vec<(object_store::path::Path, Vec<u8>)>,
    Vec<(String, i32, i64)>,
);

/// Writes rows to a lake.
pub struct LakeSink {
    location: Location,
    header: String,
    partition_fields: Vec<usize>,
    compression: Compression,
    health: Health,
    /// The connector, for messages.
    what: String,
    /// What the lake holds of each source partition, for rows with source positions.
    written: Box<replay::Written>,
}

impl LakeSink {
    /// Checks `partition_by` against `schema` and the URL's scheme, without any I/O.
    pub fn check(spec: &LakeSinkSpec, schema: &[Field]) -> Result<(), String> {
        for name in &spec.partition_by {
            if !schema.iter().any(|f| &f.name == name) {
                let names: Vec<&str> = schema.iter().map(|f| f.name.as_str()).collect();
                return Err(format!(
                    "partition field `{name}` is not in the rows reaching this sink ({})",
                    names.join(", ")
                ));
            }
        }
        let known = [
            "file://",
            "s3://",
            "gs://",
            "az://",
            "abfs://",
            "memory://",
            "http://",
            "https://",
        ];
        if !known.iter().any(|p| spec.url.starts_with(p)) {
            return Err(format!(
                "`{}` is not an object store URL; use file://, s3://, gs://, az:// or memory://",
                spec.url
            ));
        }
        Ok(())
    }

    /// Checks `partition_by` against `schema` and opens the store.
    pub fn new(spec: &LakeSinkSpec, schema: &[Field]) -> Result<Self, String> {
        let mut partition_fields = Vec::new();
        for name in &spec.partition_by {
            let index = schema.iter().position(|f| &f.name == name).ok_or_else(|| {
                let names: Vec<&str> = schema.iter().map(|f| f.name.as_str()).collect();
                format!(
                    "partition field `{name}` is not in the rows ({})",
                    names.join(", ")
                )
            })?;
            partition_fields.push(index);
        }
        let location = objects::open(&spec.url).map_err(|e| format!("{e:#}"))?;
        Ok(Self {
            location,
            header: csv_header(schema),
            partition_fields,
            compression: spec.compression,
            health: Health::new(spec.retry.map(|r| r.max_elapsed.0)),
            what: format!("The lake sink at `{}`", spec.url),
            written: Box::default(),
        })
    }

    /// Objects written, retries, the last error and whether the sink is `ok`, `degraded`
    /// (retrying) or `failed`.
    pub fn status(&self) -> HealthStatus {
        self.health.status()
    }

    /// Writes `rows`, one object per folder (and source partition, for rows with source
    /// positions).
    pub async fn write(&self, rows: &RowBatch) -> anyhow::Result<()> {
        let positioned = !rows.is_empty() && rows.positions.len() == rows.len();
        let (objects, marks) = if positioned {
            self.encode_positioned(rows).await?
        } else {
            (self.encode(rows)?, Vec::new())
        };
        let store = self.location.store.as_ref();
        let (health, what) = (&self.health, self.what.as_str());
        let mut puts = futures::stream::iter(objects)
            .map(|(path, body)| async move { health.put(store, &path, body.into(), what).await })
            .buffer_unordered(CONCURRENCY);
        while let Some(result) = puts.next().await {
            result?;
        }
        for (dir, partition, last) in marks {
            self.written.wrote(&dir, partition, last);
        }
        Ok(())
    }

    /// Groups rows by partition and renders each group as one object.
    fn encode(&self, rows: &RowBatch) -> anyhow::Result<Vec<(object_store::path::Path, Vec<u8>)>> {
        let mut groups: BTreeMap<String, String> = BTreeMap::new();
        for row in rows.batch().rows() {
            let dir = self.partition_dir(&rows.schema, row)?;
            let text = groups.entry(dir).or_insert_with(|| self.header.clone());
            csv_line(text, &rows.schema, row)?;
        }
        groups
            .into_iter()
            .map(|(dir, text)| {
                let name = format!("{dir}part-{:016x}.{}", fnv1a(text.as_bytes()), self.ext());
                Ok((self.location.path(&name)?, self.compress(text.as_bytes())?))
            })
            .collect()
    }

    /// Groups rows by folder and source partition, without the rows the lake already
    /// holds, and renders each group as one object named after its offsets; returns the
    /// objects and the (folder, partition, last offset) each one brings.
    async fn encode_positioned(&self, rows: &RowBatch) -> anyhow::Result<Encoded> {
        let batch = rows.batch();
        let dirs: Vec<String> = batch
            .rows()
            .map(|row| self.partition_dir(&rows.schema, row))
            .collect::<anyhow::Result<_>>()?;
        let store = self.location.store.as_ref();
        let folder = |dir: &str| self.folder(dir);
        self.written
            .learn(store, dirs.iter().map(String::as_str), folder)
            .await?;
        let mut groups: BTreeMap<(&str, i32), (i64, i64, String)> = BTreeMap::new();
        for ((row, dir), &(partition, offset)) in batch.rows().zip(&dirs).zip(&rows.positions) {
            if self.written.holds(dir, partition, offset) {
                continue;
            }
            let (first, last, text) = groups
                .entry((dir, partition))
                .or_insert_with(|| (offset, offset, self.header.clone()));
            (*first, *last) = ((*first).min(offset), (*last).max(offset));
            csv_line(text, &rows.schema, row)?;
        }
        let mut objects = Vec::with_capacity(groups.len());
        let mut marks = Vec::with_capacity(groups.len());
        for ((dir, partition), (first, last, text)) in groups {
            let name = replay::object_name(partition, first, last, self.ext());
            let path = self.location.path(&format!("{dir}{name}"))?;
            objects.push((path, self.compress(text.as_bytes())?));
            marks.push((dir.to_owned(), partition, last));
        }
        Ok((objects, marks))
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
        match self.compression {
            Compression::Gzip => "csv.gz",
            Compression::None => "csv",
        }
    }

    fn partition_dir(&self, schema: &[Field], row: &[u8]) -> anyhow::Result<String> {
        let mut dir = String::new();
        if self.partition_fields.is_empty() {
            return Ok(dir);
        }
        let mut reader = RowReader::new(row);
        let mut values = Vec::with_capacity(schema.len());
        for field in schema {
            values.push(reader.value(field)?);
        }
        for &i in &self.partition_fields {
            let mut text = String::new();
            csv_value(&mut text, values[i]);
            let text = text.trim_matches('"');
            dir.push_str(&schema[i].name);
            dir.push('=');
            dir.extend(utf8_percent_encode(text, PARTITION_VALUE));
            dir.push('/');
        }
        Ok(dir)
    }

    fn compress(&self, text: &[u8]) -> anyhow::Result<Vec<u8>> {
        match self.compression {
            Compression::None => Ok(text.to_vec()),
            Compression::Gzip => {
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(text)?;
                Ok(gz.finish()?)
            }
        }
    }
}

/// 64-bit FNV-1a: stable across runs and platforms, unlike `DefaultHasher`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
