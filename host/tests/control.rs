//! The control plane over real TCP with the real binary: `sluice run --pipelines <folder>
//! --api <addr>` follows its folder (a file added, changed, broken, fixed and deleted while
//! it runs), keeps pipelines created through the API in the folder across a restart, and
//! switches a Kafka pipeline to a new window plugin version under load (the consumption
//! pause is measured and printed as a figure, never asserted). Two hosts of one cluster
//! share a pipeline created, changed and deleted through either's API.

mod common;
#[path = "control/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use harness::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn counters(body: &Value) -> &Value {
    &body["spec"]["steps"][1]["window"]["config"]["counters"]
}

fn state(body: &Value) -> &Value {
    &body["status"]["state"]
}

fn run_folder(dir: &Path, folder: &Path) -> std::process::Command {
    let mut cmd = sluice(dir);
    cmd.args(["run", "--pipelines"]).arg(folder);
    cmd
}

#[test]
fn a_folder_file_added_changed_broken_fixed_and_deleted_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("pipelines");
    std::fs::create_dir_all(&folder).unwrap();
    let host = Sluice::start(run_folder(dir.path(), &folder), dir.path(), "run.log");
    let path = "/api/v1/pipelines/reload";
    let file = folder.join("reload.yaml");

    let saved = Instant::now();
    std::fs::write(&file, webhook_spec("reload", "cumulative")).unwrap();
    host.wait_for(path, "the added file runs", WAIT, |c, b| {
        c == 200 && state(b) == "running"
    });
    println!(
        "FIGURE file save to pipeline running (new file): {} ms",
        saved.elapsed().as_millis()
    );

    let saved = Instant::now();
    std::fs::write(&file, webhook_spec("reload", "incremental")).unwrap();
    host.wait_for(path, "the changed file runs", WAIT, |c, b| {
        c == 200 && counters(b) == "incremental" && state(b) == "running"
    });
    println!(
        "FIGURE file save to pipeline running (changed file): {} ms",
        saved.elapsed().as_millis()
    );

    let broken = webhook_spec("reload", "cumulative").replace("size: 4h", "sise: 4h");
    std::fs::write(&file, broken).unwrap();
    let body = host.wait_for(path, "the broken file is refused", WAIT, |c, b| {
        c == 200
            && b["status"]["spec_errors"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
    });
    assert_eq!(state(&body), "running", "the running version stays: {body}");
    assert_eq!(
        counters(&body),
        "incremental",
        "the running version stays: {body}"
    );
    let error = &body["status"]["spec_errors"][0];
    assert_eq!(
        (error["line"].as_u64(), error["column"].as_u64()),
        (Some(10), Some(7)),
        "{body}"
    );
    let place = format!("{}:10:7", file.display());
    let last = body["status"]["last_error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        last.contains(&place) && last.contains("unknown field `sise`"),
        "{body}"
    );
    assert!(body["status"]["last_error"]["time"].is_string(), "{body}");
    assert!(
        host.log_text().contains(&place),
        "the log names {place}:\n{}",
        host.log_text()
    );

    std::fs::write(&file, webhook_spec("reload", "cumulative")).unwrap();
    host.wait_for(path, "the fixed file runs", WAIT, |c, b| {
        c == 200
            && counters(b) == "cumulative"
            && state(b) == "running"
            && b["status"]["spec_errors"]
                .as_array()
                .is_some_and(Vec::is_empty)
    });

    std::fs::remove_file(&file).unwrap();
    let body = host.wait_for(path, "the deleted file's pipeline is gone", WAIT, |c, _| {
        c == 404
    });
    assert_eq!(body["code"], "pipeline_not_found", "{body}");
    assert_eq!(host.get("/api/v1/pipelines"), (200, serde_json::json!([])));
    assert!(host.terminate(), "sluice run exits 0 on SIGTERM");
}

