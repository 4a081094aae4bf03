use super::*;

fn schema() -> Vec<Field> {
    vec![
        Field::new("station", FieldType::Str),
        Field::new("window_start", FieldType::Timestamp),
        Field::new("window_end", FieldType::Timestamp),
        Field::new("entries", FieldType::Int64),
        Field::nullable("ratio", FieldType::Float64),
    ]
}

fn key(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn table_names() {
    let t = TableName::parse("analytics.turnstile_windows").unwrap();
    assert_eq!(t.quoted(), "\"analytics\".\"turnstile_windows\"");
    assert_eq!(t.to_string(), "analytics.turnstile_windows");
    assert_eq!(TableName::parse("T1").unwrap().quoted(), "\"T1\"");
    for bad in [
        "",
        "a.b.c",
        "1abc",
        "a-b",
        "x; DROP TABLE y",
        "a.",
        "\"q\"",
        "é",
    ] {
        assert!(TableName::parse(bad).is_err(), "{bad}");
    }
    let err = TableName::parse("turnstile-windows").unwrap_err();
    assert!(err.contains("`turnstile-windows`"), "{err}");
    assert!(TableName::parse(&"a".repeat(64)).is_err());
}

#[test]
fn keys_are_checked() {
    let s = schema();
    let err = Layout::new("t", &key(&["station", "day"]), &s).unwrap_err();
    assert!(
        err.contains("`day`") && err.contains("station, window_start"),
        "{err}"
    );
    let err = Layout::new("t", &key(&[]), &s).unwrap_err();
    assert!(err.contains("empty"), "{err}");
    let err = Layout::new("t", &key(&["station", "station"]), &s).unwrap_err();
    assert!(err.contains("twice"), "{err}");
    let err = Layout::new("t", &key(&["ratio"]), &s).unwrap_err();
    assert!(err.contains("`ratio`") && err.contains("null"), "{err}");
}

#[test]
fn field_names_are_checked() {
    let mut s = schema();
    s.push(Field::new("bad name", FieldType::Str));
    let err = Layout::new("t", &key(&["station"]), &s).unwrap_err();
    assert!(err.contains("field `bad name`"), "{err}");
    let s = vec![Field::new("_sluice_pipeline", FieldType::Str)];
    let err = Layout::new("t", &key(&["_sluice_pipeline"]), &s).unwrap_err();
    assert!(err.contains("reserves"), "{err}");
}

#[test]
fn ddl() {
    let layout = Layout::new("a.t", &key(&["station", "window_start"]), &schema()).unwrap();
    assert_eq!(
        layout.create_table(),
        "CREATE TABLE IF NOT EXISTS \"a\".\"t\" (\n    \"station\" TEXT NOT NULL,\n    \
         \"window_start\" TIMESTAMP NOT NULL,\n    \"window_end\" TIMESTAMP NOT NULL,\n    \
         \"entries\" BIGINT NOT NULL,\n    \"ratio\" DOUBLE PRECISION,\n    \
         \"_sluice_pipeline\" TEXT NOT NULL,\n    \
         \"_sluice_loaded_at\" TIMESTAMPTZ NOT NULL DEFAULT now(),\n    \
         PRIMARY KEY (\"station\", \"window_start\")\n)"
    );
    assert_eq!(
        layout.create_schema().unwrap(),
        "CREATE SCHEMA IF NOT EXISTS \"a\""
    );
}

#[test]
fn upsert_updates_only_values() {
    let layout = Layout::new("t", &key(&["station", "window_start"]), &schema()).unwrap();
    let sql = layout.upsert();
    assert!(
        sql.contains("ON CONFLICT (\"station\", \"window_start\") DO UPDATE SET"),
        "{sql}"
    );
    assert!(sql.contains("\"entries\" = EXCLUDED.\"entries\""), "{sql}");
    assert!(!sql.contains("\"station\" = EXCLUDED"), "{sql}");
    assert!(sql.contains("\"_sluice_loaded_at\" = now()"), "{sql}");
    assert!(!sql.contains('\''), "no literal in {sql}");
}
