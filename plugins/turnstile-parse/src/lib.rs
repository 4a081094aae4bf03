//! `turnstile-parse`: the `transform` plugin that turns raw turnstile messages (one `bytes` or
//! `str` field) into typed readings. The formats live in [`parse`]; this module owns the
//! config, the schemas and the batch loop.

pub mod parse;

use parse::{Format, Record};
use sluice_plugin_sdk::{
    Batch, BatchBuilder, Field, FieldType, Metadata, Output, RowReader, Transform,
};

/// Config keys `init` accepts.
const CONFIG_KEYS: &[&str] = &["format"];

const CONFIG_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"properties":{"format":{"enum":["auto","weekly","message","sample"],"default":"auto","description":"Record layout; auto tells them apart by field count."}}}"#;

/// The output schema: every field non-nullable.
pub fn output_schema() -> Vec<Field> {
    let s = |n| Field::new(n, FieldType::Str);
    let mut fields: Vec<Field> = [
        "ca", "unit", "scp", "station", "linename", "division", "desc",
    ]
    .map(s)
    .into();
    fields.push(Field::new("timestamp", FieldType::Timestamp));
    fields.push(Field::new("entries", FieldType::Int64));
    fields.push(Field::new("exits", FieldType::Int64));
    fields
}

/// The plugin instance: the chosen format and how the input value is encoded.
#[derive(Debug, Clone)]
pub struct TurnstileParse {
    format: Format,
    input_nullable: bool,
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
        cfg.finish(CONFIG_KEYS)?;
        Ok(format)
    }

    fn check_input(input: &[Field]) -> Result<bool, String> {
        match input {
            [f] if matches!(f.ty, FieldType::Bytes | FieldType::Str) => Ok(f.nullable),
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

    /// The raw message of an input row, or why there is none.
    fn message<'a>(&self, row: &'a [u8]) -> Result<&'a [u8], String> {
        let mut r = RowReader::new(row);
        if self.input_nullable && !r.is_present().map_err(|e| e.to_string())? {
            return Err("the record value is null".to_string());
        }
        r.bytes().map_err(|e| e.to_string())
    }
}

/// Appends `rec` to `rows` in the output schema.
fn put_record(rows: &mut BatchBuilder, rec: &Record<'_>) {
    for s in [
        rec.ca,
        rec.unit,
        rec.scp,
        rec.station,
        rec.linename,
        rec.division,
        rec.desc,
    ] {
        rows.put_str(s);
    }
    rows.put_timestamp(rec.timestamp);
    rows.put_i64(rec.entries);
    rows.put_i64(rec.exits);
    rows.end_row();
}

impl Transform for TurnstileParse {
    fn metadata() -> Metadata {
        sluice_plugin_sdk::metadata!(
            "Parses MTA turnstile rows, stream messages and sample rows into typed readings.",
            CONFIG_SCHEMA,
            r#"{"format":"auto"}"#
        )
    }

    fn init(config: &str, input: &[Field]) -> Result<(Self, Vec<Field>), String> {
        let format = Self::read_config(config)?;
        let input_nullable = Self::check_input(input)?;
        Ok((
            TurnstileParse {
                format,
                input_nullable,
            },
            output_schema(),
        ))
    }

    fn process(&mut self, input: Batch<'_>, out: &mut Output) -> Result<(), String> {
        out.rows.data.reserve(input.data.len() + input.len() * 40);
        out.rows.ends.reserve(input.len());
        out.origins.reserve(input.len());
        for (i, row) in input.rows().enumerate() {
            let index = i as u32;
            let message = match self.message(row) {
                Ok(m) => m,
                Err(reason) => {
                    out.fail(index, reason);
                    continue;
                }
            };
            parse::parse_message(message, self.format, |r| match r {
                Ok(rec) => {
                    put_record(&mut out.rows, &rec);
                    out.origins.push(index);
                }
                Err(e) => out.fail(index, e.to_string()),
            });
        }
        Ok(())
    }
}

sluice_plugin_sdk::export_transform!(TurnstileParse);

#[cfg(test)]
mod tests;