/// Two hosts of one cluster (`--cluster`, each with its own state and pipelines folders): a
/// pipeline created through the API of host A runs on host B, a change through B reaches A,
/// and a delete through B stops it on both; `/api/v1/cluster` on either lists both hosts
/// with their tasks. A spec file of B's own folder stays B's (file-managed).
#[test]
fn a_pipeline_created_through_the_api_of_one_host_runs_on_every_host_of_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = format!("file://{}", dir.path().join("cluster").display());
    let start = |name: &str| {
        let home = dir.path().join(name);
        let folder = home.join("pipelines");
        std::fs::create_dir_all(&folder).unwrap();
        let mut cmd = run_folder(&home, &folder);
        cmd.args(["--cluster", &cluster]);
        (Sluice::start(cmd, &home, "run.log"), folder)
    };
    let (a, folder_a) = start("a");
    let (b, folder_b) = start("b");
    let own = webhook_spec("local-only", "incremental");
    std::fs::write(folder_b.join("local-only.yaml"), &own).unwrap();

    let spec = webhook_spec("shared", "cumulative");
    let (code, body) = a
        .call(
            "POST",
            "/api/v1/pipelines",
            Some(("application/yaml", &spec)),
        )
        .unwrap();
    assert_eq!(code, 201, "{body}");
    let path = "/api/v1/pipelines/shared";
    b.wait_for(
        path,
        "the pipeline created on A runs on B",
        WAIT,
        |c, body| c == 200 && state(body) == "running",
    );
    assert_eq!(
        std::fs::read_to_string(folder_b.join("shared.yaml")).unwrap(),
        spec
    );

    // Both hosts, each with its tasks, seen from either.
    let both = |c: u16, body: &Value| {
        let hosts = body["hosts"].as_array().map_or(0, Vec::len);
        let running = body["hosts"].as_array().is_some_and(|hosts| {
            hosts.iter().all(|h| {
                h["pipelines"].as_array().is_some_and(|ps| {
                    ps.iter().any(|p| {
                        p["name"] == "shared"
                            && p["tasks"][0]["partitions"] == serde_json::json!([0])
                    })
                })
            })
        });
        c == 200 && hosts == 2 && running
    };
    let seen = a.wait_for("/api/v1/cluster", "A sees both hosts", WAIT, both);
    assert_eq!(seen["clustered"], true, "{seen}");
    b.wait_for("/api/v1/cluster", "B sees both hosts", WAIT, both);
    // B's own file is not shared.
    assert!(!folder_a.join("local-only.yaml").exists());
    // Each task's partitions are a metric series too.
    let (code, metrics) = a.get("/metrics");
    let text = metrics.as_str().unwrap_or_default();
    let series = r#"sluice_task_partition{pipeline="shared",task="0",partition="0"} 1"#;
    assert!(code == 200 && text.contains(series), "{code} {text}");

    // A change through B reaches A.
    let changed = webhook_spec("shared", "incremental");
    let (code, body) = b
        .call("PUT", path, Some(("application/yaml", &changed)))
        .unwrap();
    assert_eq!(code, 200, "{body}");
    a.wait_for(path, "the change made on B reaches A", WAIT, |c, body| {
        c == 200 && counters(body) == "incremental" && state(body) == "running"
    });

    // A delete through B stops it on both.
    let (code, body) = b.call("DELETE", path, None).unwrap();
    assert!(code == 204 || code == 200, "{code} {body}");
    a.wait_for(path, "the delete made on B reaches A", WAIT, |c, _| {
        c == 404
    });
    assert!(!folder_a.join("shared.yaml").exists());
    b.wait_for(
        "/api/v1/pipelines/local-only",
        "B's own pipeline runs",
        WAIT,
        |c, body| c == 200 && state(body) == "running",
    );
    assert!(a.terminate(), "host A exits 0 on SIGTERM");
    assert!(b.terminate(), "host B exits 0 on SIGTERM");
}

