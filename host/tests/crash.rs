//! Crash safety on a real broker: the three shared weeks are replayed into tansu, then
//! `sluice run --once` is killed with SIGKILL at random moments of its processing (and once
//! in the middle of a checkpoint write) and restarted each time; the final lake must equal the oracle exactly,
//! with one object per window and source partition (each task writes its partition's
//! stations of a window as one object) and no duplicate row. A broker restart in the middle of a run
//! must not change the results either.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A small deterministic generator; the seed is printed so a failing run can be repeated
/// with `SLUICE_CRASH_SEED`.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn between(&mut self, low_ms: u64, high_ms: u64) -> Duration {
        Duration::from_millis(low_ms + self.next() % (high_ms - low_ms))
    }
}

fn pipeline(dir: &Path, broker: &str, lake: &Path) -> Command {
    let mut cmd = sluice(dir);
    cmd.args(["run", "--once", "--pipelines"])
        .arg(repo().join("pipelines/turnstile.yaml"))
        .env("KAFKA_BROKERS", broker)
        .env("TURNSTILE_TOPIC", "turnstile")
        .env("LAKE_URL", format!("file://{}", lake.display()))
        .env("CHECKPOINT_INTERVAL", "300ms")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Waits until the process has processed its first batch; returns false when it had already
/// finished by itself.
fn wait_for_first_batch(child: &mut Child) -> bool {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("Processed the first batch") {
                let _ = tx.send(());
            }
        }
    });
    let started = Instant::now();
    while rx.recv_timeout(Duration::from_millis(20)).is_err() {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no batch processed"
        );
    }
    true
}

/// Waits until the process has processed its first batch, lets it run `after` more, then
/// kills it; returns false when it had already finished by itself. Timing the kill from the
/// first batch (not from the start, which varies with the machine) keeps each run's progress
/// small, so that the topic outlasts the kills.
fn kill_after_first_batch(mut child: Child, after: Duration) -> bool {
    if !wait_for_first_batch(&mut child) {
        return false;
    }
    let processing = Instant::now();
    while processing.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    true
}

/// The number of `part-*.csv.gz` objects in each partition folder under `lake` (dead letters
/// under `_` prefixes left out): the shipped pipeline partitions by `window_start`.
fn objects_per_window(lake: &Path) -> std::collections::BTreeMap<PathBuf, usize> {
    let mut out = std::collections::BTreeMap::new();
    let mut dirs = vec![lake.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('_') {
                continue;
            }
            if entry.path().is_dir() {
                dirs.push(entry.path());
            } else if name.ends_with(".csv.gz") {
                *out.entry(dir.clone()).or_insert(0) += 1;
            }
        }
    }
    out
}

#[test]
fn kill_9_at_random_points_still_gives_each_window_exactly_once() {
    let broker = LocalBroker::start().expect("tansu starts");
    let dir = tempfile::tempdir().unwrap();
    let weeks = ["240106", "240113", "240120"];
    produce_weeks(dir.path(), &broker.bootstrap(), "turnstile", &weeks);
    let lake = dir.path().join("lake");
    let seed = std::env::var("SLUICE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed: {seed} (repeat with SLUICE_CRASH_SEED={seed})");
    let mut rng = Lcg(seed);

    // One crash in the middle of writing the third checkpoint of a run (checkpoints every
    // 50 ms: early in the topic). The fail-point exists only in builds with the
    // `failpoints` feature (`make test`).
    if cfg!(feature = "failpoints") {
        let child = pipeline(dir.path(), &broker.bootstrap(), &lake)
            .env("SLUICE_FAILPOINT", "checkpoint-write:3")
            .env("CHECKPOINT_INTERVAL", "50ms")
            .spawn()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            !out.status.success(),
            "the failpoint should have crashed the host: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("no fail-point crash: build with `--features sluice-host/failpoints`");
    }

    // Then SIGKILL at random moments, restarting each time.
    let mut kills = 0;
    let mut attempts = 0;
    while kills < 6 && attempts < 30 {
        attempts += 1;
        let child = pipeline(dir.path(), &broker.bootstrap(), &lake)
            .env("CHECKPOINT_INTERVAL", "50ms")
            .spawn()
            .unwrap();
        if kill_after_first_batch(child, rng.between(20, 150)) {
            kills += 1;
        } else {
            break; // it finished: nothing left to crash
        }
    }
    eprintln!("{kills} kills after the checkpoint crash");
    assert!(
        kills >= 5,
        "the run finished before 5 kills: make them earlier"
    );

    let out = ok(pipeline(dir.path(), &broker.bootstrap(), &lake).stdout(Stdio::piped()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Pipeline `turnstile` finished."),
        "{stdout}"
    );

    let rows = lake_rows(&lake);
    let expected = expected_rows("mta-turnstile-3weeks.cumulative.csv");
    assert_same_rows(&rows, &expected);
    let mut dedup = rows.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), rows.len(), "a window was written twice");
    let windows = objects_per_window(&lake);
    let starts: std::collections::BTreeSet<&str> = expected
        .iter()
        .filter_map(|row| row.split(',').nth(1))
        .collect();
    assert_eq!(windows.len(), starts.len(), "one folder per window start");
    // `sluice produce` made 3 partitions: a window re-emitted in pieces would show more.
    let multiple: Vec<_> = windows.iter().filter(|(_, n)| **n > 3).take(5).collect();
    assert!(
        multiple.is_empty(),
        "windows with more objects than partitions: {multiple:?}"
    );
}

