//! One fixture of a plugin folder (`tests/<case>/`): `case.yaml` (the step as in a pipeline
//! spec, without `plugin`; the batch size; the schema of typed input), the input
//! (`input.txt`, one raw record per line, or `input.jsonl`, one typed row per line) and the
//! golden `expected.jsonl`. Turned here into a pipeline spec naming the plugin under test
//! and into the source batches the engine reads.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sluice_plugin_sdk::rows::{BatchBuilder, Field, FieldType};

use crate::sources::SourceBatch;
use crate::wasm::Batch;

/// `case.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// The step, as in a pipeline spec (`transform: {...}` or `window: {...}`), without
    /// `plugin`.
    pub step: serde_yaml::Mapping,
    /// Records per batch (default 1000): batches are what the plugin gets per call, and what
    /// the watermark moves between.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Fields of the rows of `input.jsonl` (`{station: str, entries: int64, note: str?}`);
    /// absent: `input.txt` holds raw records.
    #[serde(default)]
    pub input_schema: Option<serde_yaml::Mapping>,
}

fn default_batch() -> usize {
    1000
}

/// A fixture, read.
pub struct Case {
    /// The folder's name.
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
    /// `case.yaml`.
    pub spec: CaseSpec,
    /// Typed input schema, when the input is rows.
    pub schema: Option<Vec<Field>>,
    /// One entry per record: its text (a raw record, or a JSON row).
    pub lines: Vec<String>,
}

/// The fixtures of `dir/tests`, sorted by name (only `only`, when given).
pub fn cases(dir: &Path, only: Option<&str>) -> anyhow::Result<Vec<Case>> {
    let tests = dir.join("tests");
    let mut names: Vec<String> = std::fs::read_dir(&tests)
        .map_err(|e| user(format!("cannot list `{}`: {e}", tests.display())))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("case.yaml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| only.is_none_or(|o| o == n))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(user(format!(
            "`{}` holds no fixture{} (a folder with case.yaml)",
            tests.display(),
            only.map(|o| format!(" named `{o}`")).unwrap_or_default()
        )));
    }
    names.iter().map(|n| read(&tests.join(n), n)).collect()
}

fn read(dir: &Path, name: &str) -> anyhow::Result<Case> {
    let path = dir.join("case.yaml");
    let text = std::fs::read_to_string(&path)?;
    let spec: CaseSpec = serde_yaml::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        user(format!("{}{at}: {e}", path.display()))
    })?;
    let schema = spec
        .input_schema
        .as_ref()
        .map(|m| {
            parse_schema(m).map_err(|e| user(format!("{}: input_schema: {e}", path.display())))
        })
        .transpose()?;
    let input = dir.join(if schema.is_some() {
        "input.jsonl"
    } else {
        "input.txt"
    });
    let text = std::fs::read_to_string(&input).map_err(|e| {
        user(format!(
            "cannot read `{}` ({e}){}",
            input.display(),
            if schema.is_some() {
                ": a case with input_schema reads typed rows from input.jsonl"
            } else {
                ": a case without input_schema reads raw records from input.txt"
            }
        ))
    })?;
    Ok(Case {
        name: name.to_owned(),
        dir: dir.to_owned(),
        spec,
        schema,
        lines: text.lines().map(str::to_owned).collect(),
    })
}

/// `{name: type}` pairs, `type?` for nullable fields.
fn parse_schema(mapping: &serde_yaml::Mapping) -> Result<Vec<Field>, String> {
    let mut fields = Vec::new();
    for (name, ty) in mapping {
        let (Some(name), Some(ty)) = (name.as_str(), ty.as_str()) else {
            return Err("write each field as `name: type`".into());
        };
        let (ty, nullable) = match ty.strip_suffix('?') {
            Some(t) => (t, true),
            None => (ty, false),
        };
        let ty = match ty {
            "str" => FieldType::Str,
            "int64" => FieldType::Int64,
            "float64" => FieldType::Float64,
            "boolean" => FieldType::Boolean,
            "timestamp" => FieldType::Timestamp,
            "bytes" => FieldType::Bytes,
            other => {
                return Err(format!(
                    "field `{name}`: `{other}` is not a type (str, int64, float64, boolean, \
                     timestamp, bytes; `?` after it for nullable)"
                ));
            }
        };
        fields.push(Field {
            name: name.to_owned(),
            ty,
            nullable,
        });
    }
    Ok(fields)
}

