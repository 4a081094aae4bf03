//! Shadow runs (`/api/v1/pipelines/{name}/shadow`) of the turnstile pipeline on a real broker,
//! with a really different window version as the candidate: turnstile-window 0.2.0 (the
//! `v2` build of the crate) adds a `traffic` column and writes its state in snapshot format 2.
//!
//! Week 240106 is processed live; a shadow starts from the live checkpoints; week 240113
//! arrives; the diff shows every window differing in `traffic` alone; discarding it leaves
//! the live pipeline as it was (its spec, its run, the lake). A second shadow over week
//! 240120 is promoted: the pipeline restarts from its checkpoints with 0.2.0, which restores
//! 0.1's state, and the lake then holds every window of the three weeks once, equal to the
//! oracle's.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value as Json;

const PARTITIONS: u32 = 3;

fn spec(broker: &str, lake: &Path, window: &str) -> String {
    format!(
        r#"version: 1
name: turnstile
source:
  kafka: {{ brokers: "{broker}", topic: turnstile, group: shadow-test, key: [station] }}
steps:
  - transform: {{ plugin: turnstile-parse@^0.1, config: {{ format: auto }} }}
  - window:
      plugin: turnstile-window@{window}
      event_time: timestamp
      size: 4h
      delay: 4h
      config: {{ counters: cumulative, group_by: [station] }}
sinks:
  - lake: {{ url: "file://{}", partition_by: [window_start] }}
  - live: {{}}
checkpoint: {{ interval: 1s }}
"#,
        lake.display()
    )
}

/// One HTTP/1.1 request; the status and the body as JSON (`null` when empty).
fn http(api: SocketAddr, method: &str, path: &str, yaml: Option<&str>) -> (u16, Json) {
    let mut stream = std::net::TcpStream::connect(api).unwrap();
    let body = yaml.unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\nX-Sluice-Request: 1\r\nContent-Length: {}\r\n",
        body.len()
    );
    if yaml.is_some() {
        head.push_str("Content-Type: application/yaml\r\n");
    }
    write!(stream, "{head}\r\n{body}").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Json::Null))
}

/// True when every partition's committed offset of `lag` (a status's or shadow run's) has
/// reached its end.
fn caught_up(lag: &Json) -> bool {
    let parts = lag.as_array().map(Vec::as_slice).unwrap_or_default();
    parts.len() == PARTITIONS as usize
        && parts
            .iter()
            .all(|p| p["offset"].as_i64() >= Some(0) && p["lag"].as_i64() <= Some(0))
}

