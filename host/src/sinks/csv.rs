//! CSV text of rows: RFC 4180 quoting, timestamps as `YYYY-MM-DD HH:MM:SS` UTC. Used by the
//! `lake` and `stdout` sinks, dead letters and the Kafka sink's `csv` format.

use sluice_plugin_sdk::rows::Field;

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
