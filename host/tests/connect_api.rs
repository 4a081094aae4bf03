//! The Kafka Connect face (`sluice run --connect-api`) driven by a real Connect REST client
//! from PyPI (kafka-connect-py, host/tests/connect/drive.py) against a running host and a
//! real broker holding week 240106: create, status, pause, resume, stop, offsets (KIP-875),
//! restart and delete of the turnstile pipeline. Every window the lake holds afterwards,
//! after the offsets were reset and the week read twice, equals the oracle's. Prints the time
//! from `create` to RUNNING.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const WEEK_RECORDS: u64 = 250_816;
const PARTITIONS: u32 = 3;

/// The test venv's Python (make test-tools installs the client into it).
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("SLUICE_TEST_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            Some(PathBuf::from(home).join(".cache/sluice/venv/bin/python"))
        })?;
    path.is_file().then_some(path)
}

fn spec(broker: &str, lake: &Path) -> String {
    format!(
        r#"# The turnstile pipeline, created through the Connect face.
version: 1
name: turnstile
source:
  kafka: {{ brokers: "{broker}", topic: placeholder, group: connect-turnstile, key: [station] }}
steps:
  - transform: {{ plugin: turnstile-parse@^0.1, config: {{ format: auto }} }}
  - window:
      plugin: turnstile-window@^0.1
      event_time: timestamp
      size: 4h
      delay: 4h
      config: {{ counters: cumulative, group_by: [station] }}
sinks:
  - lake: {{ url: "file://{}", partition_by: [window_start] }}
checkpoint: {{ interval: 1s }}
"#,
        lake.display()
    )
}

#[test]
fn a_connect_client_manages_the_turnstile_pipeline() {
    let Some(python) = python() else {
        panic!(
            "the test venv is missing: run `make test-tools` (it installs kafka-connect-py into \
             $HOME/.cache/sluice/venv) or point $SLUICE_TEST_PYTHON at a Python that has it"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let broker = LocalBroker::start().expect("tansu starts");
    produce_into(
        dir.path(),
        &broker.bootstrap(),
        "turnstile",
        &[week("240106")],
        PARTITIONS,
    );
    let folder = dir.path().join("pipelines");
    std::fs::create_dir_all(&folder).unwrap();
    let lake = dir.path().join("lake");
    // The spec names a placeholder topic: the Connect config's `topics` replaces it.
    let spec_file = dir.path().join("turnstile.yaml");
    std::fs::write(&spec_file, spec(&broker.bootstrap(), &lake)).unwrap();
    let (api, connect) = (free_addr(), free_addr());
    let _host = Running(
        sluice(dir.path())
            .arg("run")
            .arg("--pipelines")
            .arg(&folder)
            .args([
                "--api",
                &api.to_string(),
                "--connect-api",
                &connect.to_string(),
            ])
            .arg("--api-grant-files")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("sluice runs"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(connect).is_err() {
        assert!(Instant::now() < deadline, "the Connect API did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = std::process::Command::new(python)
        .arg(repo().join("host/tests/connect/drive.py"))
        .arg(format!("http://{connect}"))
        .arg(&spec_file)
        .args([
            "turnstile",
            &PARTITIONS.to_string(),
            &WEEK_RECORDS.to_string(),
        ])
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("connect drive ok"),
        "the Connect client's drive failed:\n{stdout}\n{stderr}"
    );
    assert!(
        !folder.join("turnstile.yaml").exists(),
        "the delete removed the spec file"
    );
    // The windows closed so far (the last ones stay open on a live source) equal the oracle.
    let expected = expected_rows("mta-turnstile-240106.cumulative.csv");
    let rows = lake_rows(&lake);
    let wrong: Vec<&String> = rows
        .iter()
        .filter(|r| expected.binary_search(r).is_err())
        .take(10)
        .collect();
    assert!(wrong.is_empty(), "rows unlike the oracle's: {wrong:#?}");
    assert!(
        rows.len() * 10 >= expected.len() * 9,
        "{} of {} oracle rows in the lake",
        rows.len(),
        expected.len()
    );
}
