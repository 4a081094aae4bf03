//! The Delta Lake transaction log as sluice reads and writes it (protocol reader 1, writer
//! 2): commits are `_delta_log/<version:020>.json` files of one JSON action per line,
//! created with put-if-absent, so that of two writers racing for a version one wins and
//! the other reads it and tries the next. Read: `protocol`, `metaData`, `add`, `remove` and
//! `txn`; written: `commitInfo`, `protocol` and `metaData` (version 0), `txn` and `add`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value as Json, json};
use sluice_plugin_sdk::rows::{Field, FieldType};

/// The writer protocol version sluice implements (no table features, no invariants).
const WRITER_VERSION: u64 = 2;
const READER_VERSION: u64 = 1;

/// The log's folder under the table root.
pub const LOG_DIR: &str = "_delta_log";

/// The object name of commit `version`.
pub fn commit_name(version: u64) -> String {
    format!("{LOG_DIR}/{version:020}.json")
}

/// The version of a commit file name (`00000000000000000012.json`), if it is one.
pub fn parse_commit(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".json")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// A file added to the table.
#[derive(Clone, Debug)]
pub struct Add {
    /// Its object key under the table root (`window_start=2024-01-01%2008%3A00%3A00/part-...`).
    pub key: String,
    /// Partition column values, as the protocol writes them (`2024-01-01 08:00:00`).
    pub partition_values: BTreeMap<String, Option<String>>,
    /// Bytes.
    pub size: usize,
    /// Statistics (`numRecords`, ...).
    pub stats: Json,
    /// When it was written (ms since the epoch), to report how long rows wait for their
    /// commit.
    pub written_ms: i64,
}

impl Add {
    fn action(&self, now_ms: i64) -> Json {
        json!({ "add": {
            "path": encode_path(&self.key),
            "partitionValues": self.partition_values,
            "size": self.size,
            "modificationTime": now_ms,
            "dataChange": true,
            "stats": self.stats.to_string(),
        }})
    }
}

/// The table's schema as the `metaData` action states it.
#[derive(Clone, Debug, PartialEq)]
pub struct TableSchema {
    /// `(name, type, nullable)` of each column.
    pub columns: Vec<(String, String, bool)>,
    /// The partition columns.
    pub partition_by: Vec<String>,
}

impl TableSchema {
    /// The schema of rows of `fields`, partitioned by `partition_by`.
    pub fn of(fields: &[Field], partition_by: &[String]) -> Self {
        let columns = fields
            .iter()
            .map(|f| (f.name.clone(), delta_type(f.ty).to_owned(), f.nullable))
            .collect();
        Self {
            columns,
            partition_by: partition_by.to_vec(),
        }
    }

    fn schema_string(&self) -> String {
        let fields: Vec<Json> = self
            .columns
            .iter()
            .map(|(name, ty, nullable)| {
                json!({ "name": name, "type": ty, "nullable": nullable, "metadata": {} })
            })
            .collect();
        json!({ "type": "struct", "fields": fields }).to_string()
    }

    fn parse(meta: &Json) -> Result<Self, String> {
        let text = meta["schemaString"]
            .as_str()
            .ok_or("its metaData has no schemaString")?;
        let schema: Json =
            serde_json::from_str(text).map_err(|e| format!("its schemaString is not JSON: {e}"))?;
        let mut columns = Vec::new();
        for field in schema["fields"]
            .as_array()
            .ok_or("its schema has no fields")?
        {
            let ty = match &field["type"] {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            columns.push((
                field["name"].as_str().unwrap_or_default().to_owned(),
                ty,
                field["nullable"].as_bool().unwrap_or(true),
            ));
        }
        let partition_by = meta["partitionColumns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            columns,
            partition_by,
        })
    }

    /// `station string not null, window_start timestamp not null`.
    pub fn describe(&self) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|(n, t, nullable)| format!("{n} {t}{}", if *nullable { "" } else { " not null" }))
            .collect();
        format!(
            "({}) partitioned by ({})",
            columns.join(", "),
            self.partition_by.join(", ")
        )
    }
}

fn delta_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Str => "string",
        FieldType::Int64 => "long",
        FieldType::Float64 => "double",
        FieldType::Boolean => "boolean",
        FieldType::Timestamp => "timestamp",
        FieldType::Bytes => "binary",
    }
}

/// What the log says: the files in the table, the last version per application, the
/// schema, and the latest version read.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The latest version read; `None` before the table exists.
    pub version: Option<u64>,
    /// Object keys of the table's files.
    pub files: HashSet<String>,
    /// `txn` versions by application id.
    pub txns: HashMap<String, u64>,
    /// The schema of the last `metaData`.
    pub schema: Option<TableSchema>,
}

