//! A small JSON reader for plugin configs, so plugins need no serde (smaller, faster-building
//! wasm). [`parse_config`] reads a config object and [`Config`] checks its keys, so that every
//! plugin reports unknown keys and wrong types the same way.

mod parser;
#[cfg(test)]
mod tests;

use parser::Parser;

/// A JSON value. Objects keep their keys in document order.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number.
    Num(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// The name of this value's JSON type, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Num(_) => "a number",
            Json::Str(_) => "a string",
            Json::Arr(_) => "an array",
            Json::Obj(_) => "an object",
        }
    }
}

/// Parses one JSON document (with nothing but whitespace after it).
pub fn parse(text: &str) -> Result<Json, String> {
    let mut p = Parser {
        b: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.pos < p.b.len() {
        return Err(p.err("unexpected text after the JSON value"));
    }
    Ok(v)
}

/// A config object being read: take each known key, then call [`Config::finish`] to reject
/// the keys nobody took.
#[derive(Debug)]
pub struct Config {
    entries: Vec<(String, Json)>,
}

/// Parses a plugin config: a JSON object; empty text or `null` count as `{}`.
pub fn parse_config(text: &str) -> Result<Config, String> {
    if text.trim().is_empty() {
        return Ok(Config {
            entries: Vec::new(),
        });
    }
    match parse(text).map_err(|e| format!("config is not valid JSON: {e}"))? {
        Json::Obj(entries) => Ok(Config { entries }),
        Json::Null => Ok(Config {
            entries: Vec::new(),
        }),
        other => Err(format!(
            "config must be a JSON object, not {}",
            other.kind()
        )),
    }
}

impl Config {
    /// Removes and returns the value of `key`, if present.
    pub fn take(&mut self, key: &str) -> Option<Json> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }

    /// Takes `key` as a string; `Ok(None)` when absent.
    pub fn take_str(&mut self, key: &str) -> Result<Option<String>, String> {
        match self.take(key) {
            None => Ok(None),
            Some(Json::Str(s)) => Ok(Some(s)),
            Some(v) => Err(format!(
                "config key `{key}` must be a string, not {}",
                v.kind()
            )),
        }
    }

    /// Takes `key` as an array of strings; `Ok(None)` when absent.
    pub fn take_str_list(&mut self, key: &str) -> Result<Option<Vec<String>>, String> {
        let wrong = |v: &Json| {
            format!(
                "config key `{key}` must be an array of strings, not {}",
                v.kind()
            )
        };
        match self.take(key) {
            None => Ok(None),
            Some(Json::Arr(items)) => items
                .into_iter()
                .map(|v| match v {
                    Json::Str(s) => Ok(s),
                    other => Err(wrong(&other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(wrong(&v)),
        }
    }

    /// Fails if any key was not taken, naming them and the accepted ones.
    pub fn finish(self, accepted: &[&str]) -> Result<(), String> {
        if self.entries.is_empty() {
            return Ok(());
        }
        let unknown: Vec<&str> = self.entries.iter().map(|(k, _)| k.as_str()).collect();
        Err(format!(
            "unknown config key(s) `{}`; accepted keys: {}",
            unknown.join("`, `"),
            accepted
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}
