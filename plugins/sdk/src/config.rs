//! A plugin's config, declared once in Rust ([`ConfigSpec`]): the JSON Schema the plugin's
//! metadata carries is generated from it ([`ConfigSpec::json_schema`]), and the same
//! declaration names the accepted keys when a config is read ([`ConfigSpec::keys`], for
//! [`crate::json::Config::finish`]), so the schema and the reader cannot drift apart.
//!
//! ```
//! use sluice_plugin_sdk::config::{ConfigSpec, Key};
//! const CONFIG: ConfigSpec = ConfigSpec::new(&[
//!     Key::one_of("format", &["auto", "weekly"], "Record layout.").default_str("auto"),
//!     Key::flag("emit_early", "Emit running sums."),
//! ]);
//! assert!(CONFIG.json_schema().contains(r#""enum":["auto","weekly"]"#));
//! assert_eq!(CONFIG.keys(), ["format", "emit_early"]);
//! ```

/// The JSON type of a config key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// Any string.
    Text,
    /// An array of strings.
    TextList,
    /// `true` or `false`.
    Flag,
}

/// One config key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// The key.
    pub name: &'static str,
    /// Its type.
    pub ty: KeyType,
    /// What it does, for the schema's `description`.
    pub description: &'static str,
    /// Whether a config must set it.
    pub required: bool,
    /// The default: a string for `one_of` and `text` keys, JSON text for the others.
    pub default: Option<&'static str>,
}

impl Key {
    const fn new(name: &'static str, ty: KeyType, description: &'static str) -> Key {
        Key {
            name,
            ty,
            description,
            required: false,
            default: None,
        }
    }

    /// A key taking one of `values`.
    pub const fn one_of(
        name: &'static str,
        values: &'static [&'static str],
        description: &'static str,
    ) -> Key {
        Key::new(name, KeyType::OneOf(values), description)
    }

    /// A key taking any string.
    pub const fn text(name: &'static str, description: &'static str) -> Key {
        Key::new(name, KeyType::Text, description)
    }

    /// A key taking an array of strings.
    pub const fn text_list(name: &'static str, description: &'static str) -> Key {
        Key::new(name, KeyType::TextList, description)
    }

    /// A key taking `true` or `false`.
    pub const fn flag(name: &'static str, description: &'static str) -> Key {
        Key::new(name, KeyType::Flag, description)
    }

    /// Makes the key required.
    pub const fn required(mut self) -> Key {
        self.required = true;
        self
    }

    /// The default of a `text_list` or `flag` key, as JSON text (`["station"]`, `false`).
    pub const fn default_json(mut self, json: &'static str) -> Key {
        self.default = Some(json);
        self
    }

    /// The default of a `one_of` or `text` key: `default_str("auto")` (quoted when the
    /// schema is written).
    pub const fn default_str(mut self, value: &'static str) -> Key {
        self.default = Some(value);
        self
    }
}

/// A plugin's config keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigSpec {
    keys: &'static [Key],
}

impl ConfigSpec {
    /// The config of `keys` (no other key is accepted).
    pub const fn new(keys: &'static [Key]) -> ConfigSpec {
        ConfigSpec { keys }
    }

    /// The accepted keys, in declaration order.
    pub fn keys(&self) -> Vec<&'static str> {
        self.keys.iter().map(|k| k.name).collect()
    }

    /// The JSON Schema (draft 2020-12) of the config: an object of these keys, no others.
    pub fn json_schema(&self) -> String {
        let mut out = String::from(
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false"#,
        );
        let required: Vec<String> = (self.keys.iter())
            .filter(|k| k.required)
            .map(|k| quote(k.name))
            .collect();
        if !required.is_empty() {
            out.push_str(&format!(r#","required":[{}]"#, required.join(",")));
        }
        out.push_str(r#","properties":{"#);
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("{}:{{", quote(key.name)));
            let mut parts: Vec<String> = Vec::new();
            match key.ty {
                KeyType::OneOf(values) => {
                    let values: Vec<String> = values.iter().map(|v| quote(v)).collect();
                    parts.push(format!(r#""enum":[{}]"#, values.join(",")));
                }
                KeyType::Text => parts.push(r#""type":"string""#.into()),
                KeyType::TextList => {
                    parts.push(r#""type":"array","items":{"type":"string"}"#.into())
                }
                KeyType::Flag => parts.push(r#""type":"boolean""#.into()),
            }
            if let Some(default) = key.default {
                let json = match key.ty {
                    KeyType::OneOf(_) | KeyType::Text => quote(default),
                    KeyType::TextList | KeyType::Flag => default.to_owned(),
                };
                parts.push(format!(r#""default":{json}"#));
            }
            if !key.description.is_empty() {
                parts.push(format!(r#""description":{}"#, quote(key.description)));
            }
            out.push_str(&parts.join(","));
            out.push('}');
        }
        out.push_str("}}");
        out
    }
}

/// `s` as a JSON string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: ConfigSpec = ConfigSpec::new(&[
        Key::one_of("counters", &["cumulative", "incremental"], "How to count.").required(),
        Key::text_list("group_by", "Group fields.").default_json(r#"["station"]"#),
        Key::flag("emit_early", "Say \"early\".").default_json("false"),
        Key::one_of("format", &["auto", "weekly"], "").default_str("auto"),
        Key::text("name", "A name."),
    ]);

    #[test]
    fn the_schema_is_valid_json_describing_every_key() {
        let schema = SPEC.json_schema();
        let parsed = crate::json::parse(&schema).expect("valid JSON");
        assert_eq!(parsed.kind(), "an object");
        assert_eq!(
            schema,
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["counters"],"properties":{"counters":{"enum":["cumulative","incremental"],"description":"How to count."},"group_by":{"type":"array","items":{"type":"string"},"default":["station"],"description":"Group fields."},"emit_early":{"type":"boolean","default":false,"description":"Say \"early\"."},"format":{"enum":["auto","weekly"],"default":"auto"},"name":{"type":"string","description":"A name."}}}"#
        );
        assert_eq!(
            SPEC.keys(),
            ["counters", "group_by", "emit_early", "format", "name"]
        );
        let empty = ConfigSpec::new(&[]).json_schema();
        assert!(empty.ends_with(r#""additionalProperties":false,"properties":{}}"#));
    }
}