/// A webhook pipeline without a window (a task over its one partition) restarted from its
/// checkpoint keeps every record posted after the restart: a webhook's offsets, a new count
/// each run, are never taken for positions in the state.
#[test]
fn a_webhook_pipeline_restarted_from_its_checkpoint_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("pipelines");
    std::fs::create_dir_all(&folder).unwrap();
    let lake = dir.path().join("lake");
    for round in 0..2 {
        let port = free_port();
        let spec = format!(
            r#"version: 1
name: hook
source:
  http: {{ listen: "127.0.0.1:{port}", path: /ingest }}
sinks:
  - lake: {{ url: "file://{}", compression: none }}
checkpoint: {{ interval: 100ms }}
"#,
            lake.display()
        );
        std::fs::write(folder.join("hook.yaml"), spec).unwrap();
        let log = format!("run{round}.log");
        let host = Sluice::start(run_folder(dir.path(), &folder), dir.path(), &log);
        host.wait_for(
            "/api/v1/pipelines/hook",
            "the webhook runs",
            WAIT,
            |c, b| c == 200 && state(b) == "running",
        );
        let body: String = (0..5)
            .map(|i| format!("round{round}-record{i}\n"))
            .collect();
        let (code, answer) = http(port, "POST", "/ingest", Some(("text/plain", &body))).unwrap();
        assert!((200..300).contains(&code), "{code} {answer}");
        std::thread::sleep(Duration::from_millis(500)); // a checkpoint or more
        assert!(host.terminate(), "sluice run exits 0 on SIGTERM");
    }
    let mut lines: Vec<String> = Vec::new();
    for path in files_under(&lake) {
        let text = std::fs::read_to_string(&path).unwrap();
        lines.extend(
            text.lines()
                .filter(|l| l.contains("round"))
                .map(str::to_owned),
        );
    }
    lines.sort();
    let expected: Vec<String> = (0..2)
        .flat_map(|r| (0..5).map(move |i| format!("round{r}-record{i}")))
        .collect();
    assert_eq!(lines, expected, "every record of both runs, once");
}

#[test]
fn a_pipeline_created_through_the_api_is_a_file_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("pipelines");
    std::fs::create_dir_all(&folder).unwrap();
    let host = Sluice::start(run_folder(dir.path(), &folder), dir.path(), "run1.log");
    let spec = webhook_spec("made", "cumulative");
    let (code, body) = host
        .call(
            "POST",
            "/api/v1/pipelines",
            Some(("application/yaml", &spec)),
        )
        .unwrap();
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        std::fs::read_to_string(folder.join("made.yaml")).unwrap(),
        spec
    );
    let path = "/api/v1/pipelines/made";
    host.wait_for(path, "the created pipeline runs", WAIT, |c, b| {
        c == 200 && state(b) == "running"
    });
    // Let the watcher see the file it did not write: it must not apply it again.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !host.log_text().contains("The spec file changed"),
        "the API's own write was reloaded:\n{}",
        host.log_text()
    );
    let (code, body) = host
        .call("POST", "/api/v1/pipelines/made/pause", None)
        .unwrap();
    assert_eq!((code, state_of(&body)), (202, "paused".into()), "{body}");
    let (code, ready) = host.get("/readyz");
    assert_eq!(code, 503, "{ready}");
    assert!(host.terminate(), "sluice run exits 0 on SIGTERM");

    let host = Sluice::start(run_folder(dir.path(), &folder), dir.path(), "run2.log");
    host.wait_for(
        path,
        "the pipeline is back after a restart",
        WAIT,
        |c, b| c == 200 && state(b) == "running",
    );
    assert_eq!(host.get("/readyz").0, 200);
    let (code, metrics) = host.get("/metrics");
    assert_eq!(code, 200);
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains(r#"sluice_pipeline_state{pipeline="made",state="running"} 1"#),
        "{metrics}"
    );
    let (code, _) = host.call("DELETE", path, None).unwrap();
    assert_eq!(code, 204);
    assert!(!folder.join("made.yaml").exists());
    assert!(host.terminate());
}

