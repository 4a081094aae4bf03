//! Unit tests of config reading, schema checks and row extraction.

use super::*;
use sluice_plugin_sdk::{BatchBuilder, ColumnsBuilder};

fn parsed_schema() -> Vec<Field> {
    let s = |n| Field::new(n, FieldType::Str);
    let mut f: Vec<Field> = [
        "ca", "unit", "scp", "station", "linename", "division", "desc",
    ]
    .map(s)
    .into();
    f.push(Field::new("timestamp", FieldType::Timestamp));
    f.push(Field::new("entries", FieldType::Int64));
    f.push(Field::new("exits", FieldType::Int64));
    f
}

fn plan(config: &str) -> Result<Plan, String> {
    Plan::new(&Settings::from_json(config)?, &parsed_schema(), "timestamp")
}

#[test]
fn defaults_and_explicit_settings() {
    let s = Settings::from_json(r#"{"counters":"cumulative"}"#).unwrap();
    assert_eq!(
        (s.group_by, s.key, s.values),
        (
            vec!["station".into()],
            strings(&["ca", "unit", "scp"]),
            strings(&["entries", "exits"])
        )
    );
    let s = Settings::from_json(
        r#"{"counters":"incremental","group_by":["station","linename"],"values":["exits"]}"#,
    )
    .unwrap();
    let names: Vec<String> = s.output_schema(false).into_iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        strings(&["station", "linename", "window_start", "window_end", "exits"])
    );
}

#[test]
fn bad_configs_say_what_is_wrong() {
    let cases = [
        ("{}", "`counters` is required"),
        (r#"{"counters":"sum"}"#, "`counters` is \"sum\""),
        (
            r#"{"counters":"incremental","key":["ca"]}"#,
            "only applies to `counters: cumulative`",
        ),
        (
            r#"{"counters":"cumulative","colour":1}"#,
            "unknown config key(s) `colour`",
        ),
        (
            r#"{"counters":"cumulative","emit_early":"yes"}"#,
            "`emit_early` must be true or false, not a string",
        ),
        (
            r#"{"counters":"cumulative","group_by":"station"}"#,
            "must be an array of strings",
        ),
    ];
    for (config, expected) in cases {
        let e = Settings::from_json(config).unwrap_err();
        assert!(e.contains(expected), "{config}: {e}");
    }
}

#[test]
fn plans_check_fields_and_types() {
    let cases = [
        (
            r#"{"counters":"cumulative","group_by":["stn"]}"#,
            "group_by field `stn` is not in the input schema [ca, unit",
        ),
        (
            r#"{"counters":"cumulative","group_by":["entries"]}"#,
            "group_by field `entries` must be str, but the input has int64",
        ),
        (
            r#"{"counters":"cumulative","values":["station"]}"#,
            "values field `station` must be int64",
        ),
        (
            r#"{"counters":"cumulative","key":["timestamp"]}"#,
            "key field `timestamp` must be str",
        ),
        (
            r#"{"counters":"cumulative","values":[]}"#,
            "`values` must name at least one field",
        ),
        (
            r#"{"counters":"cumulative","key":[]}"#,
            "`key` must name at least one field",
        ),
        (
            r#"{"counters":"cumulative","key":["ca","ca"]}"#,
            "names `ca` twice",
        ),
        (
            r#"{"counters":"cumulative","group_by":["station","station"]}"#,
            "`station` would appear twice",
        ),
    ];
    for (config, expected) in cases {
        let e = plan(config).unwrap_err();
        assert!(e.contains(expected), "{config}: {e}");
    }
    let e = Plan::new(
        &Settings::from_json(r#"{"counters":"incremental"}"#).unwrap(),
        &parsed_schema(),
        "station",
    );
    assert!(
        e.unwrap_err()
            .contains("event_time field `station` must be timestamp")
    );
    let mut no_key_fields = parsed_schema();
    no_key_fields.remove(0);
    assert!(
        Plan::new(
            &Settings::from_json(r#"{"counters":"incremental"}"#).unwrap(),
            &no_key_fields,
            "timestamp"
        )
        .is_ok()
    );
}

#[test]
fn window_specs_are_checked() {
    let spec = |size, slide| WindowSpec {
        event_time: "timestamp".into(),
        size,
        slide,
    };
    assert_eq!(
        check_window(&spec(10, 5)),
        Ok(Windows { size: 10, slide: 5 })
    );
    assert!(check_window(&spec(0, 0)).is_err());
    assert!(check_window(&spec(10, 20)).is_err());
    assert!(check_window(&spec(10, -1)).is_err());
    assert!(
        check_window(&spec(1_000_000, 1))
            .unwrap_err()
            .contains("too many windows")
    );
}

/// One row of the parsed schema (`schema`), with `station` null when `station` is `None`.
fn one_row(schema: &[Field], station: Option<&str>) -> ColumnsBuilder {
    let mut b = ColumnsBuilder::new(schema);
    for (i, s) in ["A1", "R1", "S1", "", "N", "BMT", "REGULAR"]
        .iter()
        .enumerate()
    {
        match (i, station) {
            (3, None) => b.push_null(),
            (3, Some(name)) => b.push_str(name),
            _ => b.push_str(s),
        }
    }
    b.push_i64(42);
    b.push_i64(7);
    b.push_i64(9);
    b.end_row();
    b
}

#[test]
fn extracts_keys_time_and_values() {
    let p = plan(r#"{"counters":"cumulative","group_by":["station","ca"],"key":["scp","ca"]}"#)
        .unwrap();
    let schema = parsed_schema();
    let b = one_row(&schema, Some("59 ST"));
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    let batch = b.view(&mut arena, &mut columns).unwrap();
    let mut x = Extracted::default();
    let view = p.columns(&batch).unwrap();
    view.extract(0, &mut x).unwrap();
    let enc = |f: &[&str]| {
        let mut k = BatchBuilder::new();
        f.iter().for_each(|s| k.put_str(s));
        k.data
    };
    assert_eq!(
        (x.group.clone(), x.key.clone()),
        (enc(&["59 ST", "A1"]), enc(&["S1", "A1"]))
    );
    assert_eq!((x.ts, x.values.clone()), (42, vec![7, 9]));
    let e = view.extract(1, &mut x).unwrap_err();
    assert_eq!(e, "field `timestamp` is null or lies outside the batch");
}

#[test]
fn nulls_in_used_fields_are_record_failures() {
    let mut schema = parsed_schema();
    schema[3].nullable = true;
    let p = Plan::new(
        &Settings::from_json(r#"{"counters":"incremental"}"#).unwrap(),
        &schema,
        "timestamp",
    )
    .unwrap();
    let b = one_row(&schema, None);
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    let batch = b.view(&mut arena, &mut columns).unwrap();
    let e = p
        .columns(&batch)
        .unwrap()
        .extract(0, &mut Extracted::default())
        .unwrap_err();
    assert_eq!(e, "field `station` is null or lies outside the batch");
}
