//! Section 1, engine: parse + 4-hour window (cumulative counters) over the real MTA weeks in
//! event-time order, through the pipeline's own chain (both plugins in WASM, default limits
//! on: memory cap, epoch deadline, output cap), through the same plugin code compiled
//! natively, and through a hand-written native loop (`native_loop.rs`), on one thread each.
//! Records/s per core and the ratios. All three must emit the same rows, and those of the
//! oracle in `expected/` where it has the weeks.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sluice_host::runtime::{Host, Watermarks, source_schema};
use sluice_host::sources::SourceBatch;
use sluice_plugin_sdk::rows::{Batch, BatchBuilder, RowReader};
use sluice_plugin_sdk::{ColumnsBuilder, Transform, Window, WindowSpec};
use turnstile_parse::TurnstileParse;
use turnstile_window::TurnstileWindow;

use crate::figures::{Figure, Report};
use crate::native_loop;

pub const BATCH: usize = 8192;
const HOUR: i64 = 3_600_000;
const SECTION: &str = "engine";

/// One emitted row: station, window start (ms; the window is 4 h), entries, exits.
pub type Row = (String, i64, i64, i64);

pub const SPEC: &str = r#"version: 1
name: bench
source: { file: { paths: [unused] } }
steps:
  - transform: { plugin: turnstile-parse@^0.1, config: { format: auto } }
  - window:
      plugin: turnstile-window@^0.1
      event_time: timestamp
      size: 4h
      delay: 4h
      config: { counters: cumulative, group_by: [station] }
sinks: [ { stdout: {} } ]
"#;

type Run = fn(&[Vec<u8>]) -> (Duration, Vec<Row>);

/// Each way to run the section: its `SLUICE_BENCH_ENGINE` name, what it is, the run.
const SIDES: [(&str, &str, Run); 3] = [
    ("wasm", "the WASM chain", run_wasm),
    ("native", "the native chain", run_native),
    ("hand", "the hand-written loop", native_loop::run),
];

/// Runs the three `runs` times each (alternating) and adds the figures. Every run's rows
/// must equal the oracle's (where `expected/` has the weeks) or else the first run's.
pub fn run(weeks: &[PathBuf], runs: usize, report: &mut Report) {
    let lines = event_time_ordered(weeks);
    eprintln!(
        "engine: {} records of {} week(s), {runs} runs each, batches of {BATCH}",
        lines.len(),
        weeks.len()
    );
    // For profiling one side alone (callgrind): SLUICE_BENCH_ENGINE=wasm|native|hand.
    let only = std::env::var("SLUICE_BENCH_ENGINE").unwrap_or_default();
    let mut expected = oracle(weeks);
    let against = expected
        .as_ref()
        .map_or("the first run's", |(path, _)| path.as_str());
    eprintln!("engine: every run's rows are checked against {against}");
    let mut rates = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..runs {
        for ((side, what, measure), rate) in SIDES.iter().zip(&mut rates) {
            if !only.is_empty() && only != *side {
                continue;
            }
            let (took, rows) = measure(&lines);
            rate.push(lines.len() as f64 / took.as_secs_f64());
            match &expected {
                Some((source, want)) => same_rows(what, &rows, source, want),
                None => expected = Some((what.to_string(), rows)),
            }
        }
    }
    let label = |what: &str| format!("parse+window {what}, 1 core");
    let names = [
        "engine_wasm_records_per_s",
        "engine_native_records_per_s",
        "engine_hand_loop_records_per_s",
    ];
    let whats = ["WASM (limits on)", "native", "hand-written native loop"];
    for ((name, what), samples) in names.iter().zip(whats).zip(rates) {
        report.add(Figure::new(SECTION, name, &label(what), "rec/s", samples));
    }
    report.ratio(
        SECTION,
        "engine_wasm_native_ratio",
        "WASM / native (goal >= 0.7)",
        names[0],
        names[1],
    );
    report.ratio(
        SECTION,
        "engine_wasm_hand_loop_ratio",
        "WASM / hand-written loop (the machine's limit)",
        names[0],
        names[2],
    );
}

