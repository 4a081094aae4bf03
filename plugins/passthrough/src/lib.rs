//! `passthrough`: the `transform` plugin that emits every input row unchanged, in the input
//! schema. It measures what the host adds around a plugin (source, batching, the WASM call,
//! sinks) with no plugin work: the latency benchmark of `make bench` runs it.

use sluice_plugin_sdk::{Batch, Field, Metadata, Output, Transform};

const CONFIG_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"properties":{}}"#;

/// The plugin instance (stateless, no config).
#[derive(Debug, Clone, Default)]
pub struct Passthrough;

impl Transform for Passthrough {
    fn metadata() -> Metadata {
        sluice_plugin_sdk::metadata!(
            "Passes every row through unchanged, in the input schema.",
            CONFIG_SCHEMA,
            "{}"
        )
    }

    fn init(config: &str, input: &[Field]) -> Result<(Self, Vec<Field>), String> {
        sluice_plugin_sdk::json::parse_config(config)?.finish(&[])?;
        Ok((Passthrough, input.to_vec()))
    }

    fn process(&mut self, input: Batch<'_>, out: &mut Output) -> Result<(), String> {
        input.validate().map_err(|e| e.to_string())?;
        out.rows.data.extend_from_slice(input.data);
        out.rows.ends.extend_from_slice(input.ends);
        out.origins.extend(0..input.len() as u32);
        Ok(())
    }
}

sluice_plugin_sdk::export_transform!(Passthrough);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin_sdk::{BatchBuilder, FieldType};

    #[test]
    fn rows_pass_unchanged() {
        let input = [Field::new("value", FieldType::Bytes)];
        let (mut p, schema) = Passthrough::init("{}", &input).unwrap();
        assert_eq!(schema, input);
        let mut rows = BatchBuilder::new();
        for v in [&b"a,b"[..], b"", b"xyz"] {
            rows.put_bytes(v);
            rows.end_row();
        }
        let mut out = Output::default();
        p.process(rows.as_batch(), &mut out).unwrap();
        assert_eq!(
            (out.rows.data, out.rows.ends),
            (rows.data.clone(), rows.ends)
        );
        assert_eq!(out.origins, [0, 1, 2]);
    }

    #[test]
    fn rejects_config_keys_and_bad_batches() {
        let input = [Field::new("value", FieldType::Bytes)];
        assert!(Passthrough::init(r#"{"x":1}"#, &input).is_err());
        let (mut p, _) = Passthrough::init("{}", &input).unwrap();
        let mut out = Output::default();
        let bad = Batch::new(b"ab", &[3]);
        assert!(p.process(bad, &mut out).is_err());
    }
}
