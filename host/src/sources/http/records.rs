//! Request bodies to records: text (one record per non-empty line, `\r\n` or `\n`) or a JSON
//! array (a string element is a record as is; an object element is a record holding its
//! compact JSON text, keys in the order sent). Never panics on input.

use std::borrow::Cow;

/// How a body is to be read, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `text/plain` or `text/csv`.
    Text,
    /// `application/json`.
    Json,
}

impl BodyKind {
    /// The kind of a `Content-Type` value (parameters such as `charset` are ignored), or
    /// `None` when the type is not supported.
    pub fn of(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("text/plain") || essence.eq_ignore_ascii_case("text/csv") {
            Some(BodyKind::Text)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(BodyKind::Json)
        } else {
            None
        }
    }
}

/// Why a body holds no usable records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    /// The body is empty, or only blank lines, or an empty array.
    #[error("the body holds no records")]
    Empty,
    /// The body is not UTF-8.
    #[error("the body is not UTF-8 text (invalid byte at position {position})")]
    NotUtf8 { position: usize },
    /// The body is not JSON.
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The JSON is not an array of strings or objects.
    #[error("expected a JSON array of strings or objects, {0}")]
    NotRecords(String),
}

/// The records of `body`.
pub fn parse(kind: BodyKind, body: &[u8]) -> Result<Vec<Cow<'_, str>>, RecordsError> {
    let text = std::str::from_utf8(body).map_err(|e| RecordsError::NotUtf8 {
        position: e.valid_up_to(),
    })?;
    let records = match kind {
        BodyKind::Text => lines(text),
        BodyKind::Json => json(text)?,
    };
    if records.is_empty() {
        return Err(RecordsError::Empty);
    }
    Ok(records)
}

fn lines(text: &str) -> Vec<Cow<'_, str>> {
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.trim().is_empty())
        .map(Cow::Borrowed)
        .collect()
}

fn json(text: &str) -> Result<Vec<Cow<'_, str>>, RecordsError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| RecordsError::InvalidJson(e.to_string()))?;
    let serde_json::Value::Array(elements) = value else {
        return Err(RecordsError::NotRecords(format!("got {}", kind(&value))));
    };
    let raw = raw_elements(text);
    let mut records = Vec::with_capacity(elements.len());
    for (i, element) in elements.into_iter().enumerate() {
        match element {
            serde_json::Value::String(s) => records.push(Cow::Owned(s)),
            serde_json::Value::Object(_) => {
                records.push(Cow::Owned(raw.get(i).cloned().unwrap_or_default()))
            }
            other => {
                return Err(RecordsError::NotRecords(format!(
                    "element {i} is {}",
                    kind(&other)
                )));
            }
        }
    }
    Ok(records)
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The text of each element of the JSON array `text` (already validated), without the
/// whitespace outside strings.
fn raw_elements(text: &str) -> Vec<String> {
    let (mut elements, mut current) = (Vec::new(), String::new());
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for c in text.chars() {
        if in_string {
            current.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            ' ' | '\t' | '\n' | '\r' => {}
            '[' | '{' => {
                if depth > 0 {
                    current.push(c);
                }
                depth += 1;
            }
            ']' | '}' => {
                depth = depth.saturating_sub(1);
                if depth > 0 {
                    current.push(c);
                } else if !current.is_empty() {
                    elements.push(std::mem::take(&mut current));
                }
            }
            ',' if depth == 1 => elements.push(std::mem::take(&mut current)),
            '"' => {
                in_string = true;
                current.push(c);
            }
            c => current.push(c),
        }
    }
    elements
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(kind: BodyKind, body: &str) -> Vec<String> {
        parse(kind, body.as_bytes())
            .unwrap()
            .into_iter()
            .map(Cow::into_owned)
            .collect()
    }

    #[test]
    fn content_types() {
        assert_eq!(
            BodyKind::of("text/plain; charset=utf-8"),
            Some(BodyKind::Text)
        );
        assert_eq!(BodyKind::of("TEXT/CSV"), Some(BodyKind::Text));
        assert_eq!(BodyKind::of("application/json"), Some(BodyKind::Json));
        assert_eq!(BodyKind::of("application/xml"), None);
        assert_eq!(BodyKind::of(""), None);
    }

    #[test]
    fn text_lines() {
        assert_eq!(ok(BodyKind::Text, "a,b\r\n\n  \nc\n"), ["a,b", "c"]);
        assert_eq!(parse(BodyKind::Text, b"\n\r\n"), Err(RecordsError::Empty));
        assert_eq!(
            parse(BodyKind::Text, b"ok\n\xff"),
            Err(RecordsError::NotUtf8 { position: 3 })
        );
    }

    #[test]
    fn json_strings_and_objects() {
        assert_eq!(ok(BodyKind::Json, r#" [ "a\"b", "c" ] "#), ["a\"b", "c"]);
        let objects = ok(
            BodyKind::Json,
            "[{\"z\": 1, \"a\": [1, {\"s\": \"x, ]}\"}]},\n {}]",
        );
        assert_eq!(objects, [r#"{"z":1,"a":[1,{"s":"x, ]}"}]}"#, "{}"]);
        assert_eq!(parse(BodyKind::Json, b"[]"), Err(RecordsError::Empty));
    }

    #[test]
    fn json_errors() {
        assert!(matches!(
            parse(BodyKind::Json, b"[\"a\""),
            Err(RecordsError::InvalidJson(_))
        ));
        let err = parse(BodyKind::Json, b"[\"a\", 3]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected a JSON array of strings or objects, element 1 is a number"
        );
        assert!(matches!(
            parse(BodyKind::Json, b"{}"),
            Err(RecordsError::NotRecords(_))
        ));
    }
}
