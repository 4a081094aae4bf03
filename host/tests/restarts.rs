//! The window step's restart from the last checkpoint (`on_violation: restart`) through the
//! `sluice` binary: a transient failure (a window instance that runs out of memory after a
//! few calls, while a fresh one restored from the checkpoint goes on) recovers and the run
//! finishes; a failure that repeats (a record that always traps the plugin) gives up after
//! the cap of restarts in a row and fails the run, naming the plugin.

#[allow(unused_imports, reason = "these tests need no broker")]
mod common;

use std::path::Path;
use std::process::Output;

use common::*;

const LINE: &str = "A002,R051,02-00-00,STATION,NQR456W,BMT,01/01/2024,HH:00:00,REGULAR,100,200";

/// Runs a file of one record per `stations` entry (hours 0, 1, 2, …) through parse and the
/// hostile window with `config`, one record a batch and a checkpoint after each.
fn run(dir: &Path, stations: &[&str], config: &str) -> Output {
    let lines: Vec<String> = stations
        .iter()
        .enumerate()
        .map(|(h, s)| LINE.replace("STATION", s).replace("HH", &format!("{h:02}")))
        .collect();
    let input = dir.join("in.csv");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let spec = format!(
        "version: 1\nname: restarts\nsource: {{ file: {{ paths: [{:?}] }} }}\nsteps:\n\
         \x20 - transform: {{ plugin: turnstile-parse@^0.1, config: {{ format: weekly }} }}\n\
         \x20 - window:\n      plugin: hostile-window@^0.1\n      event_time: timestamp\n\
         \x20     size: 4h\n      config: {config}\n\
         \x20     limits: {{ memory: 16MiB, on_violation: restart }}\n\
         sinks: [ {{ stdout: {{}} }} ]\nbatch: {{ max_records: 1 }}\n\
         checkpoint: {{ url: \"file://{}\", interval: 1ms }}\n",
        input.display().to_string(),
        dir.join("checkpoints").display()
    );
    let file = dir.join("restarts.yaml");
    std::fs::write(&file, spec).unwrap();
    sluice(dir)
        .args(["run", "--once", "--pipelines"])
        .arg(&file)
        .env("SLUICE_PLUGIN_PATH", test_plugin_path())
        .output()
        .expect("the sluice binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_transient_window_failure_recovers_from_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["59 ST"; 4], "{ leak_kib: \"6144\" }");
    let text = text(&out);
    assert!(out.status.success(), "{text}");
    let restarts = text.matches("Restarting").count() as u32;
    assert!(
        (1..=sluice_host::runtime::MAX_RESTARTS).contains(&restarts),
        "the instances ran out of memory and fresh ones went on:\n{text}"
    );
    // A restart went on from the checkpoint after the last record its window took in.
    assert!(
        text.contains("Continuing from the last checkpoint"),
        "{text}"
    );
    assert!(text.contains("{0: 2}"), "{text}");
}

#[test]
fn a_repeating_window_failure_gives_up_after_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["59 ST", "BOOM ST", "59 ST"], "{}");
    let text = text(&out);
    assert!(!out.status.success(), "{text}");
    let restarts = text.matches("Restarting").count();
    assert_eq!(
        restarts as u32,
        sluice_host::runtime::MAX_RESTARTS,
        "restarts before giving up:\n{text}"
    );
    assert!(
        text.contains(&format!(
            "Pipeline `restarts` stopped after {} restarts in a row from its last checkpoint; \
             fix or replace the plugin, then restart it: steps[1] window hostile-window@0.1.0: \
             plugin hostile-window@0.1.0 trapped",
            sluice_host::runtime::MAX_RESTARTS
        )),
        "{text}"
    );
}
