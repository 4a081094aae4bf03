//! Native throughput of turnstile-parse + turnstile-window on a real MTA week, in the column
//! layout the components get (each output laid out as one arena, as the export glue does): `cargo run --release -p turnstile-window --example
//! throughput [-- week]` (default week 240106, read from `../shared/data`).

use flate2::read::MultiGzDecoder;
use sluice_plugin_sdk::columns::Column;
use sluice_plugin_sdk::{
    Columns, ColumnsBuilder, Field, FieldType, Transform, Window, WindowSpec, time,
};
use std::io::Read;
use std::time::Instant;
use turnstile_parse::TurnstileParse;
use turnstile_window::TurnstileWindow;

const H: i64 = 3_600_000;
const BATCH: usize = 1024;
const ROUNDS: usize = 5;

/// One raw-record batch laid out: (rows, arena, columns).
type Laid = (usize, Vec<u8>, Vec<Column>);

fn raw_schema() -> [Field; 1] {
    [Field::new("value", FieldType::Bytes)]
}

/// The week's data lines in event-time order, as raw-record batches.
fn batches(week: &str) -> (Vec<Laid>, usize) {
    let path = format!(
        "{}/../../../shared/data/mta-turnstile-{week}.csv.gz",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut text = String::new();
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    MultiGzDecoder::new(file).read_to_string(&mut text).unwrap();
    let mut lines: Vec<(i64, &str)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                time::parse_date_time(f[f.len() - 5], f[f.len() - 4]).unwrap_or(0),
                l,
            )
        })
        .collect();
    lines.sort_by_key(|(ts, _)| *ts);
    let packed = lines
        .chunks(BATCH)
        .map(|chunk| {
            let mut b = ColumnsBuilder::new(&raw_schema());
            chunk.iter().for_each(|(_, l)| {
                b.push_bytes(l.as_bytes());
                b.end_row();
            });
            let (mut arena, mut columns) = (Vec::new(), Vec::new());
            b.finish(&mut arena, &mut columns);
            (b.len(), arena, columns)
        })
        .collect();
    (packed, lines.len())
}

/// Runs the whole week once; returns (seconds in parse, seconds in window, result rows).
fn run(batches: &[Laid], counters: &str, early: bool) -> (f64, f64, usize) {
    let (mut parse, schema) = TurnstileParse::init("{}", &raw_schema()).unwrap();
    let spec = WindowSpec {
        event_time: "timestamp".into(),
        size: 4 * H,
        slide: 4 * H,
    };
    let config = format!(r#"{{"counters":"{counters}","emit_early":{early}}}"#);
    let (mut window, results) = TurnstileWindow::init(&config, &schema, &spec).unwrap();
    let (mut parse_s, mut window_s, mut rows) = (0.0, 0.0, 0);
    let (mut parsed, mut out) = (parse.output(&schema), window.output(&results));
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    let raw = raw_schema();
    for (i, (len, input_arena, input_columns)) in batches.iter().enumerate() {
        parsed.clear();
        let t = Instant::now();
        let input = Columns::new(&raw, *len, input_arena, input_columns).unwrap();
        parse.process(&input, &mut parsed).unwrap();
        let parsed_rows = parsed.rows.view(&mut arena, &mut columns).unwrap();
        parse_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        out.clear();
        let watermark = if i + 1 == batches.len() {
            i64::MAX
        } else {
            i64::MIN
        };
        window.process(&parsed_rows, watermark, &mut out).unwrap();
        window.advance(watermark, &mut out).unwrap();
        window_s += t.elapsed().as_secs_f64();
        rows += out.rows.len();
    }
    (parse_s, window_s, rows)
}

fn main() {
    let week = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "240106".to_string());
    let (batches, records) = batches(&week);
    for (counters, early) in [
        ("cumulative", false),
        ("incremental", false),
        ("cumulative", true),
    ] {
        let best = (0..ROUNDS)
            .map(|_| run(&batches, counters, early))
            .min_by(|a, b| (a.0 + a.1).total_cmp(&(b.0 + b.1)));
        let (p, w, rows) = best.unwrap_or_default();
        let rate = |s: f64| records as f64 / s / 1e6;
        println!(
            "{week} {counters}{}: {records} records, {rows} rows; parse {:.1} M rec/s, window {:.1} M rec/s, both {:.1} M rec/s",
            if early { " + early rows" } else { "" },
            rate(p),
            rate(w),
            rate(p + w)
        );
    }
}
