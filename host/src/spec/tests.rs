//! Spec loading tests: valid specs, and every kind of user error with its position.

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

const GOOD: &str = r#"version: 1
name: turnstile
source:
  kafka: { brokers: "${KAFKA_BROKERS:-embedded}", topic: t, group: g }
steps:
  - transform: { plugin: turnstile-parse@^0.1, config: { format: auto } }
  - window:
      plugin: turnstile-window@^0.1
      event_time: timestamp
      size: 4h
      delay: 4h
      config: { counters: cumulative, group_by: [station] }
sinks:
  - lake: { url: "file://./lake", partition_by: [station, window_start] }
"#;

#[test]
fn loads_a_full_spec() {
    let loaded = load_str("t.yaml", GOOD, &no_env).unwrap();
    let SourceSpec::Kafka(kafka) = &loaded.spec.source else {
        panic!("kafka source")
    };
    assert_eq!(kafka.brokers, "embedded");
    assert_eq!(loaded.spec.steps.len(), 2);
    let StepSpec::Window(w) = &loaded.spec.steps[1] else {
        panic!("window step")
    };
    assert_eq!(w.size.millis(), 4 * 3_600_000);
    assert_eq!(w.config["counters"], "cumulative");
}

#[test]
fn unknown_field_names_the_place() {
    let text = GOOD.replace("size: 4h", "sise: 4h");
    let err = load_str("t.yaml", &text, &no_env).unwrap_err().to_string();
    assert!(err.starts_with("t.yaml:10:7: "), "{err}");
    assert!(err.contains("unknown field `sise`"), "{err}");
}

#[test]
fn unknown_sink_kind_names_the_place() {
    let text = GOOD.replace("- lake:", "- lakehouse:");
    let err = load_str("t.yaml", &text, &no_env).unwrap_err().to_string();
    assert!(err.starts_with("t.yaml:14:5: "), "{err}");
    assert!(err.contains("unknown variant `lakehouse`"), "{err}");
}

#[test]
fn bad_duration_and_version_and_name() {
    let text = GOOD.replace("delay: 4h", "delay: soon");
    let err = load_str("t.yaml", &text, &no_env).unwrap_err().to_string();
    assert!(err.contains("`soon` is not a duration"), "{err}");
    assert!(err.starts_with("t.yaml:8:7: steps[1].window: "), "{err}");

    let text = GOOD
        .replace("version: 1", "version: 3")
        .replace("name: turnstile", "name: a b");
    let err = load_str("t.yaml", &text, &no_env).unwrap_err();
    assert_eq!(err.0.len(), 2);
    assert_eq!((err.0[0].line, err.0[0].column), (1, 1));
    assert_eq!((err.0[1].line, err.0[1].column), (2, 1));
}

#[test]
fn unset_variable_is_reported() {
    let text = GOOD.replace("topic: t", "topic: ${TOPIC}");
    let err = load_str("t.yaml", &text, &no_env).unwrap_err().to_string();
    assert!(
        err.contains("t.yaml:4:") && err.contains("`TOPIC` is not set"),
        "{err}"
    );
}

#[test]
fn not_yaml_at_all() {
    let err = load_str("t.yaml", "version: [1\n", &no_env)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("t.yaml:"), "{err}");
}

#[test]
fn deep_brackets_are_refused_before_the_yaml_parser() {
    // Found with the spec_load fuzz target: serde_yaml's scanner took 30 s (release) on this
    // 200 KB spec before refusing it, quadratic in the depth.
    let text = GOOD.replace(
        "{ format: auto }",
        &format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)),
    );
    let started = std::time::Instant::now();
    let err = load_str("t.yaml", &text, &no_env).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(err.0.len(), 1);
    // The step's own `{` is the first level: the 128th `[` is one too many.
    let first = text.lines().nth(5).unwrap().find('[').unwrap() + 1;
    assert_eq!((err.0[0].line, err.0[0].column), (6, first + 127), "{err}");
    assert!(err.to_string().contains("more than 128 levels"), "{err}");
}

