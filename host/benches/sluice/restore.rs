//! Section 6, restore: what a task does when it takes a partition over. The pipeline's WASM
//! chain (limits on) runs the weeks with a watermark delay longer than the data, so every
//! window stays open in its state; its checkpoint is written to a file:// checkpoint store.
//! Then, timed: a new chain (new plugin instances), the newest checkpoint read and decoded,
//! and its state restored into the new window instance. Figures: the checkpoint's size, the
//! restore time, and the restore time per MB of state.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sluice_host::runtime::{Barrier, CheckpointStore, Host};

use crate::engine::{SPEC, event_time_ordered, source_batches};
use crate::figures::{Figure, Report};

const SECTION: &str = "restore";

/// Builds the state of `weeks`, checkpoints it, and times `runs` restores.
pub fn run(weeks: &[PathBuf], runs: usize, report: &mut Report) {
    let lines = event_time_ordered(weeks);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(
        &dir.path().join("state"),
        &[PathBuf::from(sluice_plugin_artifacts::PLUGIN_DIR)],
    )
    .unwrap();
    // The engine section's pipeline with every window kept open.
    let spec = SPEC.replace("delay: 4h", "delay: 60days");
    let loaded = sluice_host::spec::load_str("restore.yaml", &spec, &|_| None).unwrap();
    let mut chain = host.chain(&loaded, "restore", &[0], true).unwrap();
    let mut batches = source_batches(&lines);
    if let Some(last) = batches.last_mut() {
        last.end = false; // the end of input would close every window
    }
    for batch in batches {
        let out = chain.process(batch).unwrap();
        assert!(out.rows.is_none_or(|r| r.is_empty()), "no window closes");
    }
    let url = format!("file://{}", dir.path().join("checkpoints").display());
    let store = CheckpointStore::open(&url, "restore").unwrap().partition(0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut barrier = Barrier::new("bench".into(), Duration::from_secs(10), None, 1);
    barrier.advance(&[(0, lines.len() as i64)]);
    let checkpoint = barrier.take(&mut chain).unwrap();
    let bytes = runtime.block_on(store.write(&checkpoint)).unwrap();
    let mb = bytes as f64 / 1e6;
    eprintln!(
        "restore: {} records of {} week(s) in the open windows, checkpoint {mb:.1} MB",
        lines.len(),
        weeks.len()
    );
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let mut fresh = host.chain(&loaded, "restore", &[0], true).unwrap();
        let latest = runtime
            .block_on(store.latest())
            .unwrap()
            .expect("a checkpoint");
        fresh.restore(&latest).unwrap();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    report.add(Figure::new(
        SECTION,
        "restore_checkpoint_mb",
        &format!(
            "checkpoint of {} week(s) of open windows (one partition)",
            weeks.len()
        ),
        "MB",
        vec![mb],
    ));
    let per_mb: Vec<f64> = times.iter().map(|ms| ms / mb).collect();
    report.add(Figure::new(
        SECTION,
        "restore_ms",
        "take a partition over: new instances, read + decode + restore its checkpoint",
        "ms",
        times,
    ));
    report.add(Figure::new(
        SECTION,
        "restore_ms_per_mb",
        "the same, per MB of checkpoint",
        "ms/MB",
        per_mb,
    ));
}
