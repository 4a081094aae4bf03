//! Tasks over partitions on a real broker (tansu): one task's failure does not stop the
//! others. A week keyed by station in a 3-partition topic, plus one poisoned record (`BOOM`)
//! in one partition:
//! - a transform that traps on it under `on_violation: fail` stops that partition's task
//!   alone; every window the other tasks wrote equals the oracle, and the run ends failed
//!   naming the partition;
//! - a window that traps on it under `on_violation: restart` restarts its task alone from the
//!   partition's checkpoint (the source reads that partition again) up to 3 times, then stops
//!   it, while the other tasks finish.

mod common;

use std::path::Path;

use common::*;

/// A record the hostile window traps on, early in the week (event-time order puts it in one of
/// its partition's first batches): the source is then far from its end when a task restarts
/// and asks to read the partition again. (Near the end, `--once` can finish reading before the
/// request arrives, which stops the task instead: a race that made the restart test flaky
/// under load.)
const POISON: &str = "Z999,R999,00-00-00,BOOM ST,1,BMT,12/30/2023,04:00:00,BOOM,7,7\n";

/// A broker with week 240106 and the poisoned record in topic `turnstile` (3 partitions,
/// keyed by station, in event-time order).
fn poisoned_topic(dir: &Path) -> LocalBroker {
    let broker = LocalBroker::start().expect("tansu starts");
    let poison = dir.join("poison.csv");
    std::fs::write(&poison, POISON).unwrap();
    let files = [week("240106"), poison];
    produce_into(dir, &broker.bootstrap(), "turnstile", &files, 3);
    broker
}

/// Parse, then the 4-hour cumulative window per station.
const WINDOW_STEPS: &str =
    "  - transform: { plugin: turnstile-parse@^0.1, config: { format: auto } }
  - window:
      plugin: turnstile-window@^0.1
      event_time: timestamp
      size: 4h
      delay: 4h
      config: { counters: cumulative, group_by: [station] }";

fn spec(steps: &str, sink: &str) -> String {
    format!(
        r#"version: 1
name: tasks
source:
  kafka: {{ brokers: "${{KAFKA_BROKERS}}", topic: turnstile, key: [station] }}
steps:
{steps}
sinks:
  - {sink}
parallelism: 3
checkpoint: {{ interval: 200ms }}
"#
    )
}