fn state_of(status: &Value) -> String {
    status["state"].as_str().unwrap_or_default().to_owned()
}

/// A copy of the window plugin whose embedded version is 0.1.1 instead of 0.1.0: the same
/// logic and snapshot format in a different component (another hash), as a release of a
/// new version would be. Only the metadata string changes (the WIT package version, which
/// follows an `@`, is left alone); the registry must read it as 0.1.1.
fn window_plugin_0_1_1(dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(sluice_plugin_artifacts::TURNSTILE_WINDOW).unwrap();
    let mut patched = 0;
    for i in 1..bytes.len().saturating_sub(5) {
        if &bytes[i..i + 5] == b"0.1.0" && bytes[i - 1] != b'@' && !bytes[i - 1].is_ascii_digit() {
            bytes[i + 4] = b'1';
            patched += 1;
        }
    }
    assert!(
        patched > 0,
        "the window plugin holds no version string 0.1.0"
    );
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("turnstile-window-0.1.1.wasm");
    std::fs::write(&path, bytes).unwrap();
    let engine = sluice_host::wasm::PluginEngine::new(None).unwrap();
    let plugin = sluice_host::wasm::load_file(&engine, &path).expect("the patched plugin loads");
    assert_eq!(plugin.version.to_string(), "0.1.1");
    path
}

/// pipelines/turnstile.yaml on `brokers`/`topic`, its window pinned to `window`, results in
/// `lake`; `extra` is appended (e.g. a `checkpoint:` section).
fn kafka_spec(brokers: &str, topic: &str, window: &str, lake: &Path, extra: &str) -> String {
    format!(
        r#"version: 1
name: upgrade
source:
  kafka: {{ brokers: "{brokers}", topic: {topic}, group: upgrade, start: earliest }}
steps:
  - transform: {{ plugin: turnstile-parse@^0.1, config: {{ format: auto }} }}
  - window:
      plugin: "turnstile-window@={window}"
      event_time: timestamp
      size: 4h
      delay: 4h
      late: dlq
      config: {{ counters: cumulative, group_by: [station] }}
sinks:
  - lake: {{ url: "file://{}", partition_by: [station, window_start] }}
batch: {{ max_records: 2000 }}
# A plugin switch in place swaps the one chain of a single-task pipeline.
parallelism: 1
{extra}"#,
        lake.display()
    )
}

