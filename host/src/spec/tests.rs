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
