//! Plugins in Python and JavaScript, as their authors use the kit, and in a real pipeline:
//! - the Python and JavaScript templates pass the golden files of the Rust template (the
//!   three languages' examples produce the same rows and dead letters);
//! - ports of turnstile-parse to both languages (`tests/fixtures/kit/`), built with
//!   `sluice plugin build`, feed the Rust turnstile-window from the turnstile topic on a real
//!   broker, and the lake equals the independent oracle;
//! - what the sandbox grants them: the JavaScript component imports clocks, randomness and
//!   stderr, granted deny-all and shown as its capabilities; a Python build that keeps the
//!   runtime's filesystem and socket imports is refused naming them.
//!
//! The toolchains (componentize-py from PyPI, jco from npm) install on first use into
//! `$SLUICE_PLUGIN_TOOLS` (`make test-tools` sets it up outside the clone).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

fn plugin(dir: &Path, args: &[&str]) -> Output {
    sluice(dir)
        .arg("plugin")
        .args(args)
        .output()
        .expect("the sluice binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const RUST_GOLDEN: &str = include_str!("../templates/rust-transform/tests/basic/expected.jsonl");

/// Scaffolds and tests the `lang` template; returns the test's output.
fn template_passes(lang: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("{lang}-filter");
    let out = plugin(tmp.path(), &["new", &name, "--lang", lang]);
    assert!(out.status.success(), "{}", text(&out));
    let golden = tmp.path().join(&name).join("tests/basic/expected.jsonl");
    assert_eq!(std::fs::read_to_string(&golden).unwrap(), RUST_GOLDEN);
    let out = plugin(tmp.path(), &["test", &name]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("2 case(s): 2 passed, 0 failed"), "{log}");
    log
}

#[test]
fn the_python_template_gives_the_rust_template_s_rows() {
    let log = template_passes("python");
    assert!(
        log.contains("capabilities  none"),
        "built with --stub-wasi:\n{log}"
    );
}

#[test]
fn the_js_template_gives_the_rust_template_s_rows_under_deny_all_wasi() {
    let log = template_passes("js");
    for granted in [
        "wasi:clocks/wall-clock",
        "wasi:random/random",
        "wasi:cli/stderr",
    ] {
        assert!(log.contains(granted), "{granted} missing in\n{log}");
    }
    assert!(
        !log.contains("wasi:filesystem") && !log.contains("wasi:http"),
        "{log}"
    );
}

/// Copies the fixture plugin `name` into `dir` and builds it; returns the component.
fn build_fixture(dir: &Path, name: &str) -> PathBuf {
    let from = repo().join("host/tests/fixtures/kit").join(name);
    let to = dir.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
    let out = plugin(dir, &["build", name]);
    assert!(out.status.success(), "{}", text(&out));
    to.join("target/plugin").join(format!("{name}.wasm"))
}

#[test]
fn python_and_js_parsers_feed_the_rust_window_from_the_topic_and_equal_the_oracle() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    for name in ["py-turnstile-parse", "js-turnstile-parse"] {
        let built = build_fixture(tmp.path(), name);
        std::fs::copy(&built, plugins.join(format!("{name}.wasm"))).unwrap();
    }
    let broker = LocalBroker::start().expect("tansu starts");
    produce_weeks(tmp.path(), &broker.bootstrap(), "turnstile", &["240106"]);
    let expected = expected_rows("mta-turnstile-240106.incremental.csv");
    for name in ["py-turnstile-parse", "js-turnstile-parse"] {
        let lake = tmp.path().join(format!("lake-{name}"));
        let spec = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(
            &spec,
            format!(
                r#"version: 1
name: {name}
source:
  kafka: {{ brokers: "{}", topic: turnstile, group: {name}, start: earliest }}
steps:
  - transform: {{ plugin: {name}@^0.1, config: {{ format: weekly }}, limits: {{ call_timeout: 30s }} }}
  - window:
      plugin: turnstile-window@^0.1
      event_time: timestamp
      size: 4h
      delay: 4h
      late: dlq
      config: {{ counters: incremental, group_by: [station] }}
sinks:
  - lake: {{ url: "file://{}", partition_by: [window_start] }}
errors:
  dlq: {{ lake: {{ url: "file://{}", prefix: _dlq }} }}
"#,
                broker.bootstrap(),
                lake.display(),
                lake.display()
            ),
        )
        .unwrap();
        let out = ok(sluice(tmp.path())
            .args(["run", "--once", "--pipelines"])
            .arg(&spec)
            .env(
                "SLUICE_PLUGIN_PATH",
                format!(
                    "{}:{}",
                    sluice_plugin_artifacts::PLUGIN_DIR,
                    plugins.display()
                ),
            ));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("Pipeline `{name}` finished.")),
            "{stdout}"
        );
        assert_same_rows(&lake_rows(&lake), &expected);
        assert!(
            !lake.join("_dlq").exists(),
            "{name} dead-lettered records of a real week"
        );
    }
}

#[test]
fn a_python_build_that_keeps_the_runtime_s_files_and_sockets_is_refused_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let out = plugin(tmp.path(), &["new", "py-open", "--lang", "python"]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = tmp.path().join("py-open");
    // Build it as `sluice plugin build` does, but without --stub-wasi: CPython's runtime
    // then imports wasi:filesystem and wasi:sockets.
    let built = plugin(tmp.path(), &["build", "py-open"]);
    assert!(built.status.success(), "{}", text(&built));
    let venv = std::fs::read_dir(tools_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("componentize-py")
        })
        .expect("the build installed componentize-py");
    let wasm = tmp.path().join("unstubbed.wasm");
    let status = std::process::Command::new(venv.join("bin/componentize-py"))
        .arg("-d")
        .arg(dir.join("target/wit"))
        .args(["-w", "transform", "componentize", "app", "-o"])
        .arg(&wasm)
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let out = plugin(
        tmp.path(),
        &["test", "py-open", "--wasm", wasm.to_str().unwrap()],
    );
    let log = text(&out);
    assert_ne!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("which sluice does not grant"), "{log}");
    assert!(
        log.contains("wasi:filesystem/") && log.contains("filesystem access")
            || log.contains("wasi:sockets/") && log.contains("network access"),
        "{log}"
    );
}

/// Where `sluice plugin build` installs the toolchains (as the binary decides it).
fn tools_dir() -> PathBuf {
    std::env::var_os("SLUICE_PLUGIN_TOOLS").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/sluice/plugin-tools"),
        PathBuf::from,
    )
}
