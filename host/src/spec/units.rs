//! Human-readable durations (`4h`, `100ms`) and byte sizes (`256MiB`, `1GB`, `4096`) in specs.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written like `4h`, `90s` or `100ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim())
            .map(Dur)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a duration ({e}); write it like `4h`, `30s` or `100ms`"
                ))
            })
    }
}

impl Dur {
    /// Milliseconds, saturating.
    pub fn millis(&self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A size in bytes, written as a number or like `256MiB`, `64KB`, `1GiB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(text) => parse_size(&text).map(ByteSize).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a size; write it like `256MiB`, `64KB` or `4096`"
                ))
            }),
        }
    }
}

/// A size option of the command line (`1GiB`, `4096`).
pub fn parse_size_arg(text: &str) -> Result<u64, String> {
    parse_size(text)
        .ok_or_else(|| format!("`{text}` is not a size; write it like `1GiB` or `4096`"))
}

fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Some(256 << 20));
        assert_eq!(parse_size("64KB"), Some(64_000));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("12 parsecs"), None);
    }

    #[test]
    fn durations() {
        let d: Dur = serde_yaml::from_str("4h").unwrap();
        assert_eq!(d.millis(), 4 * 3600 * 1000);
        let err = serde_yaml::from_str::<Dur>("soon").unwrap_err().to_string();
        assert!(err.contains("is not a duration"), "{err}");
    }
}