impl Case {
    /// The pipeline spec (YAML) that runs the step over this case with `plugin` (`name@=1.0.0`).
    pub fn pipeline(&self, plugin: &str) -> anyhow::Result<String> {
        let mut step = self.spec.step.clone();
        let (kind, body) = match step.iter_mut().next() {
            Some((k, v)) if step_len(&self.spec.step) == 1 => (k.clone(), v),
            _ => {
                return Err(user(format!(
                    "{}: `step` must hold one step, `transform: {{...}}` or `window: {{...}}`",
                    self.dir.join("case.yaml").display()
                )));
            }
        };
        let body = match body {
            serde_yaml::Value::Mapping(m) => m,
            serde_yaml::Value::Null => {
                *body = serde_yaml::Value::Mapping(Default::default());
                body.as_mapping_mut().expect("just made a mapping")
            }
            _ => {
                return Err(user(format!(
                    "{}: `step` must be a mapping",
                    self.dir.display()
                )));
            }
        };
        body.insert("plugin".into(), plugin.into());
        let mut spec = serde_yaml::Mapping::new();
        spec.insert("version".into(), 1.into());
        spec.insert("name".into(), format!("plugin-test-{}", self.name).into());
        let source: serde_yaml::Value =
            serde_yaml::from_str("{ file: { paths: [fixture] } }").expect("valid YAML");
        spec.insert("source".into(), source);
        let mut one = serde_yaml::Mapping::new();
        one.insert(kind, serde_yaml::Value::Mapping(body.clone()));
        spec.insert("steps".into(), vec![serde_yaml::Value::Mapping(one)].into());
        let sinks: serde_yaml::Value =
            serde_yaml::from_str("[ { stdout: {} } ]").expect("valid YAML");
        spec.insert("sinks".into(), sinks);
        Ok(serde_yaml::to_string(&spec)?)
    }

    /// The input as source batches of `batch` records (partition 0, offsets from 0), each
    /// with its typed rows when the case has an input schema. The last batch says the input
    /// ended, so every window closes.
    pub fn batches(&self) -> anyhow::Result<Vec<(SourceBatch, Option<Batch>)>> {
        let size = self.spec.batch.max(1);
        let mut batches = Vec::new();
        let chunks: Vec<&[String]> = self.lines.chunks(size).collect();
        for (c, chunk) in chunks.iter().enumerate() {
            let first = c * size;
            let mut values = BatchBuilder::default();
            let mut rows = BatchBuilder::default();
            for (i, line) in chunk.iter().enumerate() {
                values.put_bytes(line.as_bytes());
                values.end_row();
                if let Some(schema) = &self.schema {
                    typed_row(&mut rows, schema, line).map_err(|e| {
                        user(format!(
                            "{}:{}: {e}",
                            self.dir.join("input.jsonl").display(),
                            first + i + 1
                        ))
                    })?;
                }
            }
            let last = c + 1 == chunks.len();
            let batch = SourceBatch {
                values,
                partitions: vec![0; chunk.len()],
                offsets: (first as i64..(first + chunk.len()) as i64).collect(),
                assigned: Vec::new(),
                revoked: Vec::new(),
                at_end: if last { vec![0] } else { Vec::new() },
                rewound: Vec::new(),
                end: last,
            };
            let rows = self.schema.as_ref().map(|_| {
                let (data, ends) = rows.into_parts();
                Batch { data, ends }
            });
            batches.push((batch, rows));
        }
        if batches.is_empty() {
            // No input: one empty, final batch, so the plugin still runs its `advance`.
            batches.push((
                SourceBatch {
                    values: BatchBuilder::default(),
                    partitions: Vec::new(),
                    offsets: Vec::new(),
                    assigned: Vec::new(),
                    revoked: Vec::new(),
                    at_end: vec![0],
                    rewound: Vec::new(),
                    end: true,
                },
                self.schema.as_ref().map(|_| Batch {
                    data: Vec::new(),
                    ends: Vec::new(),
                }),
            ));
        }
        Ok(batches)
    }
}

fn step_len(m: &serde_yaml::Mapping) -> usize {
    m.len()
}

/// Appends the JSON object `line` as a row of `schema`. Timestamps are
/// `YYYY-MM-DD HH:MM:SS` (or RFC 3339) text, or milliseconds since the epoch.
fn typed_row(rows: &mut BatchBuilder, schema: &[Field], line: &str) -> Result<(), String> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    for key in object.keys() {
        if !schema.iter().any(|f| &f.name == key) {
            return Err(format!("`{key}` is not a field of input_schema"));
        }
    }
    for field in schema {
        let value = object.get(&field.name).unwrap_or(&serde_json::Value::Null);
        let wrong = || {
            format!(
                "field `{}` must be {}, not {value}",
                field.name,
                field.ty.name()
            )
        };
        if value.is_null() {
            if !field.nullable {
                return Err(format!(
                    "field `{}` is missing or null, but not nullable (write `{}?` in input_schema)",
                    field.name,
                    field.ty.name()
                ));
            }
            rows.put_null();
            continue;
        }
        if field.nullable {
            rows.put_present();
        }
        match field.ty {
            FieldType::Str => rows.put_str(value.as_str().ok_or_else(wrong)?),
            FieldType::Bytes => rows.put_bytes(value.as_str().ok_or_else(wrong)?.as_bytes()),
            FieldType::Int64 => rows.put_i64(value.as_i64().ok_or_else(wrong)?),
            FieldType::Float64 => rows.put_f64(value.as_f64().ok_or_else(wrong)?),
            FieldType::Boolean => rows.put_bool(value.as_bool().ok_or_else(wrong)?),
            FieldType::Timestamp => {
                let ms = match value {
                    serde_json::Value::String(s) => sluice_plugin_sdk::time::parse_datetime(s),
                    other => other.as_i64(),
                };
                rows.put_timestamp(ms.ok_or_else(wrong)?);
            }
        }
    }
    rows.end_row();
    Ok(())
}

fn user(message: String) -> anyhow::Error {
    crate::cli::UserError(message).into()
}
