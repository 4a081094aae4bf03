//! The oracle test: the shared MTA weeks, replayed in event-time order through
//! `turnstile-parse` and `turnstile-window` (4-hour tumbling windows, watermark = max event
//! time − 4 h, advanced after every batch), must give exactly the oracle's window aggregates
//! in `shared/data/expected/`, in both counter modes.

use flate2::read::MultiGzDecoder;
use sluice_plugin_sdk::rows::decode_row;
use sluice_plugin_sdk::{
    ColumnsBuilder, Field, FieldType, Output, Transform, Value, Window, WindowSpec, time,
};
use std::io::Read;
use std::path::PathBuf;
use turnstile_parse::TurnstileParse;
use turnstile_window::TurnstileWindow;

const H: i64 = 3_600_000;
const BATCH: usize = 1024;

fn data_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    assert!(
        dir.is_dir(),
        "the shared data folder is missing: expected it at {}",
        dir.display()
    );
    dir
}

fn read_gz(name: &str) -> String {
    let path = data_dir().join(name);
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut text = String::new();
    MultiGzDecoder::new(file).read_to_string(&mut text).unwrap();
    text
}

/// Data lines of the weeks (header excluded), stably sorted by DATE+TIME.
fn replay_order(weeks: &[&str]) -> Vec<String> {
    let mut lines: Vec<(i64, String)> = Vec::new();
    for week in weeks {
        let text = read_gz(&format!("mta-turnstile-{week}.csv.gz"));
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split(',').collect();
            let ts = time::parse_date_time(f[f.len() - 5], f[f.len() - 4])
                .expect("a valid DATE and TIME");
            lines.push((ts, line.to_string()));
        }
    }
    lines.sort_by_key(|(ts, _)| *ts);
    lines.into_iter().map(|(_, l)| l).collect()
}

/// Parses one batch of raw lines; returns the parsed rows and their latest event time.
fn parse_batch(parse: &mut TurnstileParse, schema: &[Field], lines: &[String]) -> (Output, i64) {
    let mut input = ColumnsBuilder::new(&[Field::new("value", FieldType::Bytes)]);
    for line in lines {
        input.push_bytes(line.as_bytes());
        input.end_row();
    }
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    let batch = input.view(&mut arena, &mut columns).unwrap();
    let mut out = parse.output(schema);
    parse.process(&batch, &mut out).unwrap();
    assert!(
        out.failures.is_empty(),
        "parse failures: {:?}",
        &out.failures[..1]
    );
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    let parsed = out.rows.view(&mut arena, &mut columns).unwrap();
    let max_ts = parsed.timestamp("timestamp").unwrap().iter().max();
    (out, max_ts.unwrap_or(i64::MIN))
}

/// Runs the pipeline and returns the final rows as `station,window_start,window_end,entries,exits`
/// and, with `emit_early`, the early rows of `process` in the order they came.
fn run(lines: &[String], counters: &str, emit_early: bool) -> (Vec<String>, Vec<String>) {
    let raw = [Field::new("value", FieldType::Bytes)];
    let (mut parse, parsed) = TurnstileParse::init(r#"{"format":"auto"}"#, &raw).unwrap();
    let spec = WindowSpec {
        event_time: "timestamp".into(),
        size: 4 * H,
        slide: 4 * H,
    };
    let config =
        format!(r#"{{"counters":"{counters}","group_by":["station"],"emit_early":{emit_early}}}"#);
    let (mut window, schema) = TurnstileWindow::init(&config, &parsed, &spec).unwrap();
    let (mut max_ts, mut results, mut early) = (i64::MIN, Vec::new(), Vec::new());
    for chunk in lines.chunks(BATCH) {
        let (rows, batch_max) = parse_batch(&mut parse, &parsed, chunk);
        max_ts = max_ts.max(batch_max);
        let watermark = max_ts - 4 * H;
        let mut out = window.output(&schema);
        let (mut arena, mut columns) = (Vec::new(), Vec::new());
        let parsed_rows = rows.rows.view(&mut arena, &mut columns).unwrap();
        window.process(&parsed_rows, watermark, &mut out).unwrap();
        early.extend(text_rows(&schema, &out));
        out.clear();
        window.advance(watermark, &mut out).unwrap();
        assert!(
            out.failures.is_empty(),
            "window failures: {:?}",
            &out.failures[..1]
        );
        results.extend(text_rows(&schema, &out));
    }
    let mut out = window.output(&schema);
    window.advance(i64::MAX, &mut out).unwrap();
    results.extend(text_rows(&schema, &out));
    (results, early)
}

fn text_rows(schema: &[Field], out: &Output) -> Vec<String> {
    let text = |v: &Value<'_>| match v {
        Value::Str(s) => s.to_string(),
        Value::Timestamp(t) => time::format_timestamp(*t),
        Value::Int64(i) => i.to_string(),
        other => panic!("unexpected value {other:?}"),
    };
    let rows = out.rows.to_rows().unwrap();
    rows.as_batch()
        .rows()
        .map(|r| {
            decode_row(schema, r)
                .unwrap()
                .iter()
                .map(text)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

fn expected(name: &str, counters: &str) -> Vec<String> {
    let path = data_dir().join(format!("expected/mta-turnstile-{name}.{counters}.csv"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut rows: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
    rows.sort();
    rows
}

fn check(name: &str, weeks: &[&str], counters: &str) {
    let (mut got, early) = run(&replay_order(weeks), counters, false);
    assert!(early.is_empty(), "process emitted rows without emit_early");
    got.sort();
    let want = expected(name, counters);
    if got == want {
        return;
    }
    let missing: Vec<&String> = want
        .iter()
        .filter(|r| got.binary_search(r).is_err())
        .take(10)
        .collect();
    let extra: Vec<&String> = got
        .iter()
        .filter(|r| want.binary_search(r).is_err())
        .take(10)
        .collect();
    panic!(
        "{name} {counters}: {} rows, oracle has {}.\nfirst oracle rows we lack:\n  {}\nfirst rows the oracle lacks:\n  {}",
        got.len(),
        want.len(),
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        extra
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

#[test]
fn week_240106_cumulative_matches_the_oracle() {
    check("240106", &["240106"], "cumulative");
}

#[test]
fn week_240106_incremental_matches_the_oracle() {
    check("240106", &["240106"], "incremental");
}

const THREE_WEEKS: &[&str] = &["240106", "240113", "240120"];

#[test]
fn three_weeks_cumulative_match_the_oracle() {
    check("3weeks", THREE_WEEKS, "cumulative");
}

#[test]
fn three_weeks_incremental_match_the_oracle() {
    check("3weeks", THREE_WEEKS, "incremental");
}

/// With early results on, the final rows stay exact, and the last early value of every
/// (station, window) is its final value: early rows are running sums, never ahead or stale.
#[test]
fn week_240106_early_results_end_at_the_final_values() {
    let lines = replay_order(&["240106"]);
    for counters in ["cumulative", "incremental"] {
        let (mut finals, early) = run(&lines, counters, true);
        let key = |row: &str| row.splitn(3, ',').take(2).collect::<Vec<_>>().join(",");
        let last: std::collections::HashMap<String, &String> =
            early.iter().map(|r| (key(r), r)).collect();
        assert_eq!(
            last.len(),
            finals.len(),
            "{counters}: one early key per final row"
        );
        for row in &finals {
            assert_eq!(last.get(&key(row)).copied(), Some(row), "{counters}");
        }
        finals.sort();
        assert!(
            finals == expected("240106", counters),
            "{counters}: finals differ from the oracle"
        );
    }
}
