//! Rows to Kafka messages: the message key (key field values joined with `|`) and the
//! payload (a compact JSON object, or one CSV line without header or newline).

use std::fmt::Write;

use sluice_plugin_sdk::rows::{Field, FieldType, Value, decode_row};
use sluice_plugin_sdk::time::format_timestamp_into;

use super::KafkaFormat;
use crate::sinks::csv_value;

/// The field that joins the default key when the rows have it.
const WINDOW_START: &str = "window_start";

/// The default key: the leading `str` fields of the schema, then `window_start` if present.
pub fn default_key(schema: &[Field]) -> Vec<String> {
    let mut key: Vec<String> = schema
        .iter()
        .take_while(|f| f.ty == FieldType::Str)
        .map(|f| f.name.clone())
        .collect();
    if schema.iter().any(|f| f.name == WINDOW_START) && !key.iter().any(|k| k == WINDOW_START) {
        key.push(WINDOW_START.to_owned());
    }
    key
}

/// Indexes of the `key` fields in `schema`; the error names the missing field.
pub fn key_indexes(key: &[String], schema: &[Field]) -> Result<Vec<usize>, String> {
    key.iter()
        .map(|name| {
            schema.iter().position(|f| &f.name == name).ok_or_else(|| {
                let names: Vec<&str> = schema.iter().map(|f| f.name.as_str()).collect();
                format!(
                    "key field `{name}` is not in the rows ({})",
                    names.join(", ")
                )
            })
        })
        .collect()
}

/// Encodes rows of one schema.
#[derive(Debug, Clone)]
pub struct Encoder {
    schema: Vec<Field>,
    key: Vec<usize>,
    format: KafkaFormat,
}

impl Encoder {
    /// For rows of `schema`, keyed by the fields at `key`.
    pub fn new(schema: &[Field], key: Vec<usize>, format: KafkaFormat) -> Self {
        Self {
            schema: schema.to_vec(),
            key,
            format,
        }
    }

    /// Clears `key` and `payload` and writes the message of `row` into them. Returns whether
    /// the message has a key (false when no key field is configured).
    pub fn encode(
        &self,
        row: &[u8],
        key: &mut String,
        payload: &mut String,
    ) -> anyhow::Result<bool> {
        key.clear();
        payload.clear();
        let values = decode_row(&self.schema, row)?;
        for (n, &i) in self.key.iter().enumerate() {
            if n > 0 {
                key.push('|');
            }
            plain_value(key, values[i]);
        }
        match self.format {
            KafkaFormat::Json => json_object(payload, &self.schema, &values),
            KafkaFormat::Csv => csv_record(payload, &values),
        }
        Ok(!self.key.is_empty())
    }
}

/// A value as key text: no quoting, timestamps as `YYYY-MM-DD HH:MM:SS`, null as nothing.
fn plain_value(out: &mut String, value: Value<'_>) {
    match value {
        Value::Null => {}
        Value::Str(s) => out.push_str(s),
        Value::Bytes(b) => out.push_str(&String::from_utf8_lossy(b)),
        Value::Int64(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Float64(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Boolean(v) => out.push_str(if v { "true" } else { "false" }),
        Value::Timestamp(ms) => format_timestamp_into(ms, out),
    }
}

fn csv_record(out: &mut String, values: &[Value<'_>]) {
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_value(out, *value);
    }
}

fn json_object(out: &mut String, schema: &[Field], values: &[Value<'_>]) {
    out.push('{');
    for (i, (field, value)) in schema.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(out, &field.name);
        out.push(':');
        json_value(out, *value);
    }
    out.push('}');
}

/// JSON of one value: ints and finite floats as numbers, timestamps and bytes as strings,
/// non-finite floats as null.
fn json_value(out: &mut String, value: Value<'_>) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Str(s) => json_string(out, s),
        Value::Bytes(b) => json_string(out, &String::from_utf8_lossy(b)),
        Value::Int64(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Float64(v) if v.is_finite() => {
            let _ = write!(out, "{v:?}");
        }
        Value::Float64(_) => out.push_str("null"),
        Value::Boolean(v) => out.push_str(if v { "true" } else { "false" }),
        Value::Timestamp(ms) => {
            out.push('"');
            format_timestamp_into(ms, out);
            out.push('"');
        }
    }
}

fn json_string(out: &mut String, s: &str) {
    // Serialising a str to JSON cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin_sdk::rows::BatchBuilder;

    fn schema() -> Vec<Field> {
        vec![
            Field::new("station", FieldType::Str),
            Field::new("window_start", FieldType::Timestamp),
            Field::new("entries", FieldType::Int64),
            Field::nullable("ratio", FieldType::Float64),
        ]
    }

    fn row(station: &str, ratio: Option<f64>) -> Vec<u8> {
        let mut b = BatchBuilder::new();
        b.put_str(station);
        b.put_timestamp(1_704_096_000_000);
        b.put_i64(42);
        match ratio {
            Some(r) => {
                b.put_present();
                b.put_f64(r);
            }
            None => b.put_null(),
        }
        b.end_row();
        b.data
    }

    #[test]
    fn default_key_is_leading_str_fields_and_window_start() {
        assert_eq!(default_key(&schema()), ["station", "window_start"]);
        let no_window = [
            Field::new("a", FieldType::Str),
            Field::new("n", FieldType::Int64),
        ];
        assert_eq!(default_key(&no_window), ["a"]);
    }

    #[test]
    fn unknown_key_field_is_named() {
        let err = key_indexes(&["stop".into()], &schema()).unwrap_err();
        assert!(err.contains("`stop`") && err.contains("station"), "{err}");
    }

    #[test]
    fn json_and_key() {
        let enc = Encoder::new(&schema(), vec![0, 1], KafkaFormat::Json);
        let (mut key, mut payload) = (String::new(), String::new());
        assert!(
            enc.encode(&row("59 \"ST\"", Some(0.5)), &mut key, &mut payload)
                .unwrap()
        );
        assert_eq!(key, "59 \"ST\"|2024-01-01 08:00:00");
        let expected = concat!(
            r#"{"station":"59 \"ST\"","window_start":"2024-01-01 08:00:00","#,
            r#""entries":42,"ratio":0.5}"#
        );
        assert_eq!(payload, expected);
        let parsed: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(parsed["entries"], 42);
        enc.encode(&row("A", Some(f64::NAN)), &mut key, &mut payload)
            .unwrap();
        assert!(payload.ends_with(r#""ratio":null}"#), "{payload}");
    }

    #[test]
    fn csv_line_without_newline() {
        let enc = Encoder::new(&schema(), vec![], KafkaFormat::Csv);
        let (mut key, mut payload) = (String::new(), String::new());
        assert!(
            !enc.encode(&row("A,B", None), &mut key, &mut payload)
                .unwrap()
        );
        assert_eq!(payload, "\"A,B\",2024-01-01 08:00:00,42,");
    }
}
