//! The mapping between a pipeline spec and a Kafka Connect connector's flat string `config`
//! map (docs/connect.md):
//!
//! | key               | meaning                                                          |
//! |-------------------|------------------------------------------------------------------|
//! | `connector.class` | [`CLASS`]: every pipeline is a connector of this class           |
//! | `name`            | the spec's `name`                                                |
//! | `sluice.spec`     | the whole spec, as YAML text (as written: `${VAR}` unexpanded)   |
//! | `topics`          | a Kafka source's topic; given on a write, it replaces the spec's |
//! | `tasks.max`       | the spec's `parallelism`; given on a write, it replaces it       |
//!
//! A write needs `sluice.spec`; any other key is refused by name, so that a setting a user
//! believes applied is never dropped silently.

use std::collections::BTreeMap;

use serde_yaml::Value as Yaml;

/// The `connector.class` of a sluice pipeline.
pub const CLASS: &str = "io.sluice.connect.Pipeline";
/// The key that holds the whole spec.
pub const SPEC: &str = "sluice.spec";

/// A connector's config: flat strings, sorted by key (as Connect shows it).
pub type ConfigMap = BTreeMap<String, String>;

/// What a pipeline's config map says, from its spec text and the spec in force.
pub struct Mapped<'a> {
    /// The spec file's text.
    pub raw: &'a str,
    /// The pipeline's name.
    pub name: &'a str,
    /// The Kafka source's topic (interpolated), none for other sources.
    pub topic: Option<&'a str>,
    /// `parallelism`, when the spec sets it.
    pub parallelism: Option<usize>,
}

/// The config map of a pipeline.
pub fn to_config(mapped: &Mapped<'_>) -> ConfigMap {
    let mut config = ConfigMap::new();
    config.insert("connector.class".into(), CLASS.into());
    config.insert("name".into(), mapped.name.into());
    config.insert(SPEC.into(), mapped.raw.into());
    if let Some(topic) = mapped.topic {
        config.insert("topics".into(), topic.into());
    }
    if let Some(tasks) = mapped.parallelism {
        config.insert("tasks.max".into(), tasks.to_string());
    }
    config
}

/// Why a config map does not make a spec.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error(
        "The config has no `{SPEC}`: it holds the pipeline spec as YAML text (see docs/connect.md)."
    )]
    NoSpec,
    #[error("`connector.class` is `{0}`; sluice runs pipelines only: use `{CLASS}`.")]
    Class(String),
    #[error(
        "Unknown config key(s) {0}: a sluice connector takes `connector.class`, `name`, `{SPEC}`, `topics` and `tasks.max`."
    )]
    Unknown(String),
    #[error("`{SPEC}` is not a YAML mapping: {0}")]
    Yaml(String),
    #[error("`{key}` is `{value}`: {why}")]
    Value {
        key: &'static str,
        value: String,
        why: &'static str,
    },
    #[error(
        "The connector is named `{given}` but its `{key}` names `{spec}`; they must be the same."
    )]
    Name {
        key: &'static str,
        given: String,
        spec: String,
    },
}

