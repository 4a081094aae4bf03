//! `turnstile-parse`: the `transform` plugin that turns raw turnstile messages (one `bytes` or
//! `str` field) into typed readings. The formats live in [`parse`]; this module owns the
//! config, the schemas and the batch loop, which writes columns straight from the message
//! bytes (the key and station columns dictionary-encoded: a few hundred stations, control
//! areas and units per batch of thousands of readings).

pub mod parse;

use parse::{Format, Record};
use sluice_plugin_sdk::config::{ConfigSpec, Key};
use sluice_plugin_sdk::{Columns, ColumnsBuilder, Field, FieldType, Metadata, Output, Transform};

/// The config `init` accepts (its JSON Schema is generated from this).
const CONFIG: ConfigSpec = ConfigSpec::new(&[Key::one_of(
    "format",
    &["auto", "weekly", "message", "sample"],
    "Record layout; auto tells them apart by field count.",
)
.default_str("auto")]);

/// The text fields of the output.
const TEXT_FIELDS: [&str; 7] = [
    "ca", "unit", "scp", "station", "linename", "division", "desc",
];

/// The text fields a window keys or groups by, dictionary-encoded: a few hundred distinct
/// values per batch, which a reader maps once per batch. The others are short and copied.
const DICTIONARY_FIELDS: [&str; 4] = ["ca", "unit", "scp", "station"];

/// The output schema: every field non-nullable.
pub fn output_schema() -> Vec<Field> {
    let s = |n| Field::new(n, FieldType::Str);
    let mut fields: Vec<Field> = TEXT_FIELDS.map(s).into();
    fields.push(Field::new("timestamp", FieldType::Timestamp));
    fields.push(Field::new("entries", FieldType::Int64));
    fields.push(Field::new("exits", FieldType::Int64));
    fields
}

/// The plugin instance: the chosen format.
#[derive(Debug, Clone)]
pub struct TurnstileParse {
    format: Format,
}

impl TurnstileParse {
    fn read_config(config: &str) -> Result<Format, String> {
        let mut cfg = sluice_plugin_sdk::json::parse_config(config)?;
        let format = match cfg.take_str("format")? {
            None => Format::Auto,
            Some(name) => Format::from_name(&name).ok_or_else(|| {
                format!("config key `format` is {name:?}; expected \"auto\", \"weekly\", \"message\" or \"sample\"")
            })?,
        };
        cfg.finish(&CONFIG.keys())?;
        Ok(format)
    }

    fn check_input(input: &[Field]) -> Result<(), String> {
        match input {
            [f] if matches!(f.ty, FieldType::Bytes | FieldType::Str) => Ok(()),
            _ => {
                let got: Vec<String> = input
                    .iter()
                    .map(|f| format!("{}: {}", f.name, f.ty))
                    .collect();
                Err(format!(
                    "input must be one bytes or str field (the raw record), got [{}]",
                    got.join(", ")
                ))
            }
        }
    }
}

/// Appends `rec` to `out` in the output schema, made from input row `origin`.
#[inline]
fn put_record(out: &mut Output, rec: &Record<'_>, origin: u32) {
    let rows = &mut out.rows;
    for s in [
        rec.ca,
        rec.unit,
        rec.scp,
        rec.station,
        rec.linename,
        rec.division,
        rec.desc,
    ] {
        rows.push_str(s);
    }
    rows.push_i64(rec.timestamp);
    rows.push_i64(rec.entries);
    rows.push_i64(rec.exits);
    out.end_row(origin);
}

impl Transform for TurnstileParse {
    fn metadata() -> Metadata {
        sluice_plugin_sdk::metadata!(
            "Parses MTA turnstile rows, stream messages and sample rows into typed readings.",
            CONFIG.json_schema(),
            r#"{"format":"auto"}"#
        )
    }

    fn init(config: &str, input: &[Field]) -> Result<(Self, Vec<Field>), String> {
        let format = Self::read_config(config)?;
        Self::check_input(input)?;
        Ok((TurnstileParse { format }, output_schema()))
    }

    fn output(&self, schema: &[Field]) -> Output {
        let rows = DICTIONARY_FIELDS
            .iter()
            .fold(ColumnsBuilder::new(schema), |rows, name| {
                rows.dictionary(name)
            });
        Output::with_rows(rows)
    }

    fn process(&mut self, input: &Columns<'_>, out: &mut Output) -> Result<(), String> {
        let messages = input.var_at(0);
        for i in 0..input.len() {
            let index = i as u32;
            let Some(message) = messages.bytes(i) else {
                let reason = if messages.is_valid(i) {
                    "the record value lies outside the batch"
                } else {
                    "the record value is null"
                };
                out.fail(index, reason);
                continue;
            };
            parse::parse_message(message, self.format, |r| match r {
                Ok(rec) => put_record(out, &rec, index),
                Err(e) => out.fail(index, e.to_string()),
            });
        }
        Ok(())
    }
}

sluice_plugin_sdk::export_transform!(TurnstileParse);

#[cfg(test)]
mod tests;