#[test]
fn a_broker_restart_during_a_run_changes_nothing_in_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = LocalBroker::start_persistent(&dir.path().join("broker")).expect("tansu");
    ok(sluice(dir.path())
        .args([
            "produce",
            "--brokers",
            &broker.bootstrap(),
            "--topic",
            "turnstile",
        ])
        .args(["--order", "event-time", "--file"])
        .arg(week("240106")));
    let lake = dir.path().join("lake");
    let mut child = pipeline(dir.path(), &broker.bootstrap(), &lake)
        .env("CHECKPOINT_INTERVAL", "1s")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The broker goes down while the run is in flight: after its first batch, before its end.
    assert!(
        wait_for_first_batch(&mut child),
        "the run ended before its first batch"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before the broker restart"
    );
    broker.restart().expect("tansu restarts on the same port");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Pipeline `turnstile` finished."),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_rows(
        &lake_rows(&lake),
        &expected_rows("mta-turnstile-240106.cumulative.csv"),
    );
}

/// A checkpoint that does not fit the source stops the run instead of being applied
/// silently: the pipeline checkpointed a 3-partition topic, then meets a fresh broker whose
/// topic of the same name has one partition.
#[test]
fn a_checkpoint_of_partitions_the_topic_lacks_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.csv");
    let lines: Vec<String> = {
        use std::io::BufRead;
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(week("240106")).unwrap());
        std::io::BufReader::new(gz)
            .lines()
            .take(400)
            .map(Result::unwrap)
            .collect()
    };
    std::fs::write(&small, lines.join("\n") + "\n").unwrap();
    let lake = dir.path().join("lake");
    let run = |bootstrap: &str| {
        sluice(dir.path())
            .args(["run", "--once", "--pipelines"])
            .arg(repo().join("pipelines/turnstile.yaml"))
            .env("KAFKA_BROKERS", bootstrap)
            .env("TURNSTILE_TOPIC", "turnstile")
            .env("LAKE_URL", format!("file://{}", lake.display()))
            .output()
            .unwrap()
    };
    let first = LocalBroker::start().expect("tansu");
    produce_into(
        dir.path(),
        &first.bootstrap(),
        "turnstile",
        std::slice::from_ref(&small),
        3,
    );
    let out = run(&first.bootstrap());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(first);
    let second = LocalBroker::start().expect("tansu");
    produce_into(dir.path(), &second.bootstrap(), "turnstile", &[small], 1);
    let out = run(&second.bootstrap());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("hold offsets of partitions ["), "{text}");
    assert!(
        text.contains("/api/v1/pipelines/turnstile/offsets"),
        "{text}"
    );
    assert!(text.contains("checkpoint.url"), "{text}");
}
