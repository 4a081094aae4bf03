//! The live dashboard as a person sees it: `sluice run --listen` on a real broker while
//! `sluice produce` replays a week, and Debian's headless Chromium (driven by
//! host/tests/browser/dashboard.mjs through playwright-core) must see the chart and the table
//! fill and move; a screenshot is kept under `<target>/test-artifacts/dashboard.png`. A plain
//! HTTP client checks the live endpoint: early rows (`"final":false`) come before final ones,
//! never ahead of them, and an unknown pipeline is a JSON 404. A second test prints the
//! latency from a record being produced to its early result on the live endpoint.

mod common;
#[path = "browser/host.rs"]
mod host;
#[path = "browser/live.rs"]
mod live;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use host::*;
use live::*;

/// The tests of this file run one at a time: each replays at a set rate on 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

const WEEK_RECORDS: u64 = 250_816;

fn browser_dir() -> PathBuf {
    repo().join("host/tests/browser")
}

/// Fails unless Chromium and the driver's npm packages are there (installs the packages).
fn browser_preflight() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: this test needs Debian's Chromium; install it with \
         `apt-get update && apt-get install -y chromium` (.ci/run does so when it is missing)"
    );
    if !browser_dir().join("node_modules/playwright-core").is_dir() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(browser_dir())
            .output()
            .expect("npm runs (Node.js and npm are needed for the browser test)");
        assert!(
            out.status.success(),
            "`npm ci` in host/tests/browser failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `<target>/test-artifacts/dashboard.png` (the target folder of this build).
fn screenshot_path() -> PathBuf {
    let target = Path::new(env!("CARGO_BIN_EXE_sluice"))
        .ancestors()
        .nth(2)
        .unwrap();
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("dashboard.png")
}

#[test]
fn dashboard_fills_while_a_replay_runs() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    browser_preflight();
    let mut host = start_host("turnstile-live", "cumulative");
    let (status, headers, body) = http_get(host.port, "/api/v1/pipelines/nope/live").unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(
        headers.contains("content-type: application/json"),
        "{headers}"
    );
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["code"], "pipeline_not_found", "{body}");
    let (_, _, list) = http_get(host.port, "/api/v1/pipelines").unwrap();
    assert!(list.contains(r#""turnstile""#), "{list}");

    let shot = screenshot_path();
    let _ = std::fs::remove_file(&shot);
    let mut browser = Command::new("node")
        .arg(browser_dir().join("dashboard.mjs"))
        .arg(format!("http://127.0.0.1:{}/", host.port))
        .arg(&shot)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let stderr = lines_of(browser.stderr.take().unwrap());
    let loaded = stderr.recv_timeout(Duration::from_secs(60));
    // About 12.5 s of replay, started once the page is loaded: it must fill and move.
    if loaded.is_ok_and(|l| l.contains("page loaded")) {
        host.produce(&week("240106"), 20_000);
    }
    let out = browser.wait_with_output().unwrap();
    println!("{}", String::from_utf8_lossy(&out.stdout));
    let stderr: Vec<String> =
        std::iter::from_fn(|| stderr.recv_timeout(Duration::from_secs(5)).ok()).collect();
    assert!(
        out.status.success(),
        "the browser check failed: {}",
        stderr.join("\n")
    );
    assert!(shot.is_file(), "no screenshot at {}", shot.display());
    println!("Dashboard screenshot: {}", shot.display());

    host.wait_records(WEEK_RECORDS, Duration::from_secs(60));
    let Host { sse, children, .. } = host;
    let (events, error) = sse.finish();
    drop(children);
    assert_eq!(error, None);
    check_early_then_final(&events);
}

/// Runs the browser check in `after` mode (the data was processed before the page opened)
/// on the dashboard of `port`; fails the test unless the page fills.
fn open_after(port: u16, shot: &Path) {
    let out = Command::new("node")
        .arg(browser_dir().join("dashboard.mjs"))
        .arg(format!("http://127.0.0.1:{port}/"))
        .arg(shot)
        .arg("after")
        .output()
        .expect("node runs");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "the dashboard opened after the data was processed stays empty: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dashboard_opened_after_the_run_shows_the_current_state_also_after_a_restart() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    browser_preflight();
    let mut host = start_host("turnstile-after", "cumulative");
    host.produce(&week("240106"), 500_000);
    host.wait_records(WEEK_RECORDS, Duration::from_secs(120));
    let (_, _, view) = http_get(host.port, "/api/v1/pipelines/turnstile/results?top=3").unwrap();
    let view: serde_json::Value = serde_json::from_str(&view).unwrap();
    assert!(view["keys"].as_u64().unwrap_or(0) > 300, "{view:#}");
    assert_eq!(
        view["busiest"].as_array().map(Vec::len),
        Some(3),
        "{view:#}"
    );
    let dir = screenshot_path().with_file_name("dashboard-after.png");
    open_after(host.port, &dir);
    // The view is saved every 5 s: after a crash and a restart the page opens filled too.
    std::thread::sleep(Duration::from_secs(6));
    host.restart_run("cumulative");
    open_after(
        host.port,
        &dir.with_file_name("dashboard-after-restart.png"),
    );
}

/// Early rows come before the first final ones and never exceed the final values (cumulative
/// counts only grow).
fn check_early_then_final(events: &[Event]) {
    let rows: Vec<&Event> = events.iter().filter(|e| e.data["type"] == "rows").collect();
    let first_final = rows.iter().position(|e| e.data["final"] == true);
    let first_early = rows.iter().position(|e| e.data["final"] == false);
    let (Some(early), Some(fin)) = (first_early, first_final) else {
        panic!("the live stream has no early or no final rows: {first_early:?}, {first_final:?}");
    };
    assert!(early < fin, "final rows came before the first early rows");
    let key = |r: &serde_json::Value| format!("{}|{}", r["station"], r["window_start"]);
    let mut finals = HashMap::new();
    for e in rows.iter().filter(|e| e.data["final"] == true) {
        for r in e.data["rows"].as_array().unwrap() {
            finals.insert(key(r), (r["entries"].as_i64(), r["exits"].as_i64()));
        }
    }
    let mut compared = 0;
    for e in rows.iter().filter(|e| e.data["final"] == false) {
        for r in e.data["rows"].as_array().unwrap() {
            if let Some(&(entries, exits)) = finals.get(&key(r)) {
                assert!(
                    r["entries"].as_i64() <= entries && r["exits"].as_i64() <= exits,
                    "{r}"
                );
                compared += 1;
            }
        }
    }
    assert!(
        compared > 1000,
        "only {compared} early rows had a final row to compare with"
    );
}

/// The first `n` records of the week in event-time order, written as a weekly file; returns
/// it and, per (station, window start), the index of its first record in the replay.
fn first_records(dir: &Path, n: usize) -> (PathBuf, HashMap<(String, String), usize>) {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(week("240106")).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let mut timed: Vec<(i64, &str)> = lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let ts = sluice_plugin_sdk::time::parse_date_time(f[f.len() - 5], f[f.len() - 4])?;
            Some((ts, l))
        })
        .collect();
    timed.sort_by_key(|&(ts, _)| ts);
    timed.truncate(n);
    let mut first = HashMap::new();
    for (i, (ts, line)) in timed.iter().enumerate() {
        let station = line.split(',').rev().nth(7).unwrap().trim().to_owned();
        let start = sluice_plugin_sdk::time::format_timestamp(ts - ts.rem_euclid(4 * 3_600_000));
        first.entry((station, start)).or_insert(i);
    }
    let body: Vec<&str> = timed.iter().map(|&(_, l)| l).collect();
    let path = dir.join("first-records.csv");
    std::fs::write(&path, format!("{header}\n{}\n", body.join("\n"))).unwrap();
    (path, first)
}

