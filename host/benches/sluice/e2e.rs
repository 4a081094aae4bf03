//! Section 2, end to end: the three shared weeks (and a replicated set, stations suffixed
//! `#r` per replica) are written as message files by `bench/spark/prepare.py` (the files the
//! Spark job reads), produced into a topic of a real local tansu broker, then read by
//! `sluice run --once pipelines/turnstile.yaml` (parse, 4-hour windows, lake sink; counters
//! `incremental`, the reference aggregation Spark runs) and by the consume-only rdkafka loop.
//! Records/s, the ratio, the host's peak RSS, launch to the first processed batch (warm
//! compile cache) and launch to the first result in the lake.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cli::{Broker, Timed, produce, repo, sluice, timed};
use crate::consume::consume_all;
use crate::figures::{Figure, Report};

const SECTION: &str = "end to end";

/// What one replication's runs measured.
#[derive(Default)]
pub struct Samples {
    pub records: u64,
    pub sluice_rate: Vec<f64>,
    pub consume_rate: Vec<f64>,
    pub rss_mb: Vec<f64>,
    pub first_batch_s: Vec<f64>,
    pub first_result_s: Vec<f64>,
}

/// Temporary folders of a section: work files, lakes and a state folder. The lakes go to
/// tmpfs when there is one: tens of thousands of small objects per run, and deleting them on
/// a disk with discard takes minutes.
pub fn scratch() -> (tempfile::TempDir, tempfile::TempDir, tempfile::TempDir) {
    let folder = || tempfile::tempdir().expect("a temporary folder");
    let shm = std::path::Path::new("/dev/shm");
    let lakes = if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("a temporary folder")
    } else {
        folder()
    };
    (folder(), lakes, folder())
}

/// Runs replication factor `replicas` `runs` times and adds its figures.
pub fn run(broker: &Broker, weeks: &[PathBuf], replicas: usize, runs: usize, report: &mut Report) {
    let (work, lakes, state) = scratch();
    let (files, records) = prepare(work.path(), weeks, replicas);
    let topic = format!("bench-{replicas}x");
    let produced = produce(broker, &topic, &files);
    eprintln!("end to end {replicas}x: {produced}");
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    warm_cache(state.path());
    let mut s = Samples {
        records,
        ..Default::default()
    };
    for i in 0..runs {
        let lake = lakes.path().join(format!("lake-{i}"));
        let (t, first_result) = run_once(broker, state.path(), &topic, &lake, i);
        check_records(&t, records);
        s.sluice_rate.push(records as f64 / t.wall.as_secs_f64());
        s.rss_mb.push(t.peak_rss_mb);
        s.first_batch_s
            .push(t.marked.map_or(f64::NAN, |d| d.as_secs_f64()));
        s.first_result_s
            .push(first_result.map_or(f64::NAN, |d| d.as_secs_f64()));
        let _ = std::fs::remove_dir_all(&lake);
        let group = format!("bench-consume-{replicas}x-{i}");
        let (wall, read, _) = consume_all(&broker.address, &topic, &group);
        assert_eq!(read, records, "the consume-only loop reads every record");
        s.consume_rate.push(read as f64 / wall.as_secs_f64());
        eprintln!(
            "end to end {replicas}x run {}: sluice {:.2} s ({:.0} MB), consume-only {:.2} s",
            i + 1,
            t.wall.as_secs_f64(),
            t.peak_rss_mb,
            wall.as_secs_f64()
        );
    }
    add_figures(replicas, s, report);
}

fn add_figures(r: usize, s: Samples, report: &mut Report) {
    let n = |what: &str| format!("e2e_{r}x_{what}");
    let l = |what: &str| format!("{r}x ({} records): {what}", s.records);
    let figures = [
        (
            "sluice_records_per_s",
            "sluice run --once",
            "rec/s",
            s.sluice_rate,
        ),
        (
            "consume_records_per_s",
            "consume-only rdkafka loop",
            "rec/s",
            s.consume_rate,
        ),
        (
            "peak_rss_mb",
            "sluice peak RSS (goal < 100)",
            "MB",
            s.rss_mb,
        ),
        (
            "first_batch_s",
            "launch to first processed batch, warm cache (goal < 1)",
            "s",
            s.first_batch_s,
        ),
        (
            "first_result_s",
            "launch to first result in the lake",
            "s",
            s.first_result_s,
        ),
    ];
    let mut names = Vec::new();
    for (name, label, unit, samples) in figures {
        names.push(n(name));
        report.add(Figure::new(SECTION, &n(name), &l(label), unit, samples));
    }
    report.ratio(
        SECTION,
        &n("ratio"),
        &l("sluice / consume-only (goal >= 0.8)"),
        &names[0],
        &names[1],
    );
}