/// Runs the turnstile pipeline continuously through the API while `sluice produce` replays
/// week 240106 at a set rate, and mid-way PUTs the spec with the window plugin 0.1.1.
/// Returns the host (still running), the broker and the longest pause (ms).
fn switch_under_load(dir: &Path, extra: &str) -> (Sluice, LocalBroker, u64) {
    let broker = LocalBroker::start().expect("tansu starts");
    let plugins = dir.join("plugins");
    window_plugin_0_1_1(&plugins);
    let empty = dir.join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let produce = |file: &Path, rate: &str| {
        let mut cmd = sluice(dir);
        cmd.args([
            "produce",
            "--brokers",
            &broker.bootstrap(),
            "--topic",
            "turnstile",
            "--rate",
            rate,
        ])
        .arg("--file")
        .arg(file);
        cmd
    };
    ok(&mut produce(&empty, "1000"));
    let folder = dir.join("pipelines");
    std::fs::create_dir_all(&folder).unwrap();
    let mut cmd = run_folder(dir, &folder);
    let path_var = format!(
        "{}:{}",
        sluice_plugin_artifacts::PLUGIN_DIR,
        plugins.display()
    );
    cmd.env("SLUICE_PLUGIN_PATH", path_var);
    let host = Sluice::start(cmd, dir, "run.log");
    let lake = dir.join("lake");
    let v1 = kafka_spec(&broker.bootstrap(), "turnstile", "0.1.0", &lake, extra);
    let (code, body) = host
        .call("POST", "/api/v1/pipelines", Some(("application/yaml", &v1)))
        .unwrap();
    assert_eq!(code, 201, "{body}");
    let path = "/api/v1/pipelines/upgrade";
    host.wait_for(path, "the pipeline runs", WAIT, |c, b| {
        c == 200 && state(b) == "running"
    });
    let mut replay = produce(&week("240106"), "40000")
        .spawn()
        .expect("sluice produce starts");
    host.wait_for(path, "records flow", WAIT, |_, b| {
        b["status"]["records_in"].as_u64() > Some(60_000)
    });
    let v2 = kafka_spec(&broker.bootstrap(), "turnstile", "0.1.1", &lake, extra);
    let (code, body) = host
        .call("PUT", path, Some(("application/yaml", &v2)))
        .unwrap();
    assert_eq!(code, 200, "{body}");
    let body = host.wait_for(path, "the new version consumes", WAIT, |_, b| {
        b["status"]["stages"][1]["plugin"] == "turnstile-window@0.1.1"
            && b["status"]["switch"]["pause_ms"].is_u64()
    });
    assert!(
        host.log_text()
            .contains("The new steps took over the running pipeline"),
        "only the steps changed: the switch happens in place, the source does not stop:\n{}",
        host.log_text()
    );
    assert!(replay.wait().unwrap().success(), "the replay succeeds");
    let pause = body["status"]["longest_switch_pause_ms"].as_u64().unwrap();
    println!("FIGURE longest consumption pause of a plugin switch under load: {pause} ms");
    host.wait_for(path, "the topic is consumed", WAIT, |_, b| {
        b["status"]["lag"]
            .as_array()
            // tansu reports a partition's end as the base offset of its last batch, so a
            // consumer at the true end shows a lag at or below zero.
            .is_some_and(|l| !l.is_empty() && l.iter().all(|p| p["lag"].as_i64() <= Some(0)))
    });
    (host, broker, pause)
}

#[test]
fn a_window_plugin_switch_under_load_is_measured() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _broker, _pause) = switch_under_load(dir.path(), "");
    let (code, list) = host.get("/api/v1/pipelines");
    assert_eq!(code, 200);
    assert_eq!(list[0]["plugins"][1], "turnstile-window@0.1.1", "{list}");

    // An offsets reset is not undone by the checkpoint the pause wrote: the resumed run
    // reads the topic again from the start.
    let path = "/api/v1/pipelines/upgrade";
    let (code, body) = host.call("POST", &format!("{path}/pause"), None).unwrap();
    assert_eq!(code, 202, "{body}");
    host.wait_for(path, "the pipeline pauses", WAIT, |_, b| {
        state(b) == "paused"
    });
    let reset = r#"{"reset":"earliest"}"#;
    let (code, body) = host
        .call(
            "PUT",
            &format!("{path}/offsets"),
            Some(("application/json", reset)),
        )
        .unwrap();
    assert_eq!(code, 200, "{body}");
    let (code, body) = host.call("POST", &format!("{path}/resume"), None).unwrap();
    assert_eq!(code, 202, "{body}");
    host.wait_for(path, "the week is read again", WAIT, |_, b| {
        b["status"]["records_in"].as_u64() > Some(200_000)
    });
    assert!(host.terminate());
}

