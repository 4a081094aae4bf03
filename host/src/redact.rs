//! Credentials out of everything the host shows: API answers, errors, live events and
//! pipeline notes. [`text`] masks the password of URLs (`postgres://u:***@h/db`) and the
//! value of every credential-like key (`password: ***`, `"sasl.password": "***"`,
//! `password=***`), in YAML, JSON or `key=value` text alike; [`json`] masks credential keys
//! of JSON objects and applies [`text`] to every string.

use serde_json::Value as Json;

/// What a masked value becomes.
pub const MASK: &str = "***";

/// Key names (lower case, matched as substrings) whose values are credentials.
const SENSITIVE: [&str; 12] = [
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "private_key",
    "private.key",
    "ssl.key",
    "access_key",
    "api_key",
    "apikey",
    "sasl.jaas.config",
];

/// Whether values under `key` are credentials.
pub fn is_sensitive_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SENSITIVE.iter().any(|s| key.contains(s))
}

/// `s` with URL passwords and credential values masked.
pub fn text(s: &str) -> String {
    values(&url_passwords(s))
}

/// Masks `value` in place: credential keys' scalar values become [`MASK`], every string is
/// passed through [`text`].
pub fn json(value: &mut Json) {
    match value {
        Json::String(s) => {
            let masked = text(s);
            if masked != *s {
                *s = masked;
            }
        }
        Json::Array(items) => items.iter_mut().for_each(json),
        Json::Object(map) => {
            for (key, item) in map.iter_mut() {
                let scalar = matches!(item, Json::String(_) | Json::Number(_));
                if scalar && is_sensitive_key(key) {
                    *item = Json::String(MASK.into());
                } else {
                    json(item);
                }
            }
        }
        _ => {}
    }
}

/// Characters that end a URL's authority.
fn ends_authority(c: char) -> bool {
    c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"' | '\'' | ',' | '}' | ']' | '`')
}

/// Masks the password of every `scheme://user:password@host` in `s`.
fn url_passwords(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("://") {
        let start = at + 3;
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = after.find(ends_authority).unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(user_end) => {
                let userinfo = &authority[..user_end];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str(MASK);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[user_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Masks the values of credential keys: `key: value`, `"key": "value"`, `key=value`.
fn values(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut done = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let sep = bytes[i];
        if (sep == b':' || sep == b'=')
            && !s[i + 1..].starts_with("//")
            && let Some(value) = sensitive_value(s, i)
        {
            out.push_str(&s[done..value.start]);
            out.push_str(MASK);
            done = value.end;
            i = value.end;
            continue;
        }
        i += 1;
    }
    out.push_str(&s[done..]);
    out
}

/// The byte range of the value after the separator at `sep`, when the key before it is a
/// credential key (quotes around the value are kept outside the range).
fn sensitive_value(s: &str, sep: usize) -> Option<std::ops::Range<usize>> {
    let before = s[..sep].trim_end_matches([' ', '\t']);
    let before = before
        .strip_suffix(['"', '\''])
        .unwrap_or(before)
        .trim_end_matches([' ', '\t']);
    let key_start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_key_char(*c))
        .last()
        .map(|(i, _)| i)?;
    if !is_sensitive_key(&before[key_start..]) {
        return None;
    }
    let after = &s[sep + 1..];
    let lead = after.len() - after.trim_start_matches([' ', '\t']).len();
    let start = sep + 1 + lead;
    let value = &s[start..];
    let end = match value.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let mut escaped = false;
            let close = value[1..].char_indices().find(|(_, c)| {
                let hit = *c == q && !escaped;
                escaped = *c == '\\' && !escaped;
                hit
            });
            return Some(match close {
                Some((n, _)) => start + 1..start + 1 + n,
                None => start + 1..s.len(),
            });
        }
        _ if s.as_bytes()[sep] == b'=' => value
            .find(|c: char| c.is_whitespace() || matches!(c, ',' | '}' | ']' | '&' | ';'))
            .unwrap_or(value.len()),
        _ => value.find(['\n', ',', '}', ']']).unwrap_or(value.len()),
    };
    let trimmed = value[..end].trim_end();
    (!trimmed.is_empty()).then_some(start..start + trimmed.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json as j;

    use super::*;

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            text("url: postgres://bob:s3cret@db:5432/wh, lake: s3://bucket/x"),
            "url: postgres://bob:***@db:5432/wh, lake: s3://bucket/x"
        );
        assert_eq!(text("http://u@h/p"), "http://u@h/p");
        assert_eq!(text("\"http://a:b@h\""), "\"http://a:***@h\"");
    }

    #[test]
    fn credential_values_are_masked_in_yaml_json_and_pairs() {
        assert_eq!(
            text("properties:\n  sasl.password: hunter 2\n  group.id: g\n"),
            "properties:\n  sasl.password: ***\n  group.id: g\n"
        );
        assert_eq!(
            text("{ \"sasl.password\": \"a\\\"b\", \"x\": 1 }"),
            "{ \"sasl.password\": \"***\", \"x\": 1 }"
        );
        assert_eq!(
            text("host=h password=pw user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            text("{ api_token: t0k, key: [station] }"),
            "{ api_token: ***, key: [station] }"
        );
        assert_eq!(text("time: 10:00:00"), "time: 10:00:00");
        assert_eq!(text("password:"), "password:");
    }

    #[test]
    fn json_masks_keys_and_strings() {
        let mut v = j!({
            "config": { "password": "pw", "url": "postgres://u:pw@h/d", "port": 5432 },
            "spec": "secret_access_key: abc\nname: x",
            "list": [{ "token": 7 }],
        });
        json(&mut v);
        assert_eq!(
            v,
            j!({
                "config": { "password": "***", "url": "postgres://u:***@h/d", "port": 5432 },
                "spec": "secret_access_key: ***\nname: x",
                "list": [{ "token": "***" }],
            })
        );
    }
}
