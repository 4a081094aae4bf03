//! Crash safety on a real broker: the three shared weeks are replayed into tansu, then
//! `sluice run --once` is killed with SIGKILL at random moments of its processing and once in
//! the middle of a checkpoint write; in a second test, from an empty state, it dies six times
//! right after a sink write (before its checkpoint) on days spread over the three weeks.
//! Each run continues from the last checkpoint; the final lake must equal the oracle
//! exactly, with one object per window and source partition (each task writes its
//! partition's stations of a window as one object) and no duplicate row. A broker restart in the middle of a run
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
    finish_and_compare_with_the_oracle(dir.path(), &broker.bootstrap(), &lake);
}

/// Runs to the end of the topic once more, then checks the lake against the oracle: every
/// window exactly once, one object per window and source partition.
fn finish_and_compare_with_the_oracle(dir: &Path, broker: &str, lake: &Path) {
    let out = ok(pipeline(dir, broker, lake).stdout(Stdio::piped()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Pipeline `turnstile` finished."),
        "{stdout}"
    );

    let rows = lake_rows(lake);
    let expected = expected_rows("mta-turnstile-3weeks.cumulative.csv");
    assert_same_rows(&rows, &expected);
    let mut dedup = rows.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), rows.len(), "a window was written twice");
    let windows = objects_per_window(lake);
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

/// Noon of six days, two in each of the three weeks (milliseconds since the Unix epoch).
const CRASH_DAYS: [(&str, i64); 6] = [
    ("2024-01-02", 1_704_196_800_000),
    ("2024-01-04", 1_704_369_600_000),
    ("2024-01-08", 1_704_715_200_000),
    ("2024-01-10", 1_704_888_000_000),
    ("2024-01-15", 1_705_320_000_000),
    ("2024-01-18", 1_705_579_200_000),
];

/// Runs that die right after the sinks wrote a batch of windows, before a checkpoint covers
/// it (`SLUICE_FAILPOINT=sink-written-at:<ms>`), once the watermark reached each of
/// [`CRASH_DAYS`]: each run continues from the last checkpoint, gets exactly that far (its
/// watermark at the crash is on that day), and the next one writes those windows again.
/// The runs start from an empty state folder, so that the first checkpoint they continue
/// from is the one the previous crash left (the random kills of the other test may carry a
/// run past any given day).
#[test]
fn a_crash_right_after_a_sink_write_on_six_days_still_gives_each_window_exactly_once() {
    if !cfg!(feature = "failpoints") {
        eprintln!("no sink-write crashes: build with `--features sluice-host/failpoints`");
        return;
    }
    let broker = LocalBroker::start().expect("tansu starts");
    let state = tempfile::tempdir().unwrap();
    let (dir, broker) = (state.path(), broker.bootstrap());
    produce_weeks(dir, &broker, "turnstile", &["240106", "240113", "240120"]);
    let lake = &dir.join("lake");
    const DAY_MS: i64 = 86_400_000;
    for (day, at) in CRASH_DAYS {
        let out = pipeline(dir, &broker, lake)
            .env("SLUICE_FAILPOINT", format!("sink-written-at:{at}"))
            .output()
            .unwrap();
        let stderr = plain(&String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{day}: no crash\n{stderr}");
        let field = |name: &str| -> i64 {
            let (_, rest) = stderr
                .split_once(&format!("{name}="))
                .unwrap_or_else(|| panic!("{day}: the fail-point did not fire\n{stderr}"));
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap()
        };
        let (watermark, records) = (field("watermark_ms"), field("records_in"));
        eprintln!(
            "{day}: crashed after a sink write at watermark {watermark}, {records} records in"
        );
        assert!(
            (at..at + DAY_MS).contains(&watermark),
            "{day}: the run crashed at watermark {watermark}, not on that day"
        );
        assert!(records > 0, "{day}: the run read nothing");
    }
    finish_and_compare_with_the_oracle(dir, &broker, lake);
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
/// silently. The pipeline checkpointed a 3-partition topic (a second run at its end reads
/// nothing and is fine), then meets fresh brokers whose topic of the same name has one
/// partition, or three partitions holding fewer records than the checkpoint read.
#[test]
fn a_checkpoint_that_does_not_fit_the_topic_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = {
        use std::io::BufRead;
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(week("240106")).unwrap());
        std::io::BufReader::new(gz)
            .lines()
            .take(400)
            .map(Result::unwrap)
            .collect()
    };
    let (small, smaller) = (dir.path().join("small.csv"), dir.path().join("smaller.csv"));
    std::fs::write(&small, lines.join("\n") + "\n").unwrap();
    std::fs::write(&smaller, lines[..100].join("\n") + "\n").unwrap();
    let lake = dir.path().join("lake");
    let run = |bootstrap: &str| {
        let out = sluice(dir.path())
            .args(["run", "--once", "--pipelines"])
            .arg(repo().join("pipelines/turnstile.yaml"))
            .env("KAFKA_BROKERS", bootstrap)
            .env("TURNSTILE_TOPIC", "turnstile")
            .env("LAKE_URL", format!("file://{}", lake.display()))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let first = LocalBroker::start().expect("tansu");
    produce_into(
        dir.path(),
        &first.bootstrap(),
        "turnstile",
        std::slice::from_ref(&small),
        3,
    );
    for _ in 0..2 {
        let (ok, text) = run(&first.bootstrap());
        assert!(ok, "{text}");
    }
    drop(first);
    let refused = |text: &str, what: &str| {
        assert!(text.contains(what), "{text}");
        assert!(
            text.contains("/api/v1/pipelines/turnstile/offsets"),
            "{text}"
        );
        assert!(text.contains("checkpoint.url"), "{text}");
    };

    let fewer_partitions = LocalBroker::start().expect("tansu");
    produce_into(
        dir.path(),
        &fewer_partitions.bootstrap(),
        "turnstile",
        std::slice::from_ref(&small),
        1,
    );
    let (ok, text) = run(&fewer_partitions.bootstrap());
    assert!(!ok, "{text}");
    refused(&text, "hold offsets of partitions [");
    drop(fewer_partitions);

    let fewer_records = LocalBroker::start().expect("tansu");
    produce_into(
        dir.path(),
        &fewer_records.bootstrap(),
        "turnstile",
        &[smaller],
        3,
    );
    let (ok, text) = run(&fewer_records.bootstrap());
    assert!(!ok, "{text}");
    refused(
        &text,
        // The first 400 lines are of one station: one partition holds them all.
        "past the end of what this broker holds: partition 1 at offset 399 (its end: 99)",
    );
}
