//! Faults a pipeline meets in production, through the `sluice` binary: the lake vanishing
//! during a run (the writes retry until it is back, and the result still equals the
//! oracle), and a flood of bad records (the dead-letter threshold pauses the pipeline after
//! writing everything before the batch that crossed it).

#[allow(unused_imports, reason = "these tests need no broker")]
mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::*;

/// Waits for a line containing `needle` on `lines`; panics with what was seen if the
/// process ends (or 3 minutes pass) first.
fn wait_for(lines: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    loop {
        match lines.recv_timeout(Duration::from_secs(180)) {
            Ok(line) => {
                seen.push(line);
                if seen.last().unwrap().contains(needle) {
                    return;
                }
            }
            Err(_) => panic!(
                "no line with `{needle}`; stderr so far:\n{}",
                seen.join("\n")
            ),
        }
    }
}

#[test]
fn a_lake_outage_during_a_run_is_retried_and_the_lake_equals_the_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let away = dir.path().join("lake-away");
    let mut child = sluice(dir.path())
        .args(["run", "--once", "--pipelines"])
        .arg(repo().join("pipelines/turnstile-file.yaml"))
        .env("TURNSTILE_FILE", week("240106"))
        .env("LAKE_URL", format!("file://{}", lake.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    wait_for(&lines, "Pipeline started.", &mut seen);
    // The windows close only at the end of the file (delay 8 days): the lake is gone before
    // the first write. Running as root, permissions would not stop a write, so the folder
    // is replaced by a regular file.
    std::fs::rename(&lake, &away).unwrap();
    std::fs::write(&lake, b"the lake is unavailable").unwrap();
    wait_for(&lines, "retries in", &mut seen);
    std::thread::sleep(Duration::from_secs(2));
    std::fs::remove_file(&lake).unwrap();
    std::fs::rename(&away, &lake).unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    seen.extend(lines.try_iter());
    assert!(status.success(), "{status}\n{stdout}\n{}", seen.join("\n"));
    assert!(
        stdout.contains("lake:") && stdout.contains("ok after"),
        "the summary shows the retries: {stdout}"
    );
    assert_same_rows(
        &lake_rows(&lake),
        &expected_rows("mta-turnstile-240106.incremental.csv"),
    );
}

/// A reading of station `59 ST` at `hour`:00 on 2024-01-01.
fn reading(hour: usize) -> String {
    format!("A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,{hour:02}:00:00,REGULAR,{hour},0")
}

fn data_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "csv") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            lines.extend(text.lines().skip(1).map(str::to_owned));
        }
    }
    lines.sort();
    lines
}

#[test]
fn a_flood_of_dead_letters_pauses_the_pipeline_after_the_batches_before_it() {
    let dir = tempfile::tempdir().unwrap();
    // Batches of 10: clean; 2 bad (written); 10 bad: 12 in the last 20 records > 5.
    let mut input: Vec<String> = (0..10).map(reading).collect();
    input.extend(["bad one".to_owned(), "bad two".to_owned()]);
    input.extend((10..18).map(reading));
    input.extend((0..10).map(|i| format!("garbage {i}")));
    input.extend((18..24).map(reading));
    let file = dir.path().join("input.csv");
    std::fs::write(&file, input.join("\n") + "\n").unwrap();
    let spec = format!(
        "version: 1\nname: flood\nsource: {{ file: {{ paths: [\"{}\"] }} }}\n\
         steps:\n  - transform: {{ plugin: turnstile-parse@^0.1, config: {{ format: weekly }} }}\n\
         sinks:\n  - lake: {{ url: \"file://{}\", compression: none }}\n\
         errors:\n  dlq: {{ lake: {{ url: \"file://{}\" }} }}\n  \
         max_dead_letters: {{ count: 5, per_records: 20 }}\nbatch: {{ max_records: 10 }}\n",
        file.display(),
        dir.path().join("lake").display(),
        dir.path().join("dlq").display()
    );
    let spec_file = dir.path().join("flood.yaml");
    std::fs::write(&spec_file, spec).unwrap();
    let out = sluice(dir.path())
        .args(["run", "--once", "--pipelines"])
        .arg(&spec_file)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "Pipeline `flood` paused: 12 dead letters in the last 20 records (threshold 5); \
             first reason: "
        ) && stdout.contains("fix the input or the plugin, then resume"),
        "{stdout}"
    );
    assert_eq!(data_lines(&dir.path().join("lake")).len(), 18, "{stderr}");
    let letters = std::fs::read_dir(dir.path().join("dlq/_dlq/pipeline=flood"))
        .unwrap()
        .count();
    assert_eq!(letters, 1, "one object: the 2 dead letters of batch 2");
}
