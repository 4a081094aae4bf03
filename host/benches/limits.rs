//! Cost of the plugin limits: the turnstile chain (parse + 4-hour window, both in WASM) over
//! a real MTA week with the limits enforced (epoch deadline compiled in, memory cap, output
//! cap: the default) and with an engine that enforces none. Runs alternate between the two,
//! so a loaded machine slows both alike; prints the median of each and their ratio, as a
//! table and as `BENCH <name> <value> <unit>` lines. `SLUICE_BENCH_RUNS` sets the run count.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_host::runtime::Host;
use sluice_host::sources::SourceBatch;
use sluice_host::wasm::{PluginEngine, Registry};

const BATCH: usize = 8192;

const SPEC: &str = r#"version: 1
name: bench
source: { file: { paths: [unused] } }
steps:
  - transform: { plugin: turnstile-parse@^0.1, config: { format: weekly } }
  - window:
      plugin: turnstile-window@^0.1
      event_time: timestamp
      size: 4h
      delay: 8days
      config: { counters: incremental, group_by: [station] }
sinks: [ { stdout: {} } ]
"#;

fn main() {
    let week = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/mta-turnstile-240106.csv.gz");
    // Without `--bench` (`cargo test --all-targets`) one run each: a smoke test.
    let benching = std::env::args().any(|a| a == "--bench");
    let runs: usize = std::env::var("SLUICE_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if benching { 5 } else { 1 });
    let reader = sluice_host::sources::file::open_text(&week).expect("the week file opens");
    let lines: Vec<Vec<u8>> = reader.split(b'\n').map(|l| l.unwrap()).collect();
    println!(
        "limits benchmark: {} records, {runs} runs each",
        lines.len()
    );
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        on.push(run(&lines, true));
        off.push(run(&lines, false));
    }
    let rate = |times: &mut Vec<Duration>| {
        times.sort();
        lines.len() as f64 / times[times.len() / 2].as_secs_f64()
    };
    let (on, off) = (rate(&mut on), rate(&mut off));
    println!("\n| engine | median rec/s |\n|---|---|");
    println!("| limits on | {on:.0} |\n| limits off | {off:.0} |");
    println!("\nlimits on / off = {:.3}", on / off);
    println!("BENCH limits_on_records_per_s {on:.0} rec/s");
    println!("BENCH limits_off_records_per_s {off:.0} rec/s");
    println!("BENCH limits_on_off_ratio {:.3} x", on / off);
}

/// Time to run every batch of `lines` through a fresh chain.
fn run(lines: &[Vec<u8>], limits: bool) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(PluginEngine::with_limits(None, limits).unwrap());
    let dirs = [PathBuf::from(sluice_plugin_artifacts::PLUGIN_DIR)];
    let (registry, _) = Registry::load_dirs(&engine, &dirs);
    let host = Host {
        engine,
        registry,
        state_dir: dir.path().to_owned(),
        live: Default::default(),
        ceilings: sluice_host::wasm::Limits::ceilings(),
        api_policy: sluice_host::policy::Policy::new(dir.path()),
    };
    let loaded = sluice_host::spec::load_str("bench.yaml", SPEC, &|_| None).unwrap();
    let mut chain = host.chain(&loaded, "bench", &[0], true).unwrap();
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
    let start = Instant::now();
    for batch in batches {
        chain.process(batch).unwrap();
    }
    start.elapsed()
}
