//! Section 1, engine: parse + 4-hour window (cumulative counters) over the real MTA weeks in
//! event-time order, through the pipeline's own chain (both plugins in WASM, default limits
//! on: memory cap, epoch deadline, output cap) and through the same plugin code compiled
//! natively, on one thread each. Records/s per core and the ratio.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sluice_host::runtime::{Host, Watermarks, source_schema};
use sluice_host::sources::SourceBatch;
use sluice_plugin_sdk::rows::{Batch, Field, RowReader};
use sluice_plugin_sdk::{Output, Transform, Window, WindowSpec};
use turnstile_parse::TurnstileParse;
use turnstile_window::TurnstileWindow;

use crate::figures::{Figure, Report};

pub const BATCH: usize = 8192;
const HOUR: i64 = 3_600_000;
const SECTION: &str = "engine";

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

/// Runs both chains `runs` times each (alternating) and adds the figures.
pub fn run(weeks: &[PathBuf], runs: usize, report: &mut Report) {
    let lines = event_time_ordered(weeks);
    eprintln!(
        "engine: {} records of {} week(s), {runs} runs each, batches of {BATCH}",
        lines.len(),
        weeks.len()
    );
    // For profiling one side alone (callgrind): SLUICE_BENCH_ENGINE=wasm|native.
    let only = std::env::var("SLUICE_BENCH_ENGINE").unwrap_or_default();
    let (mut wasm, mut native) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (w, wasm_rows) = (only != "native").then(|| run_wasm(&lines)).unzip();
        let (n, native_rows) = (only != "wasm").then(|| run_native(&lines)).unzip();
        if let (Some(a), Some(b)) = (wasm_rows, native_rows) {
            assert_eq!(
                a, b,
                "the WASM and native chains must emit the same windows"
            );
        }
        wasm.extend(w.map(|w| lines.len() as f64 / w.as_secs_f64()));
        native.extend(n.map(|n| lines.len() as f64 / n.as_secs_f64()));
    }
    let label = |what: &str| format!("parse+window {what}, 1 core");
    report.add(Figure::new(
        SECTION,
        "engine_wasm_records_per_s",
        &label("WASM (limits on)"),
        "rec/s",
        wasm,
    ));
    report.add(Figure::new(
        SECTION,
        "engine_native_records_per_s",
        &label("native"),
        "rec/s",
        native,
    ));
    report.ratio(
        SECTION,
        "engine_wasm_native_ratio",
        "WASM / native (goal >= 0.7)",
        "engine_wasm_records_per_s",
        "engine_native_records_per_s",
    );
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
pub fn run_wasm(lines: &[Vec<u8>]) -> (Duration, usize) {
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
    let mut rows = 0;
    for batch in batches {
        let out = chain.process(batch).unwrap();
        rows += out.rows.map_or(0, |r| r.len());
    }
    (start.elapsed(), rows)
}

/// The same plugin code linked natively, with the host's watermark logic.
pub fn run_native(lines: &[Vec<u8>]) -> (Duration, usize) {
    let config = r#"{"counters":"cumulative","group_by":["station"]}"#;
    let (mut parse, parsed) =
        TurnstileParse::init(r#"{"format":"auto"}"#, &source_schema()).unwrap();
    let spec = WindowSpec {
        event_time: "timestamp".into(),
        size: 4 * HOUR,
        slide: 4 * HOUR,
    };
    let (mut window, _) = TurnstileWindow::init(config, &parsed, &spec).unwrap();
    let ts_index = parsed.iter().position(|f| f.name == "timestamp").unwrap();
    let mut watermarks = Watermarks::new(4 * HOUR, Duration::ZERO);
    let (mut parsed_out, mut window_out) = (Output::default(), Output::default());
    let mut rows = 0;
    let batches = source_batches(lines);
    let start = Instant::now();
    for batch in batches {
        parsed_out.clear();
        parse
            .process(
                Batch::new(&batch.values.data, &batch.values.ends),
                &mut parsed_out,
            )
            .unwrap();
        let parsed_rows = parsed_out.rows.as_batch();
        for row in parsed_rows.rows() {
            watermarks.observe(0, timestamp(row, &parsed, ts_index));
        }
        window_out.clear();
        let wm = watermarks.current();
        window.process(parsed_rows, wm, &mut window_out).unwrap();
        let new_wm = if batch.end {
            watermarks.finish()
        } else {
            watermarks.update(Instant::now())
        };
        if new_wm > wm {
            window.advance(new_wm, &mut window_out).unwrap();
        }
        rows += window_out.rows.len();
    }
    (start.elapsed(), rows)
}

fn timestamp(row: &[u8], schema: &[Field], index: usize) -> i64 {
    let mut reader = RowReader::new(row);
    for field in &schema[..index] {
        reader.skip(field).unwrap();
    }
    reader.timestamp().unwrap()
}
