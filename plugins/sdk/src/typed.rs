//! A plugin's config as a typed Rust struct, with its JSON Schema and its reader generated
//! from one declaration ([`crate::config_struct!`]), and its output schema written as a list
//! of `name: Type` pairs ([`crate::schema!`]).
//!
//! ```
//! sluice_plugin_sdk::config_struct! {
//!     /// The plugin's settings.
//!     pub struct Settings {
//!         /// Rows with fewer entries are dropped.
//!         min_entries: i64 = 0,
//!         /// Name of the derived column.
//!         label: String = "traffic".to_string(),
//!         /// Group by these fields.
//!         group_by: Vec<String> = vec!["station".to_string()],
//!     }
//! }
//! let s = Settings::parse(r#"{"min_entries": 5}"#).unwrap();
//! assert_eq!((s.min_entries, s.label.as_str()), (5, "traffic"));
//! assert!(Settings::parse(r#"{"min_entries": "5"}"#).unwrap_err().contains("an integer"));
//! assert!(Settings::parse(r#"{"nope": 1}"#).unwrap_err().contains("unknown config key"));
//! assert!(Settings::json_schema().contains(r#""min_entries":{"type":"integer","default":0"#));
//!
//! let fields = sluice_plugin_sdk::schema![station: Str, entries: Int64, note: Option<Str>];
//! assert!(fields[2].nullable && !fields[0].nullable);
//! ```

use crate::json::Json;

/// A type a config key may have: `i64`, `f64`, `bool`, `String`, `Vec<String>`.
pub trait ConfigValue: Sized {
    /// The JSON Schema of the type (`"type":"integer"`).
    fn schema() -> &'static str;
    /// Reads a JSON value; the error names what was expected.
    fn read(json: Json) -> Result<Self, String>;
    /// The value as JSON text (for the schema's `default` and the sample config).
    fn to_json(&self) -> String;
}

impl ConfigValue for i64 {
    fn schema() -> &'static str {
        r#""type":"integer""#
    }
    fn read(json: Json) -> Result<Self, String> {
        match json {
            Json::Num(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Ok(n as i64),
            other => Err(format!("must be an integer, not {}", describe(&other))),
        }
    }
    fn to_json(&self) -> String {
        self.to_string()
    }
}

impl ConfigValue for f64 {
    fn schema() -> &'static str {
        r#""type":"number""#
    }
    fn read(json: Json) -> Result<Self, String> {
        match json {
            Json::Num(n) => Ok(n),
            other => Err(format!("must be a number, not {}", describe(&other))),
        }
    }
    fn to_json(&self) -> String {
        if self.is_finite() {
            format!("{self:?}")
        } else {
            "null".into()
        }
    }
}

impl ConfigValue for bool {
    fn schema() -> &'static str {
        r#""type":"boolean""#
    }
    fn read(json: Json) -> Result<Self, String> {
        match json {
            Json::Bool(b) => Ok(b),
            other => Err(format!("must be true or false, not {}", describe(&other))),
        }
    }
    fn to_json(&self) -> String {
        self.to_string()
    }
}

impl ConfigValue for String {
    fn schema() -> &'static str {
        r#""type":"string""#
    }
    fn read(json: Json) -> Result<Self, String> {
        match json {
            Json::Str(s) => Ok(s),
            other => Err(format!("must be a string, not {}", describe(&other))),
        }
    }
    fn to_json(&self) -> String {
        quote(self)
    }
}

impl ConfigValue for Vec<String> {
    fn schema() -> &'static str {
        r#""type":"array","items":{"type":"string"}"#
    }
    fn read(json: Json) -> Result<Self, String> {
        match json {
            Json::Arr(items) => items
                .into_iter()
                .map(|v| match v {
                    Json::Str(s) => Ok(s),
                    other => Err(format!(
                        "must be an array of strings, but holds {}",
                        describe(&other)
                    )),
                })
                .collect(),
            other => Err(format!(
                "must be an array of strings, not {}",
                describe(&other)
            )),
        }
    }
    fn to_json(&self) -> String {
        let items: Vec<String> = self.iter().map(|s| quote(s)).collect();
        format!("[{}]", items.join(","))
    }
}

fn describe(json: &Json) -> String {
    match json {
        Json::Num(n) => format!("{n}"),
        Json::Str(s) => format!("the string {}", quote(s)),
        other => other.kind().to_owned(),
    }
}

