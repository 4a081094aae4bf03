//! The lake on the S3 protocol, read back by tools no one here wrote. A real S3-compatible
//! server (moto's, from PyPI) holds the lake; the three shared weeks go through
//! pipelines/turnstile.yaml into a Delta table (`LAKE_FORMAT=delta`): the first run is killed
//! with SIGKILL mid-run and run again from its checkpoints, then the whole topic is replayed
//! with a new consumer group and new checkpoints into the same table. After each, delta-rs's
//! Python reader (`deltalake`) reads the table and it must equal the oracle: no row lost,
//! none twice. The same weeks as plain Parquet objects (`LAKE_FORMAT=parquet`) read back
//! with pyarrow, with typed columns.

mod common;
#[path = "lake/s3.rs"]
mod s3;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use s3::S3Server;

const WEEKS: [&str; 3] = ["240106", "240113", "240120"];
const ORACLE: &str = "mta-turnstile-3weeks.cumulative.csv";

fn pipeline(
    state: &Path,
    broker: &str,
    s3: &S3Server,
    format: &str,
    url: &str,
    group: &str,
) -> Command {
    let mut cmd = sluice(state);
    cmd.args(["run", "--once", "--pipelines"])
        .arg(repo().join("pipelines/turnstile.yaml"))
        .env("KAFKA_BROKERS", broker)
        .env("TURNSTILE_TOPIC", "turnstile")
        .env("TURNSTILE_GROUP", group)
        .env("LAKE_FORMAT", format)
        .env("LAKE_URL", url)
        .env("CHECKPOINT_INTERVAL", "300ms");
    s3.env(&mut cmd);
    cmd
}

/// Runs `cmd` until it has processed its first batch and `after` more, then kills it with
/// SIGKILL; false when it finished by itself first.
fn kill_mid_run(mut cmd: Command, after: Duration) -> bool {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
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
    std::thread::sleep(after);
    if child.try_wait().unwrap().is_some() {
        return false;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// `version=N files=M` of the reader's stderr.
fn table_state(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("version="))
        .expect(stderr);
    let mut fields = line
        .split(' ')
        .map(|f| f.split_once('=').unwrap().1.parse().unwrap());
    (fields.next().unwrap(), fields.next().unwrap())
}

#[test]
fn a_delta_table_on_s3_equals_the_oracle_after_a_kill_and_a_full_replay() {
    let s3 = S3Server::start("lake");
    let broker = LocalBroker::start().expect("tansu starts");
    let dir = tempfile::tempdir().unwrap();
    produce_weeks(dir.path(), &broker.bootstrap(), "turnstile", &WEEKS);
    let expected = expected_rows(ORACLE);
    let url = "s3://lake/turnstile";

    // The first run dies mid-run; its rerun continues from the checkpoints.
    let first = dir.path().join("first");
    std::fs::create_dir_all(&first).unwrap();
    let killed = kill_mid_run(
        pipeline(&first, &broker.bootstrap(), &s3, "delta", url, "first"),
        Duration::from_millis(150),
    );
    eprintln!("first run killed mid-run: {killed}");
    if killed {
        // What the kill left is a consistent table: only whole checkpoints' rows.
        let (rows, _) = s3.read("delta", url);
        assert!(rows.len() < expected.len(), "the kill came after the end");
        assert!(rows.iter().all(|r| expected.binary_search(r).is_ok()));
    }
    ok(&mut pipeline(
        &first,
        &broker.bootstrap(),
        &s3,
        "delta",
        url,
        "first",
    ));
    let (rows, stderr) = s3.read("delta", url);
    assert_same_rows(&rows, &expected);
    let (version, files) = table_state(&stderr);
    assert!(
        stderr.contains("window_start:timestamp[us, tz=UTC]") && stderr.contains("entries:int64"),
        "{stderr}"
    );

    // The whole topic again, with a new group and new checkpoints: nothing is added.
    let second = dir.path().join("second");
    std::fs::create_dir_all(&second).unwrap();
    ok(&mut pipeline(
        &second,
        &broker.bootstrap(),
        &s3,
        "delta",
        url,
        "second",
    ));
    let (rows, stderr) = s3.read("delta", url);
    assert_same_rows(&rows, &expected);
    assert_eq!(
        table_state(&stderr),
        (version, files),
        "the replay added files or commits"
    );
}

#[test]
fn parquet_objects_on_s3_read_back_with_pyarrow_as_the_oracle() {
    let s3 = S3Server::start("lake");
    let broker = LocalBroker::start().expect("tansu starts");
    let dir = tempfile::tempdir().unwrap();
    produce_weeks(dir.path(), &broker.bootstrap(), "turnstile", &WEEKS);
    let url = "s3://lake/parquet";
    ok(&mut pipeline(
        dir.path(),
        &broker.bootstrap(),
        &s3,
        "parquet",
        url,
        "parquet",
    ));
    let (rows, stderr) = s3.read("parquet", url);
    assert_same_rows(&rows, &expected_rows(ORACLE));
    assert!(
        stderr.contains("window_start:timestamp[us, tz=UTC]") && stderr.contains("entries:int64"),
        "{stderr}"
    );
}

#[test]
fn a_table_whose_schema_differs_is_refused_with_both_schemas() {
    let s3 = S3Server::start("lake");
    let dir = tempfile::tempdir().unwrap();
    // A table of other columns at the URL (written by sluice itself from a parse-only
    // pipeline over a file).
    let spec = dir.path().join("parsed.yaml");
    let write = |url: &str, steps: &str| {
        std::fs::write(
            &spec,
            format!(
                "version: 1\nname: parsed\nsource: {{ file: {{ paths: [\"{}\"] }} }}\n\
                 steps:\n{steps}sinks:\n  - lake: {{ url: \"{url}\", format: delta }}\n",
                week("240106").display()
            ),
        )
        .unwrap();
        let mut cmd = sluice(dir.path());
        cmd.args(["run", "--once", "--pipelines"]).arg(&spec);
        s3.env(&mut cmd);
        cmd.output().unwrap()
    };
    let parse = "  - transform: { plugin: turnstile-parse@^0.1, config: { format: weekly } }\n";
    let out = write("s3://lake/t", parse);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let window = format!(
        "{parse}  - window: {{ plugin: turnstile-window@^0.1, event_time: timestamp, size: 4h, \
         delay: 4h, config: {{ counters: cumulative, group_by: [station] }} }}\n"
    );
    let out = write("s3://lake/t", &window);
    let stderr = plain(&String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("The Delta table at `s3://lake/t` has the columns (")
            && stderr.contains("but the rows reaching this sink are (station string not null"),
        "{stderr}"
    );
}
