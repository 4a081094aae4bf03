//! Shared helpers of the integration tests: a real tansu broker, the `sluice` binary, the
//! shared MTA data, and reading a lake back.

#![allow(dead_code, reason = "each test binary uses a part of the helpers")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use sluice_host::broker::LocalBroker;

/// A child process (a host) killed when the test ends, however it ends.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback address with a free port.
pub fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The shared data folder (`../shared/data` beside the repository).
pub fn data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    assert!(
        dir.is_dir(),
        "the shared MTA data is missing: expected it at {}",
        dir.display()
    );
    dir
}

/// A shared MTA week.
pub fn week(name: &str) -> PathBuf {
    data_dir().join(format!("mta-turnstile-{name}.csv.gz"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `sluice` binary with the plugins of this build and a private state folder
/// (`SLUICE_TEST_BIN` runs the tests against another build of the binary).
pub fn sluice(state: &Path) -> Command {
    let bin =
        std::env::var_os("SLUICE_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_sluice").into());
    let mut cmd = Command::new(bin);
    cmd.current_dir(state)
        .env("SLUICE_STATE_DIR", state.join(".sluice"))
        .env("SLUICE_PLUGIN_PATH", sluice_plugin_artifacts::PLUGIN_DIR)
        .env("RUST_LOG", "info,rdkafka=warn");
    cmd
}

/// The plugin search path of the shipped plugins and the test plugins (hostile ones).
pub fn test_plugin_path() -> String {
    format!(
        "{}:{}",
        sluice_plugin_artifacts::PLUGIN_DIR,
        sluice_plugin_artifacts::TEST_PLUGIN_DIR
    )
}

/// Runs `cmd`, failing the test with its output unless it exits 0.
pub fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the sluice binary runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `text` without ANSI colour sequences (a host's log).
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Every file under `dir`, at any depth (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                dirs.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// Every data line of every `station=*` gzip CSV object under `lake`, sorted.
pub fn lake_rows(lake: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    let mut files = Vec::new();
    collect(lake, &mut files);
    for file in files {
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&file).unwrap())
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("{} is not gzip text: {e}", file.display()));
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("station,window_start,window_end,entries,exits"),
            "{}",
            file.display()
        );
        rows.extend(lines.map(str::to_owned));
    }
    rows.sort();
    rows
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() && !name.starts_with('_') {
            collect(&path, out);
        } else if name.ends_with(".csv.gz") {
            out.push(path);
        }
    }
}

/// The rows of an oracle file, sorted, header removed.
pub fn expected_rows(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(data_dir().join("expected").join(name)).unwrap();
    let mut rows: Vec<String> = text.lines().skip(1).map(str::to_owned).collect();
    rows.sort();
    rows
}

/// Asserts two sorted row lists are equal, showing the first differences.
pub fn assert_same_rows(actual: &[String], expected: &[String]) {
    if actual == expected {
        return;
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|r| actual.binary_search(r).is_err())
        .take(10)
        .collect();
    let extra: Vec<&String> = actual
        .iter()
        .filter(|r| expected.binary_search(r).is_err())
        .take(10)
        .collect();
    panic!(
        "lake rows differ from the oracle: {} rows vs {} expected\nmissing (first 10): {missing:#?}\nunexpected (first 10): {extra:#?}",
        actual.len(),
        expected.len()
    );
}

/// A webhook pipeline (nothing posted: it runs until stopped) with the given counters.
pub fn webhook_spec(name: &str, counters: &str) -> String {
    format!(
        r#"version: 1
name: {name}
source:
  http: {{ listen: "127.0.0.1:0", path: /ingest }}
steps:
  - transform: {{ plugin: turnstile-parse@^0.1, config: {{ format: auto }} }}
  - window:
      plugin: turnstile-window@^0.1
      event_time: timestamp
      size: 4h
      delay: 4h
      config: {{ counters: {counters}, group_by: [station] }}
sinks:
  - live: {{}}
"#
    )
}

/// `sluice produce` of `files` into `topic` (created with `partitions` partitions), keyed by
/// station, in event-time order.
pub fn produce_into(dir: &Path, bootstrap: &str, topic: &str, files: &[PathBuf], partitions: u32) {
    let mut produce = sluice(dir);
    produce
        .args(["produce", "--brokers", bootstrap, "--topic", topic])
        .args(["--partitions", &partitions.to_string(), "--key", "station"]);
    for file in files {
        produce.arg("--file").arg(file);
    }
    ok(&mut produce);
}

/// `sluice produce` of shared weeks into `topic`, in event-time order.
pub fn produce_weeks(dir: &Path, bootstrap: &str, topic: &str, weeks: &[&str]) {
    let mut produce = sluice(dir);
    produce
        .args(["produce", "--brokers", bootstrap, "--topic", topic])
        .args(["--order", "event-time"]);
    for w in weeks {
        produce.arg("--file").arg(week(w));
    }
    ok(&mut produce);
}

/// A warehouse table of turnstile windows as oracle lines, sorted; the table is dropped.
pub async fn window_table_rows(url: &str, table: &str) -> Vec<String> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL is reachable");
    tokio::spawn(conn);
    let sql = format!(
        "SELECT station || ',' || to_char(window_start, 'YYYY-MM-DD HH24:MI:SS') || ',' || \
         to_char(window_end, 'YYYY-MM-DD HH24:MI:SS') || ',' || entries || ',' || exits \
         FROM {table}"
    );
    let mut rows: Vec<String> = client
        .query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    rows.sort();
    client
        .execute(&format!("DROP TABLE {table}"), &[])
        .await
        .unwrap();
    rows
}
