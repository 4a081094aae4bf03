//! Exactly-once lake objects without a window: a parse-only pipeline over a real MTA week
//! from the file source, partitioned by division, dies right after sink writes (before a
//! checkpoint covers them, `SLUICE_FAILPOINT=sink-written:<n>`) and is rerun with other
//! batch sizes, so that the replays cut their batches differently. Its lake then holds every
//! parsed row exactly once, like a run without crashes, and objects are named after their
//! source partition and offsets.

#[allow(unused_imports, reason = "these tests need no broker")]
mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::*;

const SPEC: &str = r#"version: 1
name: parsed
source: { file: { paths: ["${INPUT}"] } }
batch: { max_records: ${BATCH} }
steps:
  - transform: { plugin: turnstile-parse@^0.1, config: { format: weekly } }
sinks:
  - lake: { url: "${LAKE_URL}", partition_by: [division] }
checkpoint: { interval: "${CHECKPOINT_INTERVAL}" }
"#;

/// Runs the pipeline with `batch` records a batch into `dir/lake`, its checkpoints in `dir`;
/// with `failpoint` set, it must crash there.
fn run(dir: &Path, batch: usize, interval: &str, failpoint: Option<&str>) {
    let (spec, lake) = (dir.join("parsed.yaml"), dir.join("lake"));
    std::fs::write(&spec, SPEC).unwrap();
    let mut cmd = sluice(dir);
    cmd.args(["run", "--once", "--pipelines"])
        .arg(&spec)
        .env("INPUT", week("240106"))
        .env("BATCH", batch.to_string())
        .env("CHECKPOINT_INTERVAL", interval)
        .env("LAKE_URL", format!("file://{}", lake.display()));
    if let Some(point) = failpoint {
        cmd.env("SLUICE_FAILPOINT", point);
        let out = cmd.output().unwrap();
        let stderr = plain(&String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "no crash at {point}\n{stderr}");
        assert!(stderr.contains("SLUICE_FAILPOINT: crashing after the sinks wrote batch"));
    } else {
        ok(&mut cmd);
    }
}

/// Every data line of every object under `lake`, sorted; and the object paths.
fn rows(lake: &Path) -> (Vec<String>, Vec<PathBuf>) {
    let objects: Vec<PathBuf> = files_under(lake)
        .into_iter()
        .filter(|f| !f.strip_prefix(lake).unwrap().starts_with("_dlq"))
        .collect();
    let mut rows = Vec::new();
    for file in &objects {
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(file).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        rows.extend(text.lines().skip(1).map(str::to_owned));
    }
    rows.sort();
    (rows, objects)
}

#[test]
fn replays_after_crashes_between_sink_writes_and_checkpoints_write_each_row_once() {
    if !cfg!(feature = "failpoints") {
        eprintln!("skipped: build with `--features sluice-host/failpoints`");
        return;
    }
    let (clean, crashed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(clean.path(), 5_000, "10s", None);
    // A checkpoint after every batch, a crash after the 8th write: one batch replayed.
    run(crashed.path(), 5_000, "1ms", Some("sink-written:8"));
    // No checkpoint in this run: from the last one, 5 batches of another size, then a crash.
    run(crashed.path(), 7_000, "1h", Some("sink-written:5"));
    run(crashed.path(), 3_000, "10s", None);

    let (expected, _) = rows(&clean.path().join("lake"));
    let (got, objects) = rows(&crashed.path().join("lake"));
    assert!(expected.len() > 100_000, "{} rows", expected.len());
    assert_same_rows(&got, &expected);
    for object in objects {
        let name = object.file_name().unwrap().to_string_lossy().into_owned();
        let division = object.parent().unwrap().file_name().unwrap();
        assert!(
            division.to_string_lossy().starts_with("division="),
            "{}",
            object.display()
        );
        let fields: Vec<&str> = name.trim_end_matches(".csv.gz").split('-').collect();
        assert!(
            fields.len() == 4 && fields[0] == "part" && fields[1] == "00000",
            "{name} is not named after its source positions"
        );
        let (first, last): (u64, u64) = (fields[2].parse().unwrap(), fields[3].parse().unwrap());
        assert!(first <= last, "{name}");
    }
}