/// `s` as a JSON string.
pub fn quote(s: &str) -> String {
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

/// One property of a generated JSON Schema (for [`crate::config_struct!`]).
#[doc(hidden)]
pub fn property(name: &str, schema: &str, default: &str, description: &str) -> String {
    let mut out = format!("{}:{{{schema},\"default\":{default}", quote(name));
    if !description.is_empty() {
        out.push_str(&format!(",\"description\":{}", quote(description.trim())));
    }
    out.push('}');
    out
}

/// The JSON Schema of an object of `properties`, no other keys (for [`crate::config_struct!`]).
#[doc(hidden)]
pub fn object_schema(properties: &[String]) -> String {
    format!(
        r#"{{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"properties":{{{}}}}}"#,
        properties.join(",")
    )
}

/// Reads one key of a config being parsed (for [`crate::config_struct!`]).
#[doc(hidden)]
pub fn take<T: ConfigValue>(
    config: &mut crate::json::Config,
    key: &str,
    default: impl FnOnce() -> T,
) -> Result<T, String> {
    match config.take(key) {
        None => Ok(default()),
        Some(json) => T::read(json).map_err(|e| format!("config key `{key}` {e}")),
    }
}

/// Declares a plugin's config as a struct whose every key has a default: generates the
/// struct, `parse(&str) -> Result<Self, String>` (unknown keys and wrong types are refused
/// with the key named), `json_schema()` for the plugin's metadata, and `sample()`, the
/// config of the defaults. Key types: `i64`, `f64`, `bool`, `String`, `Vec<String>`. Doc
/// comments become the schema's descriptions.
#[macro_export]
macro_rules! config_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        $vis struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl ::core::default::Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl $name {
            /// Reads the JSON config; unknown keys and wrong types are refused by name.
            pub fn parse(text: &str) -> ::core::result::Result<Self, ::std::string::String> {
                let mut config = $crate::json::parse_config(text)?;
                let parsed = Self {
                    $( $field: $crate::typed::take::<$ty>(&mut config, stringify!($field), || $default)?, )*
                };
                config.finish(&[$( stringify!($field) ),*])?;
                Ok(parsed)
            }

            /// The JSON Schema of the config (draft 2020-12), for the plugin's metadata.
            pub fn json_schema() -> ::std::string::String {
                let defaults = Self::default();
                $crate::typed::object_schema(&[$(
                    $crate::typed::property(
                        stringify!($field),
                        <$ty as $crate::typed::ConfigValue>::schema(),
                        &$crate::typed::ConfigValue::to_json(&defaults.$field),
                        concat!($($doc, " "),*),
                    ),
                )*])
            }

            /// The config of the defaults, as JSON (the metadata's sample config).
            pub fn sample() -> ::std::string::String {
                let defaults = Self::default();
                let parts: &[::std::string::String] = &[$(
                    format!("{}:{}", $crate::typed::quote(stringify!($field)),
                        $crate::typed::ConfigValue::to_json(&defaults.$field)),
                )*];
                format!("{{{}}}", parts.join(","))
            }
        }
    };
}

/// A schema written as `name: Type` pairs, `Option<Type>` for nullable fields:
/// `schema![station: Str, entries: Int64, note: Option<Str>]` (types as in [`crate::FieldType`]).
#[macro_export]
macro_rules! schema {
    (@acc [$($out:expr),*]) => { ::std::vec![$($out),*] };
    (@acc [$($out:expr),*] $name:ident : Option<$ty:ident> $(, $($rest:tt)*)?) => {
        $crate::schema!(@acc [$($out,)* $crate::Field::nullable(stringify!($name), $crate::FieldType::$ty)] $($($rest)*)?)
    };
    (@acc [$($out:expr),*] $name:ident : $ty:ident $(, $($rest:tt)*)?) => {
        $crate::schema!(@acc [$($out,)* $crate::Field::new(stringify!($name), $crate::FieldType::$ty)] $($($rest)*)?)
    };
    ($($t:tt)*) => { $crate::schema!(@acc [] $($t)*) };
}

#[cfg(test)]
mod tests {
    crate::config_struct! {
        /// Test config.
        struct Conf {
            /// A count.
            n: i64 = 3,
            /// A ratio.
            r: f64 = 0.5,
            flag: bool = false,
            name: String = "x".to_string(),
            list: Vec<String> = Vec::new(),
        }
    }

    #[test]
    fn defaults_types_and_unknown_keys() {
        assert_eq!(Conf::parse("").unwrap(), Conf::default());
        let c = Conf::parse(r#"{"n": 7, "flag": true, "list": ["a", "b"]}"#).unwrap();
        assert_eq!((c.n, c.flag, c.list.len()), (7, true, 2));
        let e = Conf::parse(r#"{"n": 1.5}"#).unwrap_err();
        assert_eq!(e, "config key `n` must be an integer, not 1.5");
        let e = Conf::parse(r#"{"list": [1]}"#).unwrap_err();
        assert!(
            e.contains("`list` must be an array of strings, but holds 1"),
            "{e}"
        );
        assert!(Conf::parse(r#"{"m": 1}"#).unwrap_err().contains("`m`"));
        assert_eq!(
            Conf::sample(),
            r#"{"n":3,"r":0.5,"flag":false,"name":"x","list":[]}"#
        );
        let schema = Conf::json_schema();
        assert!(crate::json::parse(&schema).is_ok(), "{schema}");
        assert!(schema.contains(r#""n":{"type":"integer","default":3,"description":"A count."}"#));
        assert!(Conf::parse(&Conf::sample()).is_ok());
    }

    #[test]
    fn schema_macro() {
        use crate::{Field, FieldType};
        let s = crate::schema![a: Str, b: Option<Int64>, c: Timestamp];
        assert_eq!(
            s,
            [
                Field::new("a", FieldType::Str),
                Field::nullable("b", FieldType::Int64),
                Field::new("c", FieldType::Timestamp)
            ]
        );
        let one = crate::schema![value: Bytes];
        assert_eq!(one.len(), 1);
    }
}