/// The plugin upgrade of the control-plane issue: the window state goes from 0.1.0 to 0.1.1
/// through the checkpoint taken at the switch, the host then stops (final checkpoint), and
/// after a final `--once` run from that checkpoint the lake equals the oracle for the week
/// (no record lost or counted twice).
#[test]
fn a_window_plugin_switch_under_load_equals_the_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("checkpoints");
    let extra = format!(
        "checkpoint: {{ url: \"file://{}\", interval: 2s }}\n",
        state.display()
    );
    let (host, broker, _pause) = switch_under_load(dir.path(), &extra);
    assert!(host.terminate(), "a final checkpoint, then exit 0");
    let spec = dir.path().join("pipelines/upgrade.yaml");
    let out = ok(sluice(dir.path())
        .args(["run", "--once", "--pipelines"])
        .arg(&spec)
        .env(
            "SLUICE_PLUGIN_PATH",
            format!(
                "{}:{}",
                sluice_plugin_artifacts::PLUGIN_DIR,
                dir.path().join("plugins").display()
            ),
        ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Pipeline `upgrade` finished."), "{stdout}");
    drop(broker);
    assert_same_rows(
        &lake_rows(&dir.path().join("lake")),
        &expected_rows("mta-turnstile-240106.cumulative.csv"),
    );
}

/// A webhook with a window answers only once a checkpoint holds its records' effect: the
/// same requests give the same windows whether the host is killed (`kill -9`, no final
/// checkpoint) right after the acknowledged requests and restarted, or runs on undisturbed.
#[test]
fn acknowledged_webhook_records_survive_a_kill() {
    let readings = |hours: std::ops::Range<u32>| -> String {
        hours
            .map(|h| {
                format!(
                    "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/0{}/2024,{:02}:00:00,REGULAR,{},{}\n",
                    1 + h / 24,
                    h % 24,
                    1000 + 37 * h * h,
                    500 + 11 * h
                )
            })
            .collect()
    };
    let run = |dir: &Path, kill: bool| -> Vec<String> {
        let folder = dir.join("pipelines");
        std::fs::create_dir_all(&folder).unwrap();
        let lake = dir.join("lake");
        let port = free_port();
        let spec = format!(
            r#"version: 1
name: hook
source:
  http: {{ listen: "127.0.0.1:{port}", path: /ingest }}
steps:
  - transform: {{ plugin: turnstile-parse@^0.1, config: {{ format: weekly }} }}
  - window:
      plugin: turnstile-window@^0.1
      event_time: timestamp
      size: 4h
      config: {{ counters: incremental, group_by: [station] }}
sinks:
  - lake: {{ url: "file://{}", compression: none }}
checkpoint: {{ interval: 1h }}
"#,
            lake.display()
        );
        std::fs::write(folder.join("hook.yaml"), spec).unwrap();
        let post = |body: &str| {
            let (code, answer) = http(port, "POST", "/ingest", Some(("text/plain", body))).unwrap();
            assert_eq!(code, 200, "{answer}");
        };
        let host = Sluice::start(run_folder(dir, &folder), dir, "run0.log");
        host.wait_for(
            "/api/v1/pipelines/hook",
            "the webhook runs",
            WAIT,
            |c, b| c == 200 && state(b) == "running",
        );
        post(&readings(0..10));
        post(&readings(10..20));
        let host = if kill {
            let mut host = host;
            host.child.kill().unwrap();
            host.child.wait().unwrap();
            let host = Sluice::start(run_folder(dir, &folder), dir, "run1.log");
            host.wait_for(
                "/api/v1/pipelines/hook",
                "the webhook runs again",
                WAIT,
                |c, b| c == 200 && state(b) == "running",
            );
            host
        } else {
            host
        };
        // Readings two days on close every window before them.
        post(&readings(20..30));
        post(&readings(80..81));
        std::thread::sleep(Duration::from_millis(1500));
        assert!(host.terminate(), "sluice run exits 0 on SIGTERM");
        let mut rows: Vec<String> = files_under(&lake)
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .skip(1)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        rows.sort();
        rows
    };
    let calm = tempfile::tempdir().unwrap();
    let killed = tempfile::tempdir().unwrap();
    let expected = run(calm.path(), false);
    assert!(expected.len() >= 5, "{expected:?}");
    assert_eq!(run(killed.path(), true), expected);
}