/// Polls `f` until it gives a value, for at most `secs`.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn wait_live(api: SocketAddr, what: &str) -> Json {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, detail) = http(api, "GET", "/api/v1/pipelines/turnstile", None);
        if status == 200
            && detail["status"]["state"] == "running"
            && caught_up(&detail["status"]["lag"])
        {
            return detail;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the pipeline: {status} {detail:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until both shadow runs have read everything and their diff holds still.
fn settled_shadow(api: SocketAddr) -> Json {
    let mut last = Json::Null;
    wait_for(180, "the shadow runs to catch up", || {
        let (status, view) = http(api, "GET", "/api/v1/pipelines/turnstile/shadow", None);
        assert_eq!(status, 200, "{view}");
        for run in view["runs"].as_array().unwrap() {
            assert_ne!(run["state"], "failed", "{run}");
        }
        let done = view["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| caught_up(&r["lag"]));
        let diff = view["diff"].clone();
        let settled = done && diff == last["diff"] && diff["windows_compared"] != 0;
        last = view.clone();
        settled.then_some(view)
    })
}

/// The diff of a candidate that only adds `traffic`: every compared window differs in it,
/// and it is the sum of the values.
fn assert_traffic_diff(view: &Json) {
    let diff = &view["diff"];
    let compared = diff["windows_compared"].as_u64().unwrap();
    println!(
        "shadow diff: {compared} windows compared, {} differing, fields {}, only in baseline {}, only in candidate {}",
        diff["windows_differing"], diff["fields"], diff["only_baseline"], diff["only_candidate"]
    );
    assert!(compared > 1_000, "{diff}");
    assert_eq!(diff["windows_differing"], compared, "{diff}");
    assert_eq!(diff["fields"], serde_json::json!({ "traffic": compared }));
    let first = &diff["first"][0];
    assert_eq!(first["fields"], serde_json::json!(["traffic"]));
    assert!(first["baseline"].get("traffic").is_none(), "{first}");
    let c = &first["candidate"];
    assert_eq!(
        c["traffic"].as_i64(),
        Some(c["entries"].as_i64().unwrap() + c["exits"].as_i64().unwrap()),
        "{first}"
    );
    assert_eq!(first["baseline"]["entries"], c["entries"]);
    let plugins = |i: usize| view["runs"][i]["plugins"].to_string();
    assert!(plugins(0).contains("turnstile-window@0.1.0"), "{view}");
    assert!(plugins(1).contains("turnstile-window@0.2.0"), "{view}");
}

/// Every row of every window object under `lake` as `station,window_start,window_end,
/// entries,exits` (an object of 0.2.0 has `traffic` last; it is checked and left out), and
/// how many objects had it.
fn lake_windows(lake: &Path) -> (Vec<String>, usize) {
    let (mut rows, mut v2) = (Vec::new(), 0);
    for file in files_under(lake) {
        let name = file.to_string_lossy();
        if !name.ends_with(".csv.gz") || name.contains("/_") {
            continue;
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&file).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let traffic = match header {
            "station,window_start,window_end,entries,exits" => false,
            "station,window_start,window_end,entries,exits,traffic" => true,
            other => panic!("{}: header {other}", file.display()),
        };
        v2 += usize::from(traffic);
        for line in lines {
            let fields: Vec<&str> = line.rsplitn(4, ',').collect();
            if traffic {
                // traffic, exits, entries, rest.
                let sum = fields[1].parse::<i64>().unwrap() + fields[2].parse::<i64>().unwrap();
                assert_eq!(fields[0].parse::<i64>().unwrap(), sum, "{line}");
                rows.push(line.rsplit_once(',').unwrap().0.to_owned());
            } else {
                rows.push(line.to_owned());
            }
        }
    }
    rows.sort();
    (rows, v2)
}

/// The rows are the oracle's (no window twice, none unlike it) and cover nearly all of it
/// (the last windows stay open on a live source).
fn assert_like_oracle(rows: &[String], expected: &[String], share: usize) {
    let wrong: Vec<&String> = rows
        .iter()
        .filter(|r| expected.binary_search(r).is_err())
        .take(10)
        .collect();
    assert!(wrong.is_empty(), "rows unlike the oracle's: {wrong:#?}");
    let mut keys: Vec<&str> = rows
        .iter()
        .map(|r| r.rsplitn(4, ',').last().unwrap())
        .collect();
    let all = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), all, "a window was written twice");
    assert!(
        rows.len() * 100 >= expected.len() * share,
        "{} of {} oracle rows in the lake",
        rows.len(),
        expected.len()
    );
}

/// Headless Chromium opens the dashboard: its shadow panel shows the diff and the first
/// differing windows, the candidate's with `traffic`.
fn dashboard_shows_the_diff(api: SocketAddr) {
    let shot = std::env::temp_dir().join("sluice-dashboard-shadow.png");
    let out = std::process::Command::new("node")
        .arg(repo().join("host/tests/browser/dashboard.mjs"))
        .arg(format!("http://{api}/"))
        .arg(&shot)
        .arg("shadow")
        .output()
        .expect("node runs (make test-tools installs the browser test's packages)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the dashboard shows no shadow diff: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page: Json = serde_json::from_str(&stdout).unwrap();
    let panel = &page["shadow"];
    assert!(
        panel["diff"].as_str().unwrap().contains("differ"),
        "{panel}"
    );
    let row = panel["rows"][0].to_string();
    assert!(row.contains("traffic="), "{row}");
    assert!(
        panel["runs"]
            .as_str()
            .unwrap()
            .contains("turnstile-window@0.2.0"),
        "{panel}"
    );
}

/// Week `name` as two gzip CSV files in `dir`: the records dated before `day` (MM/DD/YYYY,
/// within one month), and the rest.
fn split_week(dir: &Path, name: &str, day: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(week(name)).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let (mut head, mut tail) = (vec![header], vec![header]);
    for line in lines {
        let date = line.split(',').nth(7).unwrap_or_default();
        if date < day {
            head.push(line)
        } else {
            tail.push(line)
        }
    }
    assert!(
        head.len() > 1000 && tail.len() > 1000,
        "{} and {}",
        head.len(),
        tail.len()
    );
    let write = |part: &str, lines: &[&str]| {
        let path = dir.join(format!("{name}-{part}.csv.gz"));
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
        gz.finish().unwrap();
        path
    };
    (write("head", &head), write("tail", &tail))
}

#[test]
fn a_shadow_of_a_new_window_version_shows_the_diff_then_is_discarded_or_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let broker = LocalBroker::start().expect("tansu starts");
    let bootstrap = broker.bootstrap();
    produce_into(
        dir.path(),
        &bootstrap,
        "turnstile",
        &[week("240106")],
        PARTITIONS,
    );
    let (folder, lake) = (dir.path().join("pipelines"), dir.path().join("lake"));
    std::fs::create_dir_all(&folder).unwrap();
    let live_spec = spec(&bootstrap, &lake, "^0.1");
    std::fs::write(folder.join("turnstile.yaml"), &live_spec).unwrap();
    let api = free_addr();
    let log = std::fs::File::create(dir.path().join("host.log")).unwrap();
    let _host = Running(
        sluice(dir.path())
            .env("SLUICE_PLUGIN_PATH", test_plugin_path())
            .arg("run")
            .arg("--pipelines")
            .arg(&folder)
            .args(["--api", &api.to_string()])
            .arg("--api-grant-files")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sluice runs"),
    );
    wait_for(60, "the API to come up", || {
        std::net::TcpStream::connect(api).ok()
    });
    wait_live(api, "week 240106 to be read");
    let candidate = spec(&bootstrap, &lake, "^0.2");

    // Refused: no shadow yet, a candidate that changes more than the steps.
    let (status, body) = http(api, "GET", "/api/v1/pipelines/turnstile/shadow", None);
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("shadow_not_found"))
    );
    let other_source = candidate.replace("topic: turnstile", "topic: other");
    let (status, body) = http(
        api,
        "POST",
        "/api/v1/pipelines/turnstile/shadow",
        Some(&other_source),
    );
    assert_eq!(status, 400, "{body}");
    let unknown = Some("plugin: station-filter@^1\n");
    let (status, body) = http(api, "POST", "/api/v1/pipelines/turnstile/shadow", unknown);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("None of"),
        "{body}"
    );

    // A shadow over week 240113, then discarded.
    let (status, body) = http(
        api,
        "POST",
        "/api/v1/pipelines/turnstile/shadow",
        Some(&candidate),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["checkpoints_copied"], PARTITIONS, "{body}");
    let (status, _) = http(
        api,
        "POST",
        "/api/v1/pipelines/turnstile/shadow",
        Some(&candidate),
    );
    assert_eq!(status, 409, "one shadow at a time");
    produce_into(
        dir.path(),
        &bootstrap,
        "turnstile",
        &[week("240113")],
        PARTITIONS,
    );
    let view = settled_shadow(api);
    assert_traffic_diff(&view);
    let before = wait_live(api, "week 240113 to be read live");
    let (status, _) = http(api, "DELETE", "/api/v1/pipelines/turnstile/shadow", None);
    assert_eq!(status, 204);
    let (status, _) = http(api, "GET", "/api/v1/pipelines/turnstile/shadow", None);
    assert_eq!(status, 404);
    let after = wait_live(api, "the live pipeline after the discard");
    assert_eq!(after["spec"], before["spec"], "the spec is untouched");
    assert_eq!(
        std::fs::read_to_string(folder.join("turnstile.yaml")).unwrap(),
        live_spec
    );
    assert!(
        after["status"]["records_in"].as_u64() >= before["status"]["records_in"].as_u64(),
        "the live run went on (not restarted): {} then {}",
        before["status"]["records_in"],
        after["status"]["records_in"]
    );
    let shadow_state = dir.path().join(".sluice/shadow");
    let left: Vec<_> = std::fs::read_dir(&shadow_state)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "the shadow's checkpoints are gone: {left:?}"
    );
    let expected = expected_rows("mta-turnstile-3weeks.cumulative.csv");
    let (rows, v2) = lake_windows(&lake);
    assert_eq!(v2, 0, "the shadow wrote nothing to the lake");
    // Two of three weeks are in: about two thirds of the oracle.
    assert_like_oracle(&rows, &expected, 60);

    // A shadow over week 240120 but its last day, promoted; then the last day arrives.
    // This time given as a plugin version: the live spec with that step's plugin switched.
    let (head, tail) = split_week(dir.path(), "240120", "01/19/2024");
    let plugin = Some("plugin: turnstile-window@^0.2\n");
    let (status, body) = http(api, "POST", "/api/v1/pipelines/turnstile/shadow", plugin);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["candidate_spec"], candidate.as_str());
    produce_into(dir.path(), &bootstrap, "turnstile", &[head], PARTITIONS);
    assert_traffic_diff(&settled_shadow(api));
    dashboard_shows_the_diff(api);
    wait_live(api, "week 240120 but its last day to be read live");
    let (status, body) = http(
        api,
        "POST",
        "/api/v1/pipelines/turnstile/shadow/promote",
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        std::fs::read_to_string(folder.join("turnstile.yaml")).unwrap(),
        candidate,
        "the candidate spec is in force"
    );
    let (status, _) = http(api, "GET", "/api/v1/pipelines/turnstile/shadow", None);
    assert_eq!(status, 404);
    let promoted = wait_live(api, "the promoted pipeline to run");
    let plugins = promoted["status"]["stages"].to_string();
    assert!(plugins.contains("turnstile-window@0.2.0"), "{promoted}");
    // The promoted run restored 0.1's open windows; the last day closes them and its own.
    produce_into(dir.path(), &bootstrap, "turnstile", &[tail], PARTITIONS);
    wait_live(api, "the last day to be read by 0.2.0");
    let (rows, v2) = wait_for(60, "windows written by 0.2.0", || {
        let (rows, v2) = lake_windows(&lake);
        (v2 > 0).then_some((rows, v2))
    });
    println!(
        "{} windows in the lake, {v2} objects written by 0.2.0",
        rows.len()
    );
    assert_like_oracle(&rows, &expected, 95);
}