#[test]
fn brackets_in_quotes_and_comments_do_not_count_as_nesting() {
    let deep = "[".repeat(200);
    let text = GOOD
        .replace("version: 1", &format!("version: 1 # {deep}\n# {deep}"))
        .replace(
            "{ format: auto }",
            &format!("{{ format: auto, a: \"{deep}\\\"{deep}\", b: '{deep}''{deep}' }}"),
        );
    let loaded = load_str("t.yaml", &text, &no_env).unwrap();
    let StepSpec::Transform(t) = &loaded.spec.steps[0] else {
        panic!("transform step")
    };
    assert_eq!(t.config["b"], format!("{deep}'{deep}"));
    // Up to the limit, the YAML parser decides (here: serde_yaml's own recursion limit).
    let text = GOOD.replace(
        "{ format: auto }",
        &format!("{}1{}", "[".repeat(127), "]".repeat(127)),
    );
    let err = load_str("t.yaml", &text, &no_env).unwrap_err().to_string();
    assert!(err.contains("recursion limit exceeded"), "{err}");
}

#[test]
fn lake_formats_take_their_compressions_and_name_the_mismatch() {
    use crate::sinks::SinkConfig;
    use sluice_plugin_sdk::rows::{Field, FieldType};
    let schema = [
        Field::new("station", FieldType::Str),
        Field::new("window_start", FieldType::Timestamp),
    ];
    let lake = |extra: &str| {
        let text = GOOD.replace("partition_by: [station, window_start]", extra);
        let loaded = load_str("t.yaml", &text, &no_env).unwrap();
        let SinkSpec::Lake(lake) = loaded.spec.sinks[0].clone() else {
            panic!("lake sink")
        };
        lake
    };
    let parquet = lake("format: parquet, partition_by: [window_start]");
    assert_eq!(parquet.compression(), Compression::Zstd);
    parquet.check(&schema, "p").unwrap();
    assert_eq!(lake("format: csv").compression(), Compression::Gzip);
    let err = lake("format: csv, compression: zstd")
        .check(&schema, "p")
        .unwrap_err();
    assert!(err.contains("csv takes gzip or none"), "{err}");
    let err = lake("format: delta, compression: gzip")
        .check(&schema, "p")
        .unwrap_err();
    assert!(
        err.contains("parquet and delta take zstd, snappy or none"),
        "{err}"
    );
    let err = lake("format: delta, partition_by: [station, window_start]")
        .check(&schema, "p")
        .unwrap_err();
    assert!(err.contains("at least one column besides"), "{err}");
    let text = GOOD.replace("partition_by: [station, window_start]", "format: iceberg");
    let err = load_str("t.yaml", &text, &no_env).unwrap_err().to_string();
    assert!(err.starts_with("t.yaml:14:"), "{err}");
    assert!(
        err.contains("unknown variant `iceberg`, expected one of `csv`, `parquet`, `delta`"),
        "{err}"
    );
}

#[test]
fn every_registered_kind_is_a_key_of_the_spec() {
    for (kind, body) in [
        ("lake", "{ url: \"memory://\" }"),
        ("stdout", "{}"),
        ("live", "{}"),
        ("postgres", "{ url: \"\", table: t, key: [station] }"),
        ("kafka", "{ topic: t }"),
    ] {
        assert!(crate::sinks::registry::KINDS.contains(&kind));
        let text = GOOD.replace(
            "- lake: { url: \"file://./lake\", partition_by: [station, window_start] }",
            &format!("- {kind}: {body}"),
        );
        let loaded = load_str("t.yaml", &text, &no_env).unwrap();
        assert_eq!(loaded.spec.sinks[0].key(), kind);
    }
    assert_eq!(crate::sinks::registry::KINDS.len(), 5);
    assert_eq!(crate::sources::registry::KINDS, ["kafka", "file", "http"]);
    let loaded = load_str("t.yaml", GOOD, &no_env).unwrap();
    assert_eq!(loaded.spec.source.key(), "kafka");
}