fn run_once(dir: &Path, broker: &LocalBroker, spec: &str) -> (bool, String) {
    let file = dir.join("tasks.yaml");
    std::fs::write(&file, spec).unwrap();
    let out = sluice(dir)
        .args(["run", "--once", "--pipelines"])
        .arg(&file)
        .env("KAFKA_BROKERS", broker.bootstrap())
        .env("SLUICE_PLUGIN_PATH", test_plugin_path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_task_that_fails_stops_alone_and_the_others_write_their_windows() {
    let dir = tempfile::tempdir().unwrap();
    let broker = poisoned_topic(dir.path());
    let lake = dir.path().join("lake");
    let steps = format!(
        "  - transform: {{ plugin: hostile@0.1.0, limits: {{ on_violation: fail }} }}\n{WINDOW_STEPS}"
    );
    let sink = format!(
        "lake: {{ url: \"file://{}\", partition_by: [window_start] }}",
        lake.display()
    );
    let (success, log) = run_once(dir.path(), &broker, &spec(&steps, &sink));
    assert!(!success, "the run must end failed:\n{log}");
    assert!(
        log.contains("1 of the pipeline's tasks failed (the others ran on): partition "),
        "{log}"
    );
    assert!(
        log.contains("A task failed; the pipeline's other tasks go on"),
        "{log}"
    );
    // Every row written is right, and the two healthy partitions' stations are all there.
    let expected = expected_rows("mta-turnstile-240106.cumulative.csv");
    let rows = lake_rows(&lake);
    let known: std::collections::BTreeSet<&String> = expected.iter().collect();
    let wrong: Vec<&String> = rows.iter().filter(|r| !known.contains(r)).take(5).collect();
    assert!(wrong.is_empty(), "rows not in the oracle: {wrong:?}");
    assert!(
        rows.len() * 2 >= expected.len(),
        "the other tasks' windows are missing: {} of {} rows",
        rows.len(),
        expected.len()
    );
}

#[test]
fn a_window_that_traps_restarts_its_task_alone_from_the_partition_s_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let broker = poisoned_topic(dir.path());
    let steps = "  - transform: { plugin: turnstile-parse@^0.1, config: { format: auto } }
  - window:
      plugin: hostile-window@0.1.0
      event_time: timestamp
      size: 4h
      limits: { on_violation: restart }
      config: { group_by: [station] }";
    let (success, log) = run_once(dir.path(), &broker, &spec(steps, "stdout: {}"));
    assert!(!success, "the poisoned task fails in the end:\n{log}");
    // A checkpoint between two restarts resets the count (the task made progress); three in
    // a row at the poisoned batch stop it; with `--once` the source may also reach the end of
    // its input before it could read the partition again, which stops the task as well.
    let log = plain(&log);
    let restarts = log
        .matches("A task restarts from its partition's last checkpoint")
        .count();
    assert!(restarts >= 1, "the task restarts:\n{log}");
    assert!(
        !log.contains("restarts=4 "),
        "never a fourth in a row:\n{log}"
    );
    assert!(
        log.contains("Reading the partition again"),
        "the source reads the partition again:\n{log}"
    );
    let stopped = log.contains("stopped after 3 restarts in a row")
        || log.contains("the source ended before partition");
    assert!(stopped, "the task stops, saying why:\n{log}");
    assert!(log.contains("1 of the pipeline's tasks failed"), "{log}");
    assert!(
        !log.contains("Restarting the pipeline"),
        "only the task restarts:\n{log}"
    );
    // The healthy tasks ran to the end of their partitions: their checkpoints hold the end.
    let checkpoints = dir.path().join(".sluice/checkpoints/tasks");
    let partitions: Vec<_> = std::fs::read_dir(&checkpoints)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("partition-"))
        .collect();
    let names: Vec<String> = partitions
        .iter()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let failed = log
        .split("A task failed; the pipeline's other tasks go on. partition=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("the failed partition is named");
    for p in ["0", "1", "2"].into_iter().filter(|&p| p != failed) {
        assert!(
            names.contains(&format!("partition-{p}")),
            "the healthy partition {p} checkpointed on its own: {names:?}\n{log}"
        );
    }
}

/// `GET path` on `addr`: the JSON body, or `None` while the host does not answer.
fn get_json(addr: &str, path: &str) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()
}

#[test]
fn tasks_checkpoint_and_commit_the_end_of_a_partition_that_went_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let broker = poisoned_topic(dir.path());
    let steps = WINDOW_STEPS;
    // A checkpoint interval longer than the whole topic takes to read: only checkpoints
    // taken after the records stopped can hold the partitions' ends.
    let text = spec(steps, "stdout: {}").replace("interval: 200ms", "interval: 2s");
    let file = dir.path().join("tasks.yaml");
    std::fs::write(&file, text).unwrap();
    let api = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut host = sluice(dir.path())
        .args(["run", "--pipelines"])
        .arg(&file)
        .args(["--api", &api])
        .env("KAFKA_BROKERS", broker.bootstrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let mut last = serde_json::Value::Null;
    let committed = loop {
        if let Some(detail) = get_json(&api, "/api/v1/pipelines/tasks") {
            let lag = detail["status"]["lag"].clone();
            // Every record of the topic (the week and the poisoned record) is committed. The
            // offsets, not the lag: tansu 0.6 reports high watermarks below the last offsets.
            let offsets: i64 = lag
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["offset"].as_i64())
                .filter(|&o| o > 0)
                .sum();
            let done = offsets == 250_817;
            last = lag;
            if done {
                break true;
            }
        }
        if started.elapsed() > std::time::Duration::from_secs(40) {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let _ = host.kill();
    let _ = host.wait();
    assert!(
        committed,
        "the group's offsets reach the end of every partition while the host runs: {last}"
    );
}
