//! Unit tests of the config JSON reader.

use super::*;

#[test]
fn parses_values() {
    let v = parse(
        r#" {"a": [1, -2.5e1, true, false, null], "b": "x\"\\\n\u00e9\ud83d\ude00", "c": {}} "#,
    )
    .unwrap();
    let Json::Obj(entries) = v else {
        panic!("not an object")
    };
    assert_eq!(entries[0].0, "a");
    assert_eq!(
        entries[0].1,
        Json::Arr(vec![
            Json::Num(1.0),
            Json::Num(-25.0),
            Json::Bool(true),
            Json::Bool(false),
            Json::Null
        ])
    );
    assert_eq!(entries[1].1, Json::Str("x\"\\\né😀".to_string()));
    assert_eq!(entries[2].1, Json::Obj(vec![]));
    assert_eq!(parse("[]").unwrap(), Json::Arr(vec![]));
}

#[test]
fn rejects_malformed_json() {
    for bad in [
        "",
        "{",
        "[1,]",
        "{\"a\" 1}",
        "{a: 1}",
        "\"abc",
        "tru",
        "1 2",
        "-",
        "\"\\x\"",
        "\"\\u12\"",
        "{\"a\":1,}",
        "\"\u{1}\"",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} should not parse");
    }
    let deep = "[".repeat(100) + &"]".repeat(100);
    assert!(parse(&deep).unwrap_err().contains("deeply"));
}

#[test]
fn config_takes_keys_and_rejects_the_rest() {
    let mut c = parse_config(r#"{"format": "auto", "list": ["a", "b"], "extra": 1}"#).unwrap();
    assert_eq!(c.take_str("format").unwrap().as_deref(), Some("auto"));
    assert_eq!(c.take_str("missing").unwrap(), None);
    assert_eq!(
        c.take_str_list("list").unwrap(),
        Some(vec!["a".to_string(), "b".to_string()])
    );
    let err = c.finish(&["format", "list"]).unwrap_err();
    assert!(
        err.contains("`extra`") && err.contains("`format`, `list`"),
        "{err}"
    );
}

#[test]
fn config_type_errors_name_the_key() {
    let mut c = parse_config(r#"{"format": 3, "list": [1]}"#).unwrap();
    assert!(
        c.take_str("format")
            .unwrap_err()
            .contains("`format` must be a string, not a number")
    );
    assert!(
        c.take_str_list("list")
            .unwrap_err()
            .contains("array of strings")
    );
    assert!(
        parse_config("[1]")
            .unwrap_err()
            .contains("must be a JSON object")
    );
    assert!(parse_config("{").unwrap_err().contains("not valid JSON"));
}

#[test]
fn empty_and_null_configs_are_empty_objects() {
    for text in ["", "  ", "null", "{}"] {
        parse_config(text).unwrap().finish(&[]).unwrap();
    }
}