/// Panics unless `a`'s rows (sorted) equal `b`'s, naming the first difference.
fn same_rows(a_name: &str, a: &[Row], b_name: &str, b: &[Row]) {
    if a == b {
        return;
    }
    let first = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    panic!(
        "{a_name} and {b_name} must emit the same rows: {} vs {} rows, first difference at \
         sorted row {first}: {:?} vs {:?}",
        a.len(),
        b.len(),
        a.get(first),
        b.get(first)
    );
}

/// The oracle's rows for `weeks` (DESIGN §6: `expected/` next to the weeks), when it has a
/// file for them: one week's, or the three shared weeks together.
fn oracle(weeks: &[PathBuf]) -> Option<(String, Vec<Row>)> {
    let names: Vec<&str> = (weeks.iter())
        .map(|p| p.file_name()?.to_str()?.strip_suffix(".csv.gz"))
        .collect::<Option<_>>()?;
    let file = match names.join(",").replace("mta-turnstile-", "").as_str() {
        "240106,240113,240120" => "mta-turnstile-3weeks.cumulative.csv".to_owned(),
        _ if names.len() == 1 => format!("{}.cumulative.csv", names[0]),
        _ => return None,
    };
    let path = weeks[0].parent()?.join("expected").join(file);
    let text = std::fs::read_to_string(&path).ok()?;
    let row = |l| oracle_row(l).unwrap_or_else(|| panic!("{path:?}: bad row {l:?}"));
    let mut rows: Vec<Row> = text.lines().skip(1).map(row).collect();
    rows.sort_unstable();
    Some((path.display().to_string(), rows))
}

/// `station,window_start,window_end,entries,exits` (the station may be quoted CSV).
fn oracle_row(line: &str) -> Option<Row> {
    let mut parts = line.rsplitn(5, ',');
    let mut next = || parts.next();
    let (exits, entries, end, start) = (next()?, next()?, next()?, next()?);
    let station = next()?;
    let ts = sluice_plugin_sdk::time::parse_datetime;
    let (start, end) = (ts(start)?, ts(end)?);
    if end - start != 4 * HOUR {
        return None;
    }
    let station = match station.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => station.to_owned(),
    };
    Some((station, start, entries.parse().ok()?, exits.parse().ok()?))
}

/// The rows of window-output batches (`station, window_start, window_end, entries, exits`),
/// sorted.
fn decode<'a>(batches: impl IntoIterator<Item = Batch<'a>>) -> Vec<Row> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in batch.rows() {
            let mut r = RowReader::new(row);
            let station = r.str().expect("station").to_owned();
            let start = r.timestamp().expect("window_start");
            let end = r.timestamp().expect("window_end");
            assert_eq!(end - start, 4 * HOUR, "a row's window is 4 hours");
            let entries = r.i64().expect("entries");
            rows.push((station, start, entries, r.i64().expect("exits")));
        }
    }
    rows.sort_unstable();
    rows
}

/// The data lines of the weeks, stable-sorted by DATE+TIME (as `sluice produce` replays).
pub fn event_time_ordered(paths: &[PathBuf]) -> Vec<Vec<u8>> {
    let mut lines: Vec<(i64, Vec<u8>)> = Vec::new();
    for path in paths {
        read_week(path, &mut lines);
    }
    lines.sort_by_key(|(ts, _)| *ts);
    lines.into_iter().map(|(_, l)| l).collect()
}

fn read_week(path: &Path, lines: &mut Vec<(i64, Vec<u8>)>) {
    let reader = sluice_host::sources::file::open_text(path).expect("the week file opens");
    for line in reader.split(b'\n').skip(1) {
        let line = line.expect("the week file reads");
        let text = String::from_utf8_lossy(&line);
        let fields: Vec<&str> = text.trim_end().split(',').collect();
        let base = fields.len().saturating_sub(11);
        let ts = fields
            .get(base + 6)
            .zip(fields.get(base + 7))
            .and_then(|(d, t)| sluice_plugin_sdk::time::parse_date_time(d, t))
            .unwrap_or(i64::MIN);
        lines.push((ts, line));
    }
}

