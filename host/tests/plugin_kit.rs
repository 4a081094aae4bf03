//! The plugin kit as a plugin author uses it: `sluice plugin new` in a folder outside the
//! repository, `sluice plugin test` (which builds the component and runs the golden fixtures
//! through the engine), a wrong golden file failing with a readable diff, and `--bless`
//! fixing it. Python and JavaScript templates and a real pipeline over their plugins are in
//! `plugin_langs.rs`.

#[allow(unused_imports, reason = "these tests need no broker")]
mod common;

use std::path::Path;
use std::process::{Command, Output};

/// `sluice plugin ...` in `dir` (outside the repository), with the shared cargo target
/// folder so repeated runs build the plugin's dependencies once.
fn plugin(dir: &Path, args: &[&str]) -> Output {
    let mut cmd: Command = common::sluice(dir);
    cmd.arg("plugin").args(args);
    cmd.output().expect("the sluice binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_rust_transform_scaffolds_builds_and_passes_its_fixtures_and_a_wrong_golden_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let out = plugin(tmp.path(), &["new", "station-filter"]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = tmp.path().join("station-filter");
    assert!(dir.join("Cargo.toml").is_file() && dir.join("tests/basic/expected.jsonl").is_file());

    let out = plugin(tmp.path(), &["test", "station-filter"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("ok     basic (5 lines; 5 records in "),
        "{log}"
    );
    assert!(log.contains("2 case(s): 2 passed, 0 failed"), "{log}");
    // `build` printed what it made: path, name, version, world, no capabilities.
    for needle in [
        "station-filter/target/plugin/station-filter.wasm",
        "name          station-filter",
        "version       0.1.0",
        "world         transform (sluice:plugin@0.2)",
        "capabilities  none",
    ] {
        assert!(log.contains(needle), "`{needle}` missing in\n{log}");
    }
    let golden = dir.join("tests/basic/expected.jsonl");
    let good = std::fs::read_to_string(&golden).unwrap();
    assert!(
        good.contains(r#"{"row": {"station": "A", "entries": 10, "exits": 5, "traffic": 15}}"#),
        "{good}"
    );
    assert!(
        good.contains(
            r#"{"dead_letter": {"line": 3, "reason": "entries `seven` is not a whole number"}}"#
        ),
        "{good}"
    );

    // A golden file that says otherwise: exit 1 and a diff naming both lines.
    std::fs::write(&golden, good.replace("\"traffic\": 15", "\"traffic\": 16")).unwrap();
    let out = plugin(tmp.path(), &["test", "station-filter"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("FAILED basic: the output differs from"),
        "{log}"
    );
    assert!(
        log.contains(r#"- {"row": {"station": "A", "entries": 10, "exits": 5, "traffic": 16}}"#),
        "{log}"
    );
    assert!(
        log.contains(r#"+ {"row": {"station": "A", "entries": 10, "exits": 5, "traffic": 15}}"#),
        "{log}"
    );
    assert!(
        log.contains("ok     filtered"),
        "the other case still passes:\n{log}"
    );

    // --bless writes what the plugin produces; the next run passes.
    let out = plugin(
        tmp.path(),
        &["test", "station-filter", "--bless", "--case", "basic"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&golden).unwrap(), good);
    let out = plugin(tmp.path(), &["test", "station-filter"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_rust_window_template_gets_watermarks_early_and_final_results() {
    let tmp = tempfile::tempdir().unwrap();
    let out = plugin(tmp.path(), &["new", "hourly-sums", "--kind", "window"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = plugin(tmp.path(), &["test", "hourly-sums"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("world         window (sluice:plugin@0.2)"),
        "{log}"
    );
    let golden =
        std::fs::read_to_string(tmp.path().join("hourly-sums/tests/hourly/expected.jsonl"))
            .unwrap();
    let lines: Vec<&str> = golden.lines().collect();
    // Early results after the first batch, the 08:00 window final once the watermark
    // (latest event time − 10 min) passes 09:00, the late row dropped, the rest at the end.
    assert_eq!(
        lines[0],
        r#"{"early": {"station": "A", "window_start": "2024-01-06 08:00:00", "window_end": "2024-01-06 09:00:00", "total": 3}}"#
    );
    let final_a = r#"{"row": {"station": "A", "window_start": "2024-01-06 08:00:00", "window_end": "2024-01-06 09:00:00", "total": 7}}"#;
    assert!(lines.contains(&final_a), "{golden}");
    assert_eq!(lines.last(), Some(&r#"{"late_dropped": 1}"#), "{golden}");
}

#[test]
fn mistakes_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = plugin(tmp.path(), &["new", "Bad_Name"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("`Bad_Name` is not a plugin name"),
        "{}",
        text(&out)
    );
    let out = plugin(tmp.path(), &["test", "nowhere"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = plugin(tmp.path(), &["new", "dup"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = plugin(tmp.path(), &["new", "dup"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("exists and is not empty"),
        "{}",
        text(&out)
    );
}