/// The spec text a config map stands for, for the connector named `name`. The text of
/// `sluice.spec` is kept as it is (comments and all) unless `topics` or `tasks.max` change it.
pub fn to_spec(name: &str, config: &ConfigMap) -> Result<String, ConfigError> {
    let known = ["connector.class", "name", SPEC, "topics", "tasks.max"];
    let unknown: Vec<String> = config
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| format!("`{k}`"))
        .collect();
    if !unknown.is_empty() {
        return Err(ConfigError::Unknown(unknown.join(", ")));
    }
    if let Some(class) = config
        .get("connector.class")
        .filter(|c| c.as_str() != CLASS)
    {
        return Err(ConfigError::Class(class.clone()));
    }
    if let Some(given) = config.get("name").filter(|n| n.as_str() != name) {
        return Err(ConfigError::Name {
            key: "name",
            given: name.into(),
            spec: given.clone(),
        });
    }
    let raw = config.get(SPEC).ok_or(ConfigError::NoSpec)?;
    let mut spec: Yaml = serde_yaml::from_str(raw).map_err(|e| ConfigError::Yaml(e.to_string()))?;
    let Some(map) = spec.as_mapping_mut() else {
        return Err(ConfigError::Yaml("it is not a mapping".into()));
    };
    match map.get("name").and_then(Yaml::as_str) {
        Some(spec_name) if spec_name != name => {
            return Err(ConfigError::Name {
                key: SPEC,
                given: name.into(),
                spec: spec_name.into(),
            });
        }
        _ => {}
    }
    let mut changed = false;
    if let Some(topics) = config.get("topics") {
        let topic = topics.trim();
        if topic.is_empty() || topic.contains(',') {
            return Err(ConfigError::Value {
                key: "topics",
                value: topics.clone(),
                why: "a pipeline reads one topic",
            });
        }
        let kafka = map
            .get_mut("source")
            .and_then(|s| s.get_mut("kafka"))
            .and_then(Yaml::as_mapping_mut)
            .ok_or(ConfigError::Value {
                key: "topics",
                value: topics.clone(),
                why: "the spec's source is not Kafka",
            })?;
        if kafka.get("topic").and_then(Yaml::as_str) != Some(topic) {
            kafka.insert("topic".into(), topic.into());
            changed = true;
        }
    }
    if let Some(tasks) = config.get("tasks.max") {
        let n: u64 = tasks
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(ConfigError::Value {
                key: "tasks.max",
                value: tasks.clone(),
                why: "it must be a whole number above 0",
            })?;
        if map.get("parallelism").and_then(Yaml::as_u64) != Some(n) {
            map.insert("parallelism".into(), n.into());
            changed = true;
        }
    }
    if !changed {
        return Ok(raw.clone());
    }
    serde_yaml::to_string(&spec).map_err(|e| ConfigError::Yaml(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_TEXT: &str = "# the turnstile pipeline\nversion: 1\nname: t\nsource:\n  kafka: { brokers: embedded, topic: a }\nsinks: [ { stdout: {} } ]\n";

    fn config(pairs: &[(&str, &str)]) -> ConfigMap {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn the_spec_text_is_kept_unless_a_key_changes_it() {
        let same = config(&[
            (SPEC, SPEC_TEXT),
            ("connector.class", CLASS),
            ("name", "t"),
            ("topics", "a"),
        ]);
        assert_eq!(to_spec("t", &same).unwrap(), SPEC_TEXT);
        let moved = config(&[(SPEC, SPEC_TEXT), ("topics", "b"), ("tasks.max", "3")]);
        let text = to_spec("t", &moved).unwrap();
        let yaml: Yaml = serde_yaml::from_str(&text).unwrap();
        assert_eq!(yaml["source"]["kafka"]["topic"], "b");
        assert_eq!(yaml["parallelism"], 3);
        let round = to_config(&Mapped {
            raw: &text,
            name: "t",
            topic: Some("b"),
            parallelism: Some(3),
        });
        assert_eq!(to_spec("t", &round).unwrap(), text);
    }

    #[test]
    fn refusals_name_the_key() {
        let cases = [
            (config(&[]), ConfigError::NoSpec),
            (
                config(&[(SPEC, SPEC_TEXT), ("connector.class", "FileStreamSink")]),
                ConfigError::Class("FileStreamSink".into()),
            ),
            (
                config(&[(SPEC, SPEC_TEXT), ("key.converter", "x")]),
                ConfigError::Unknown("`key.converter`".into()),
            ),
            (
                config(&[(SPEC, "name: other\n")]),
                ConfigError::Name {
                    key: SPEC,
                    given: "t".into(),
                    spec: "other".into(),
                },
            ),
        ];
        for (config, want) in cases {
            assert_eq!(to_spec("t", &config).unwrap_err(), want);
        }
        let bad = to_spec("t", &config(&[(SPEC, SPEC_TEXT), ("tasks.max", "0")])).unwrap_err();
        assert!(bad.to_string().contains("`tasks.max` is `0`"), "{bad}");
        let two = to_spec("t", &config(&[(SPEC, SPEC_TEXT), ("topics", "a,b")])).unwrap_err();
        assert!(two.to_string().contains("one topic"), "{two}");
    }
}
