//! `lake` sink: rows as gzip CSV objects in an object store, in Hive-style partitions
//! `field=value/` (values percent-encoded: everything but ASCII letters, digits, `-`, `_`,
//! `.` and `~`). Each object is written whole or not at all (object_store `put`), and is
//! named after a hash of its rows, so writing the same rows again (a replay after a crash)
//! replaces the object instead of adding one. While the store is unavailable each object is
//! retried with backoff (`retry: { max_elapsed: 5m }`, see [`super::retry`]), the sink's
//! status saying `degraded`.

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

/// Writes rows to a lake.
pub struct LakeSink {
    location: Location,
    header: String,
    partition_fields: Vec<usize>,
    compression: Compression,
    health: Health,
    /// The connector, for messages.
    what: String,
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
        })
    }

    /// Objects written, retries, the last error and whether the sink is `ok`, `degraded`
    /// (retrying) or `failed`.
    pub fn status(&self) -> HealthStatus {
        self.health.status()
    }

    /// Writes `rows`, one object per partition.
    pub async fn write(&self, rows: &RowBatch) -> anyhow::Result<()> {
        let objects = self.encode(rows)?;
        let store = self.location.store.as_ref();
        let (health, what) = (&self.health, self.what.as_str());
        let mut puts = futures::stream::iter(objects)
            .map(|(path, body)| async move { health.put(store, &path, body.into(), what).await })
            .buffer_unordered(CONCURRENCY);
        while let Some(result) = puts.next().await {
            result?;
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
        let ext = match self.compression {
            Compression::Gzip => "csv.gz",
            Compression::None => "csv",
        };
        groups
            .into_iter()
            .map(|(dir, text)| {
                let name = format!("{dir}part-{:016x}.{ext}", fnv1a(text.as_bytes()));
                Ok((self.location.path(&name)?, self.compress(text.as_bytes())?))
            })
            .collect()
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
