//! Engine benchmark: parse + 4-hour window over a real MTA week, in event-time order, through
//! the pipeline's own chain (both plugins in WASM, default limits on: memory cap, epoch
//! deadline, output cap) and through the same plugin code compiled natively. Prints a table
//! (median, min and max of several runs) and one `BENCH <name> <value> <unit>` line per
//! figure. `SLUICE_BENCH_WEEK` picks another week file; `SLUICE_BENCH_RUNS` the run count.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sluice_host::runtime::{Host, Watermarks, source_schema};
use sluice_host::sources::SourceBatch;
use sluice_plugin_sdk::rows::{Batch, Field, RowReader};
use sluice_plugin_sdk::{Output, Transform, Window, WindowSpec};
use turnstile_parse::TurnstileParse;
use turnstile_window::TurnstileWindow;

const BATCH: usize = 8192;
const HOUR: i64 = 3_600_000;

const SPEC: &str = r#"version: 1
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

fn main() {
    let week = std::env::var("SLUICE_BENCH_WEEK")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data/mta-turnstile-240106.csv.gz")
        });
    let runs: usize = std::env::var("SLUICE_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let lines = event_time_ordered(&week);
    println!(
        "engine benchmark: {} records of {}, {runs} runs each, batches of {BATCH}",
        lines.len(),
        week.display()
    );
    let (wasm, wasm_rows) = measure(runs, || run_wasm(&lines));
    let (native, native_rows) = measure(runs, || run_native(&lines));
    assert_eq!(
        wasm_rows, native_rows,
        "the WASM and native chains must emit the same windows"
    );
    let rate = |d: Duration| lines.len() as f64 / d.as_secs_f64();
    println!("\n| chain | median rec/s | min rec/s | max rec/s | windows |");
    println!("|---|---|---|---|---|");
    for (name, times) in [("wasm (limits on)", &wasm), ("native", &native)] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {wasm_rows} |",
            rate(times[1]),
            rate(times[2]),
            rate(times[0])
        );
    }
    let ratio = rate(wasm[1]) / rate(native[1]);
    println!("\nwasm / native = {ratio:.2}");
    println!("BENCH engine_wasm_records_per_s {:.0} rec/s", rate(wasm[1]));
    println!(
        "BENCH engine_native_records_per_s {:.0} rec/s",
        rate(native[1])
    );
    println!("BENCH engine_wasm_native_ratio {ratio:.3} x");
}

/// [fastest, median, slowest] of `runs` timings, and the rows of the last run. `f` returns
/// the time of its processing part (setup excluded) and the rows it emitted.
fn measure(runs: usize, mut f: impl FnMut() -> (Duration, usize)) -> ([Duration; 3], usize) {
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..runs {
        let (time, emitted) = f();
        rows = emitted;
        times.push(time);
    }
    times.sort();
    (
        [times[0], times[times.len() / 2], times[times.len() - 1]],
        rows,
    )
}

/// The data lines of an MTA week, stable-sorted by DATE+TIME (as `sluice produce` replays).
fn event_time_ordered(path: &std::path::Path) -> Vec<Vec<u8>> {
    let reader = sluice_host::sources::file::open_text(path).expect("the week file opens");
    let mut lines: Vec<(i64, Vec<u8>)> = Vec::new();
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
    lines.sort_by_key(|(ts, _)| *ts);
    lines.into_iter().map(|(_, l)| l).collect()
}

fn source_batches(lines: &[Vec<u8>]) -> Vec<SourceBatch> {
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

fn run_wasm(lines: &[Vec<u8>]) -> (Duration, usize) {
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

fn run_native(lines: &[Vec<u8>]) -> (Duration, usize) {
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