impl Snapshot {
    /// Applies commit `version` (its text); an error names what sluice cannot write to.
    pub fn apply(&mut self, version: u64, text: &str) -> Result<(), String> {
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let action: Json = serde_json::from_str(line)
                .map_err(|e| format!("line {} of version {version} is not JSON: {e}", n + 1))?;
            if let Some(add) = action.get("add") {
                self.files
                    .insert(decode_path(add["path"].as_str().unwrap_or_default()));
            } else if let Some(remove) = action.get("remove") {
                self.files
                    .remove(&decode_path(remove["path"].as_str().unwrap_or_default()));
            } else if let Some(txn) = action.get("txn") {
                if let (Some(app), Some(v)) = (txn["appId"].as_str(), txn["version"].as_u64()) {
                    self.txns.insert(app.to_owned(), v);
                }
            } else if let Some(meta) = action.get("metaData") {
                self.schema = Some(TableSchema::parse(meta)?);
            } else if let Some(protocol) = action.get("protocol") {
                let writer = protocol["minWriterVersion"].as_u64().unwrap_or(0);
                let reader = protocol["minReaderVersion"].as_u64().unwrap_or(0);
                if writer > WRITER_VERSION || reader > READER_VERSION {
                    return Err(format!(
                        "its protocol (reader {reader}, writer {writer}) needs features sluice \
                         does not implement; sluice writes tables of reader 1, writer 2"
                    ));
                }
            }
        }
        self.version = Some(version);
        Ok(())
    }
}

/// The actions of the commit creating the table (version 0).
pub fn create(schema: &TableSchema, table_id: &str, now_ms: i64) -> String {
    let lines = [
        commit_info("CREATE TABLE", json!({}), now_ms),
        json!({ "protocol": { "minReaderVersion": READER_VERSION, "minWriterVersion": WRITER_VERSION } }),
        json!({ "metaData": {
            "id": table_id,
            "format": { "provider": "parquet", "options": {} },
            "schemaString": schema.schema_string(),
            "partitionColumns": schema.partition_by,
            "configuration": {},
            "createdTime": now_ms,
        }}),
    ];
    join(&lines)
}

/// The actions of an append of `adds` by `app` at its `txn` `version`.
pub fn append(adds: &[&Add], app: &str, version: u64, now_ms: i64) -> String {
    let parameters =
        json!({ "outputMode": "Append", "queryId": app, "epochId": version.to_string() });
    let mut lines = vec![
        commit_info("STREAMING UPDATE", parameters, now_ms),
        json!({ "txn": { "appId": app, "version": version, "lastUpdated": now_ms } }),
    ];
    lines.extend(adds.iter().map(|a| a.action(now_ms)));
    join(&lines)
}

fn commit_info(operation: &str, parameters: Json, now_ms: i64) -> Json {
    json!({ "commitInfo": {
        "timestamp": now_ms,
        "operation": operation,
        "operationParameters": parameters,
        "isBlindAppend": true,
        "engineInfo": concat!("sluice/", env!("CARGO_PKG_VERSION")),
    }})
}

fn join(lines: &[Json]) -> String {
    let mut text = String::new();
    for line in lines {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text
}

/// The `path` of an `add` action: the object key as a relative URI. Object keys hold only
/// letters, digits, `-_.~=/` and the `%` of percent-encoded partition values, which is
/// itself encoded, as Spark does.
fn encode_path(key: &str) -> String {
    key.replace('%', "%25")
}

/// The object key of an action's `path`.
fn decode_path(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_names_round_trip() {
        assert_eq!(commit_name(12), "_delta_log/00000000000000000012.json");
        assert_eq!(parse_commit("00000000000000000012.json"), Some(12));
        for other in [
            "12.json",
            "00000000000000000012.checkpoint.parquet",
            "_last_checkpoint",
        ] {
            assert_eq!(parse_commit(other), None, "{other}");
        }
    }

    #[test]
    fn the_log_we_write_reads_back() {
        let fields = [
            Field::new("station", FieldType::Str),
            Field::new("window_start", FieldType::Timestamp),
            Field::nullable("entries", FieldType::Int64),
        ];
        let schema = TableSchema::of(&fields, &["window_start".into()]);
        let mut snapshot = Snapshot::default();
        snapshot.apply(0, &create(&schema, "id", 1)).unwrap();
        assert_eq!(snapshot.schema.as_ref(), Some(&schema));
        let add = Add {
            key: "window_start=2024-01-01%2008%3A00%3A00/part-1.parquet".into(),
            partition_values: [("window_start".into(), Some("2024-01-01 08:00:00".into()))].into(),
            size: 10,
            stats: json!({ "numRecords": 1 }),
            written_ms: 0,
        };
        let text = append(&[&add], "sluice-turnstile-0", 7, 2);
        assert!(
            text.contains(
                r#""path":"window_start=2024-01-01%252008%253A00%253A00/part-1.parquet""#
            )
        );
        snapshot.apply(1, &text).unwrap();
        assert!(snapshot.files.contains(&add.key));
        assert_eq!(snapshot.txns["sluice-turnstile-0"], 7);
        assert_eq!(snapshot.version, Some(1));
        let remove =
            r#"{"remove":{"path":"window_start=2024-01-01%252008%253A00%253A00/part-1.parquet"}}"#;
        snapshot.apply(2, remove).unwrap();
        assert!(snapshot.files.is_empty());
    }

    #[test]
    fn newer_protocols_and_broken_lines_are_refused_with_the_reason() {
        let newer = r#"{"protocol":{"minReaderVersion":3,"minWriterVersion":7}}"#;
        let err = Snapshot::default().apply(0, newer).unwrap_err();
        assert!(err.contains("reader 3, writer 7"), "{err}");
        let err = Snapshot::default().apply(4, "{not json").unwrap_err();
        assert!(err.contains("line 1 of version 4"), "{err}");
    }
}
