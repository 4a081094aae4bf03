//! Unit tests of the plugin surface: rows in, rows out, snapshot and restore.

use super::*;
use sluice_plugin_sdk::rows::decode_row;
use sluice_plugin_sdk::{ColumnsBuilder, FieldType, Value};

const H: i64 = 3_600_000;

fn input_schema() -> Vec<Field> {
    let s = |n| Field::new(n, FieldType::Str);
    let mut f: Vec<Field> = ["ca", "unit", "scp", "station"].map(s).into();
    f.push(Field::new("timestamp", FieldType::Timestamp));
    f.push(Field::new("entries", FieldType::Int64));
    f.push(Field::new("exits", FieldType::Int64));
    f
}

fn spec() -> WindowSpec {
    WindowSpec {
        event_time: "timestamp".into(),
        size: 4 * H,
        slide: 4 * H,
    }
}

fn init(counters: &str) -> TurnstileWindow {
    let config = format!(r#"{{"counters":"{counters}"}}"#);
    TurnstileWindow::init(&config, &input_schema(), &spec())
        .unwrap()
        .0
}

/// Readings: (turnstile scp, station, hour, entries, exits), the station column
/// dictionary-encoded (the byte path: the key columns are not).
fn batch(readings: &[(&str, &str, i64, i64, i64)]) -> ColumnsBuilder {
    batch_in(
        ColumnsBuilder::new(&input_schema()).dictionary("station"),
        readings,
    )
}

/// The readings with every text column dictionary-encoded, as turnstile-parse writes them
/// (the fast path of `dictionary.rs`).
fn dictionary_batch(readings: &[(&str, &str, i64, i64, i64)]) -> ColumnsBuilder {
    let b = ["ca", "unit", "scp", "station"]
        .iter()
        .fold(ColumnsBuilder::new(&input_schema()), |b, f| b.dictionary(f));
    batch_in(b, readings)
}

fn batch_in(mut b: ColumnsBuilder, readings: &[(&str, &str, i64, i64, i64)]) -> ColumnsBuilder {
    for &(scp, station, hour, e, x) in readings {
        for s in ["A002", "R051", scp, station] {
            b.push_str(s);
        }
        b.push_i64(hour * H);
        b.push_i64(e);
        b.push_i64(x);
        b.end_row();
    }
    b
}

/// An output for the window's rows.
fn output() -> Output {
    let (w, schema) =
        TurnstileWindow::init(r#"{"counters":"incremental"}"#, &input_schema(), &spec()).unwrap();
    w.output(&schema)
}

/// Processes the rows of a builder, as the export glue does with a batch.
trait ProcessRows {
    fn process_rows(&mut self, b: &ColumnsBuilder, wm: i64, out: &mut Output)
    -> Result<(), String>;
}

impl ProcessRows for TurnstileWindow {
    fn process_rows(
        &mut self,
        b: &ColumnsBuilder,
        wm: i64,
        out: &mut Output,
    ) -> Result<(), String> {
        let (mut arena, mut columns) = (Vec::new(), Vec::new());
        let batch = b
            .view(&mut arena, &mut columns)
            .map_err(|e| e.to_string())?;
        self.process(&batch, wm, out)
    }
}

fn rows_of(out: &Output) -> Vec<String> {
    let schema = TurnstileWindow::init(r#"{"counters":"incremental"}"#, &input_schema(), &spec())
        .unwrap()
        .1;
    let text = |v: &Value<'_>| match v {
        Value::Str(s) => s.to_string(),
        Value::Timestamp(t) => sluice_plugin_sdk::time::format_timestamp(*t),
        Value::Int64(i) => i.to_string(),
        other => format!("{other:?}"),
    };
    let rows = out.rows.to_rows().unwrap();
    rows.as_batch()
        .rows()
        .map(|r| {
            decode_row(&schema, r)
                .unwrap()
                .iter()
                .map(text)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

const STREAM: &[(&str, &str, i64, i64, i64)] = &[
    ("t1", "59 ST", 1, 100, 10),
    ("t2", "1 AV", 2, 5, 5),
    ("t1", "59 ST", 3, 110, 12),
    ("t2", "1 AV", 5, 9, 6),
    ("t1", "59 ST", 7, 111, 20),
    ("t1", "59 ST", 9, 120, 21),
    ("t2", "1 AV", 13, 19, 8),
];

#[test]
fn schema_and_metadata() {
    let (_, schema) =
        TurnstileWindow::init(r#"{"counters":"cumulative"}"#, &input_schema(), &spec()).unwrap();
    let names: Vec<&str> = schema.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["station", "window_start", "window_end", "entries", "exits"]
    );
    let m = TurnstileWindow::metadata();
    assert_eq!(m.name, "turnstile-window");
    assert!(sluice_plugin_sdk::json::parse(&m.config_schema).is_ok());
    assert!(TurnstileWindow::init(&m.sample_config, &input_schema(), &spec()).is_ok());
}

#[test]
fn cumulative_rows_come_out_in_window_then_station_order() {
    let mut w = init("cumulative");
    let mut out = output();
    w.process_rows(&batch(STREAM), 0, &mut out).unwrap();
    assert!(out.failures.is_empty() && out.rows.is_empty());
    w.advance(i64::MAX, &mut out).unwrap();
    assert_eq!(
        rows_of(&out),
        [
            "59 ST,1970-01-01 00:00:00,1970-01-01 04:00:00,10,2",
            "1 AV,1970-01-01 04:00:00,1970-01-01 08:00:00,4,1",
            "59 ST,1970-01-01 04:00:00,1970-01-01 08:00:00,1,8",
            "59 ST,1970-01-01 08:00:00,1970-01-01 12:00:00,9,1",
            "1 AV,1970-01-01 12:00:00,1970-01-01 16:00:00,10,2",
        ]
    );
    assert!(out.origins.is_empty());
}

#[test]
fn failures_point_at_the_input_row() {
    let mut w = init("cumulative");
    let mut out = output();
    let mut b = batch(&[("t1", "S", 5, 1, 1), ("t1", "S", 4, 1, 1)]);
    // A second reading of turnstile t2 (so that it pairs), with a station that is not text.
    for (hour, station) in [(1, &b"S"[..]), (2, b"\xff")] {
        for s in ["A002", "R051", "t2"] {
            b.push_str(s);
        }
        b.push_bytes(station);
        b.push_i64(hour * H);
        b.push_i64(1);
        b.push_i64(1);
        b.end_row();
    }
    w.process_rows(&b, 0, &mut out).unwrap();
    let idx: Vec<u32> = out.failures.iter().map(|f| f.0).collect();
    assert_eq!(idx, [1, 3]);
    assert!(out.failures[0].1.starts_with("late reading"));
    assert_eq!(
        out.failures[1].1,
        "a group_by field is not valid UTF-8 text"
    );
}

/// Runs STREAM in two halves, snapshotting and restoring into a fresh instance in between.
fn run_with_restore(counters: &str, cut: usize) -> Vec<String> {
    let mut first = init(counters);
    let mut out = output();
    first
        .process_rows(&batch(&STREAM[..cut]), 0, &mut out)
        .unwrap();
    first.advance(4 * H, &mut out).unwrap();
    let state = first.snapshot();
    let mut second = init(counters);
    second.restore(&state).unwrap();
    assert_eq!(second.snapshot(), state);
    second
        .process_rows(&batch(&STREAM[cut..]), 0, &mut out)
        .unwrap();
    second.advance(i64::MAX, &mut out).unwrap();
    rows_of(&out)
}

#[test]
fn the_dictionary_path_gives_the_byte_path_s_rows_and_state() {
    for counters in ["cumulative", "incremental"] {
        let (mut bytes, mut dict) = (init(counters), init(counters));
        let (mut a, mut b) = (output(), output());
        // In two batches, so that the second maps its entries to ids the first interned.
        for part in [&STREAM[..4], &STREAM[4..]] {
            bytes.process_rows(&batch(part), 0, &mut a).unwrap();
            dict.process_rows(&dictionary_batch(part), 0, &mut b)
                .unwrap();
        }
        assert_eq!(a.failures, b.failures, "{counters}");
        assert_eq!(bytes.snapshot(), dict.snapshot(), "{counters}");
        bytes.advance(i64::MAX, &mut a).unwrap();
        dict.advance(i64::MAX, &mut b).unwrap();
        assert_eq!(rows_of(&a), rows_of(&b), "{counters}");
        assert!(!rows_of(&a).is_empty());
        // A restored instance (empty caches) goes on the same.
        let mut restored = init(counters);
        restored.restore(&dict.snapshot()).unwrap();
        let (mut c, mut d) = (output(), output());
        restored
            .process_rows(&dictionary_batch(STREAM), 0, &mut c)
            .unwrap();
        dict.process_rows(&dictionary_batch(STREAM), 0, &mut d)
            .unwrap();
        assert_eq!(c.failures, d.failures);
        assert_eq!(restored.snapshot(), dict.snapshot());
    }
}

#[test]
fn restoring_an_earlier_state_into_a_running_instance_forgets_its_ids() {
    for counters in ["cumulative", "incremental"] {
        let mut w = init(counters);
        let early = w.snapshot();
        let mut out = output();
        w.process_rows(&dictionary_batch(STREAM), 0, &mut out)
            .unwrap();
        w.restore(&early).unwrap();
        let mut fresh = init(counters);
        let (mut a, mut b) = (output(), output());
        w.process_rows(&dictionary_batch(STREAM), 0, &mut a)
            .unwrap();
        fresh
            .process_rows(&dictionary_batch(STREAM), 0, &mut b)
            .unwrap();
        assert_eq!(w.snapshot(), fresh.snapshot(), "{counters}");
        assert_eq!(a.failures, b.failures);
    }
}

#[test]
fn snapshot_restore_mid_stream_changes_nothing() {
    for counters in ["cumulative", "incremental"] {
        let mut w = init(counters);
        let mut out = output();
        w.process_rows(&batch(STREAM), 0, &mut out).unwrap();
        w.advance(i64::MAX, &mut out).unwrap();
        let expected = rows_of(&out);
        for cut in 3..STREAM.len() {
            assert_eq!(
                run_with_restore(counters, cut),
                expected,
                "{counters}, cut at {cut}"
            );
        }
    }
}

#[test]
fn restore_rejects_garbage_and_foreign_snapshots() {
    let mut w = init("cumulative");
    w.process_rows(&batch(STREAM), 0, &mut output()).unwrap();
    let state = w.snapshot();
    let mut fresh = init("cumulative");
    for cut in 0..state.len() {
        assert!(fresh.restore(&state[..cut]).is_err(), "cut {cut}");
    }
    let mut flipped = state.clone();
    for i in 0..flipped.len() {
        flipped[i] ^= 0x5a;
        let _ = fresh.restore(&flipped);
        flipped[i] ^= 0x5a;
    }
    assert!(
        fresh
            .restore(&[0xff; 64])
            .unwrap_err()
            .contains("not a turnstile-window snapshot")
    );
    let e = init("incremental").restore(&state).unwrap_err();
    assert!(e.contains("another configuration"), "{e}");
    let mut longer = state.clone();
    longer.push(0);
    assert!(
        fresh
            .restore(&longer)
            .unwrap_err()
            .contains("after the end")
    );
    fresh.restore(&state).unwrap();
}

mod early;

/// Format 2 (version 0.2.0) holds the same state as format 1 in another layout; 0.2.0 reads
/// both, 0.1 refuses format 2.
#[test]
fn snapshot_format_2_migrates_format_1_and_0_1_refuses_it() {
    for counters in ["cumulative", "incremental"] {
        let mut w = init(counters);
        let mut out = output();
        w.process_rows(&batch(&STREAM[..STREAM.len() / 2]), 0, &mut out)
            .unwrap();
        let v1 = snapshot::encode(&w.agg, &w.settings, 1);
        let v2 = snapshot::encode(&w.agg, &w.settings, 2);
        assert_ne!(v1, v2, "{counters}: the layouts differ");
        let empty = init(counters).agg;
        let from_v1 = snapshot::decode(&v1, &empty, &w.settings, 2).unwrap();
        assert_eq!(snapshot::encode(&from_v1, &w.settings, 2), v2, "{counters}");
        let from_v2 = snapshot::decode(&v2, &empty, &w.settings, 2).unwrap();
        assert_eq!(snapshot::encode(&from_v2, &w.settings, 1), v1, "{counters}");
        let refused = snapshot::decode(&v2, &empty, &w.settings, 1).unwrap_err();
        assert!(refused.contains("format version 2"), "{refused}");
        for cut in [v2.len() - 1, v2.len() - 9] {
            assert!(snapshot::decode(&v2[..cut], &empty, &w.settings, 2).is_err());
        }
    }
}
