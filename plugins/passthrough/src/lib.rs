//! `passthrough`: the `transform` plugin that emits every input row unchanged, in the input
//! schema. It measures what the host adds around a plugin (source, batching, the WASM call,
//! sinks) with no plugin work: the latency benchmark of `make bench` runs it.

use sluice_plugin_sdk::columns::convert::value;
use sluice_plugin_sdk::config::ConfigSpec;
use sluice_plugin_sdk::{Columns, Field, Metadata, Output, Transform};

/// No config keys (its JSON Schema is generated from this).
const CONFIG: ConfigSpec = ConfigSpec::new(&[]);

/// The plugin instance (stateless, no config).
#[derive(Debug, Clone, Default)]
pub struct Passthrough;

impl Transform for Passthrough {
    fn metadata() -> Metadata {
        sluice_plugin_sdk::metadata!(
            "Passes every row through unchanged, in the input schema.",
            CONFIG.json_schema(),
            "{}"
        )
    }

    fn init(config: &str, input: &[Field]) -> Result<(Self, Vec<Field>), String> {
        sluice_plugin_sdk::json::parse_config(config)?.finish(&CONFIG.keys())?;
        Ok((Passthrough, input.to_vec()))
    }

    fn process(&mut self, input: &Columns<'_>, out: &mut Output) -> Result<(), String> {
        let fields = input.schema().len();
        for row in 0..input.len() {
            for column in 0..fields {
                let v = value(input, column, row).map_err(|e| e.to_string())?;
                out.rows.push_value(v).map_err(|e| e.to_string())?;
            }
            out.end_row(row as u32);
        }
        Ok(())
    }
}

sluice_plugin_sdk::export_transform!(Passthrough);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin_sdk::{ColumnsBuilder, FieldType};

    #[test]
    fn rows_pass_unchanged() {
        let input = [Field::new("value", FieldType::Bytes)];
        let (mut p, schema) = Passthrough::init("{}", &input).unwrap();
        assert_eq!(schema, input);
        let mut rows = ColumnsBuilder::new(&input);
        for v in [&b"a,b"[..], b"", b"xyz"] {
            rows.push_bytes(v);
            rows.end_row();
        }
        let (mut arena, mut columns) = (Vec::new(), Vec::new());
        let batch = rows.view(&mut arena, &mut columns).unwrap();
        let mut out = p.output(&schema);
        p.process(&batch, &mut out).unwrap();
        let (a, b) = (out.rows.to_rows().unwrap(), rows.to_rows().unwrap());
        assert_eq!((a.data, a.ends), (b.data, b.ends));
        assert_eq!(out.origins, [0, 1, 2]);
    }
}