pub fn source_batches(lines: &[Vec<u8>]) -> Vec<SourceBatch> {
    let mut batches = Vec::new();
    for (n, chunk) in lines.chunks(BATCH).enumerate() {
        let mut batch = SourceBatch::default();
        for (i, line) in chunk.iter().enumerate() {
            batch.push(0, (n * BATCH + i) as i64, line);
        }
        batches.push(batch);
    }
    if let Some(last) = batches.last_mut() {
        last.end = true;
    }
    batches
}

/// The pipeline's chain: both plugins in WASM with the default limits.
/// Its rows are decoded after the clock stops.
pub fn run_wasm(lines: &[Vec<u8>]) -> (Duration, Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(
        dir.path(),
        &[PathBuf::from(sluice_plugin_artifacts::PLUGIN_DIR)],
    )
    .unwrap();
    let loaded = sluice_host::spec::load_str("bench.yaml", SPEC, &|_| None).unwrap();
    let mut chain = host.chain(&loaded, "bench", &[0], true).unwrap();
    let batches = source_batches(lines);
    let start = Instant::now();
    let mut outputs = Vec::new();
    for batch in batches {
        outputs.extend(chain.process(batch).unwrap().rows);
    }
    let took = start.elapsed();
    (took, decode(outputs.iter().map(|r| r.batch())))
}

/// The same plugin code linked natively, with the host's watermark logic, handing batches
/// over in the column layout of the WASM calls (each output laid out as one arena, as the
/// export glue does). Its rows are copied out per batch and decoded after the clock stops.
pub fn run_native(lines: &[Vec<u8>]) -> (Duration, Vec<Row>) {
    let config = r#"{"counters":"cumulative","group_by":["station"]}"#;
    let raw = source_schema();
    let (mut parse, parsed) = TurnstileParse::init(r#"{"format":"auto"}"#, &raw).unwrap();
    let spec = WindowSpec {
        event_time: "timestamp".into(),
        size: 4 * HOUR,
        slide: 4 * HOUR,
    };
    let (mut window, results) = TurnstileWindow::init(config, &parsed, &spec).unwrap();
    let mut watermarks = Watermarks::new(4 * HOUR, Duration::ZERO);
    let (mut parsed_out, mut window_out) = (parse.output(&parsed), window.output(&results));
    let (mut input, mut input_arena, mut input_columns) =
        (ColumnsBuilder::new(&raw), Vec::new(), Vec::new());
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    let mut emitted = BatchBuilder::default();
    let batches = source_batches(lines);
    let start = Instant::now();
    for batch in batches {
        input.clear();
        for row in batch.values.as_batch().rows() {
            input.push_bytes(RowReader::new(row).bytes().unwrap());
            input.end_row();
        }
        let source = input.view(&mut input_arena, &mut input_columns).unwrap();
        parsed_out.clear();
        parse.process(&source, &mut parsed_out).unwrap();
        let parsed_rows = parsed_out.rows.view(&mut arena, &mut columns).unwrap();
        for ts in parsed_rows.timestamp("timestamp").unwrap().iter() {
            watermarks.observe(0, ts);
        }
        window_out.clear();
        let wm = watermarks.current();
        window.process(&parsed_rows, wm, &mut window_out).unwrap();
        let new_wm = if batch.end {
            watermarks.finish()
        } else {
            watermarks.update(Instant::now())
        };
        if new_wm > wm {
            window.advance(new_wm, &mut window_out).unwrap();
        }
        let rows = window_out.rows.to_rows().unwrap();
        for row in rows.as_batch().rows() {
            emitted.data.extend_from_slice(row);
            emitted.end_row();
        }
    }
    let took = start.elapsed();
    (took, decode([emitted.as_batch()]))
}