/// The rate `sluice produce` reports having sent at, from its last stderr lines.
fn sent_rate(stderr: &std::sync::mpsc::Receiver<String>, nominal: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(line) = stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Some(head) = line
            .split(" records/s while sending")
            .next()
            .filter(|h| h.len() < line.len())
        {
            return head
                .rsplit('(')
                .next()
                .and_then(|r| r.parse().ok())
                .unwrap_or(nominal as f64);
        }
    }
    nominal as f64
}

/// Latency from a record entering the source to its early result on the live endpoint, at a
/// steady 5,000 records/s; prints `BENCH live_early_latency_p50|p99 <ms> ms` and asserts
/// nothing about time.
///
/// Per (station, window): the arrival on the SSE stream of the first row of that pair (early,
/// or final when the window closed before an early release),
/// minus the moment its first record was produced. Counters are `incremental`, so that first
/// record alone creates the row (with `cumulative` a row waits for a turnstile's second
/// reading, which measures the data, not the host). The produce moment is derived, not
/// observed: `sluice produce` sends the records in the order of the file we write, paced by
/// a token bucket that starts with a burst of rate / 10 records, so record i leaves at
/// ≈ t0 + max(0, i − rate / 10) / rate, t0 being when it logs that it starts sending (it
/// reports the rate it kept, printed here: when that is below the set rate the producer lagged
/// and the figure errs low by the lag). The figure
/// includes the Kafka round trip, the source's batching, the `emit: { early: 1s }` throttle
/// (at most 1 s, about 0.5 s on average) and the SSE delivery.
#[test]
fn live_early_latency() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const RATE: u64 = 5_000;
    const RECORDS: usize = 50_000;
    let mut host = start_host("turnstile-latency", "incremental");
    let (file, first) = first_records(host.dir.path(), RECORDS);
    let (t0, stderr) = host.produce(&file, RATE);
    host.wait_records(RECORDS as u64, Duration::from_secs(120));
    let kept = sent_rate(&stderr, RATE);
    let burst = RATE as f64 / 10.0;
    let Host { sse, children, .. } = host;
    let (events, error) = sse.finish();
    drop(children);
    assert_eq!(error, None);
    let mut arrived: HashMap<(String, String), Instant> = HashMap::new();
    // The first live row of a pair: early, or final when its window closed before the next
    // early release (each task's watermark follows its own partition, and at 5,000 records/s
    // event time runs about 3 hours a second).
    for e in events.iter().filter(|e| e.data["type"] == "rows") {
        for r in e.data["rows"].as_array().unwrap() {
            let key = (
                r["station"].as_str().unwrap().to_owned(),
                r["window_start"].as_str().unwrap().to_owned(),
            );
            arrived.entry(key).or_insert(e.at);
        }
    }
    // Early rows still pending when the replay ends go out with the next batch, which never
    // comes here: pairs that start in the last 2 s are left out.
    let measured: Vec<_> = first
        .iter()
        .filter(|&(_, &i)| i + 2 * RATE as usize <= RECORDS)
        .collect();
    let mut latencies: Vec<f64> = measured
        .iter()
        .filter_map(|&(key, &i)| {
            let sent = t0 + Duration::from_secs_f64((i as f64 - burst).max(0.0) / RATE as f64);
            let at = *arrived.get(key)?;
            // Signed: the derived send time may be slightly late.
            let ms = |a: Instant, b: Instant| a.saturating_duration_since(b).as_secs_f64() * 1e3;
            Some(ms(at, sent) - ms(sent, at))
        })
        .collect();
    assert!(
        latencies.len() * 10 >= measured.len() * 9,
        "only {} of {} (station, window) pairs had a live row",
        latencies.len(),
        measured.len()
    );
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "live early latency over {} (station, window) pairs at {RATE} records/s (produce kept \
         {kept:.0}/s), early results every 1 s",
        latencies.len()
    );
    println!("BENCH live_early_latency_p50 {:.0} ms", pct(0.50));
    println!("BENCH live_early_latency_p99 {:.0} ms", pct(0.99));
}