/// Writes the message files with `bench/spark/prepare.py`; returns them and the record count.
pub fn prepare(work: &Path, weeks: &[PathBuf], replicas: usize) -> (Vec<PathBuf>, u64) {
    let out_dir = work.join(format!("input-{replicas}x"));
    let out = Command::new("python3")
        .arg(repo().join("bench/spark/prepare.py"))
        .arg("--out")
        .arg(&out_dir)
        .args([
            "--replicas",
            &replicas.to_string(),
            "--lines-per-file",
            "100000",
        ])
        .args(weeks)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "prepare.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("prepare.py prints JSON");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .expect("the input folder")
        .map(|e| e.expect("a folder entry").path())
        .collect();
    files.sort();
    (files, info["records"].as_u64().expect("a record count"))
}

/// Compiles the plugins into the state folder's cache (`sluice validate`), so that the
/// timed runs start warm.
pub fn warm_cache(state: &Path) {
    let out = sluice(state)
        .args(["validate", "pipelines/turnstile.yaml"])
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .output()
        .expect("sluice validate runs");
    assert!(
        out.status.success(),
        "sluice validate failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One `sluice run --once` over the topic in a fresh consumer group; also returns launch to
/// the first result file in the lake.
fn run_once(
    broker: &Broker,
    state: &Path,
    topic: &str,
    lake: &Path,
    i: usize,
) -> (Timed, Option<Duration>) {
    run_tasks(broker, state, topic, lake, &format!("{i}"), None)
}

/// One `sluice run --once` over the topic in a fresh consumer group (`run` names it), with
/// `tasks` tasks (default: one per core); also returns launch to the first result file.
pub fn run_tasks(
    broker: &Broker,
    state: &Path,
    topic: &str,
    lake: &Path,
    run: &str,
    tasks: Option<usize>,
) -> (Timed, Option<Duration>) {
    let i = run;
    let mut cmd = sluice(state);
    if let Some(tasks) = tasks {
        cmd.env("TURNSTILE_PARALLELISM", tasks.to_string());
    }
    cmd.args(["run", "--pipelines", "pipelines/turnstile.yaml", "--once"])
        .env("KAFKA_BROKERS", &broker.address)
        .env("TURNSTILE_TOPIC", topic)
        .env("TURNSTILE_GROUP", format!("bench-{topic}-{i}"))
        .env("TURNSTILE_COUNTERS", "incremental")
        .env("LAKE_URL", format!("file://{}", lake.display()))
        .env("WAREHOUSE_URL", "");
    std::fs::create_dir_all(lake).expect("the lake folder");
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (lake, done) = (lake.to_owned(), done.clone());
        let start = Instant::now();
        std::thread::spawn(move || first_file(&lake, &done).map(|at| at - start))
    };
    let t = timed(cmd, "Processed the first batch");
    done.store(true, Ordering::Relaxed);
    (t, watcher.join().expect("the watcher thread"))
}

/// Polls `lake` every 5 ms until a result file (not a dead letter) appears or `done` is set.
fn first_file(lake: &Path, done: &AtomicBool) -> Option<Instant> {
    loop {
        let finished = done.load(Ordering::Relaxed);
        if has_result(lake) {
            return Some(Instant::now());
        }
        if finished {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn has_result(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('_') || name.starts_with('.') {
            return false;
        }
        let path = e.path();
        if path.is_dir() {
            has_result(&path)
        } else {
            name.starts_with("part-") && !name.contains('#')
        }
    })
}

/// The run's summary must count every record of the topic.
pub fn check_records(t: &Timed, records: u64) {
    let read = t
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("records read:"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert_eq!(
        read,
        Some(records),
        "sluice run --once read every record; its output:\n{}",
        t.stdout
    );
}
