//! `{{name}}`: a sluice transform. It reads raw records, lines of `station,entries,exits`,
//! keeps those with at least `min_entries` entries, and adds a derived field, `traffic`
//! (entries + exits). A line that does not parse is dead-lettered with the reason; the other
//! lines of its batch flow on.

use sluice_plugin_sdk::{Columns, Field, FieldType, Metadata, Output, Transform};

sluice_plugin_sdk::config_struct! {
    /// The `config` of a pipeline step using this plugin.
    pub struct Config {
        /// Lines with fewer entries than this are dropped.
        min_entries: i64 = 0,
    }
}

/// The plugin, configured for one pipeline step.
pub struct Plugin {
    config: Config,
}

impl Transform for Plugin {
    fn metadata() -> Metadata {
        sluice_plugin_sdk::metadata!(
            "Keeps station lines with enough entries and adds their traffic.",
            Config::json_schema(),
            Config::sample()
        )
    }

    fn init(config: &str, input: &[Field]) -> Result<(Self, Vec<Field>), String> {
        let config = Config::parse(config)?;
        if !matches!(input, [f] if f.ty == FieldType::Bytes) {
            return Err("this plugin reads raw records: put it first in the steps".into());
        }
        let output = sluice_plugin_sdk::schema![
            station: Str,
            entries: Int64,
            exits: Int64,
            traffic: Int64,
        ];
        Ok((Plugin { config }, output))
    }

    fn process(&mut self, input: &Columns<'_>, out: &mut Output) -> Result<(), String> {
        let lines = input.bytes("value").map_err(|e| e.to_string())?;
        for i in 0..input.len() {
            match parse(lines.bytes(i).unwrap_or_default()) {
                Ok((station, entries, exits)) if entries >= self.config.min_entries => {
                    // The row ends, with the input row it came from, at the `;`.
                    out.emit(i as u32)
                        .str(station)
                        .i64(entries)
                        .i64(exits)
                        .i64(entries + exits);
                }
                Ok(_) => {}
                Err(reason) => out.fail(i as u32, reason),
            }
        }
        Ok(())
    }
}

/// `station,entries,exits` (spaces around fields allowed).
fn parse(line: &[u8]) -> Result<(&str, i64, i64), String> {
    let line = std::str::from_utf8(line).map_err(|_| "the line is not UTF-8".to_string())?;
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [station, entries, exits] = fields[..] else {
        return Err(format!(
            "expected 3 fields (station,entries,exits), found {}",
            fields.len()
        ));
    };
    let number = |name: &str, text: &str| {
        text.parse::<i64>()
            .map_err(|_| format!("{name} `{text}` is not a whole number"))
    };
    Ok((
        station,
        number("entries", entries)?,
        number("exits", exits)?,
    ))
}

sluice_plugin_sdk::export_transform!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_names_what_is_wrong() {
        assert_eq!(parse(b"A, 3, 4"), Ok(("A", 3, 4)));
        assert!(parse(b"A,3").unwrap_err().contains("expected 3 fields"));
        assert!(parse(b"A,x,4").unwrap_err().contains("entries `x`"));
    }
}
