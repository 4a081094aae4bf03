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

const RUST_TRANSFORM_GOLDEN: &str =
    include_str!("../templates/rust-transform/tests/basic/expected.jsonl");
const RUST_WINDOW_GOLDEN: &str =
    include_str!("../templates/rust-window/tests/hourly/expected.jsonl");

/// Scaffolds and tests the `lang` template of `kind`, whose golden files are the Rust
/// template's; returns the test's output.
fn template_passes(lang: &str, kind: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("{lang}-{kind}");
    let out = plugin(tmp.path(), &["new", &name, "--lang", lang, "--kind", kind]);
    assert!(out.status.success(), "{}", text(&out));
    let (case, rust, cases) = match kind {
        "window" => ("hourly", RUST_WINDOW_GOLDEN, 1),
        _ => ("basic", RUST_TRANSFORM_GOLDEN, 2),
    };
    let golden = tmp
        .path()
        .join(&name)
        .join(format!("tests/{case}/expected.jsonl"));
    assert_eq!(std::fs::read_to_string(&golden).unwrap(), rust);
    let out = plugin(tmp.path(), &["test", &name]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("{cases} case(s): {cases} passed, 0 failed")),
        "{log}"
    );
    log
}

#[test]
fn the_python_templates_give_the_rust_templates_rows() {
    let log = template_passes("python", "transform");
    assert!(
        log.contains("capabilities  none"),
        "built with --stub-wasi:\n{log}"
    );
    template_passes("python", "window");
}

#[test]
fn the_js_templates_give_the_rust_templates_rows_under_deny_all_wasi() {
    template_passes("js", "window");
    let log = template_passes("js", "transform");
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
    // The plugin's own files, then the SDK modules `sluice plugin new` would give it.
    let sdk = repo().join(match name {
        "py-turnstile-parse" => "host/templates/sdk/python",
        _ => "host/templates/sdk/js",
    });
    for dir in [&from, &sdk] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
            }
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
  kafka: {{ brokers: "{}", topic: turnstile, group: {name}, start: earliest, key: [station] }}
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

#[test]
fn a_python_plugin_that_opens_a_file_or_a_socket_gets_an_error_and_the_host_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let out = plugin(tmp.path(), &["new", "py-probe", "--lang", "python"]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = tmp.path().join("py-probe");
    // Records naming a file or `socket` make the plugin try it and report what it got.
    let app = std::fs::read_to_string(dir.join("app.py"))
        .unwrap()
        .replace("def parse(line):\n", "def parse(line):\n    probe(line)\n")
        + r#"

def probe(line):
    import socket
    try:
        if line.startswith(b"/"):
            open(line.decode()).read()
        elif line == b"socket":
            socket.socket().connect(("127.0.0.1", 5432))
        else:
            return
    except Exception as e:
        raise ValueError("%s: %s" % (type(e).__name__, e))
    raise ValueError("the call succeeded")
"#;
    std::fs::write(dir.join("app.py"), app).unwrap();
    let case = dir.join("tests/probe");
    std::fs::create_dir_all(&case).unwrap();
    std::fs::write(case.join("case.yaml"), "step:\n  transform: {}\nbatch: 1\n").unwrap();
    std::fs::write(case.join("input.txt"), "/etc/passwd\nsocket\nA,1,2\n").unwrap();
    let out = plugin(
        tmp.path(),
        &["test", "py-probe", "--case", "probe", "--bless"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let golden = std::fs::read_to_string(case.join("expected.jsonl")).unwrap();
    assert_eq!(
        golden.lines().collect::<Vec<_>>(),
        [
            r#"{"dead_letter": {"line": 1, "reason": "PermissionError: sluice plugins have no filesystem access"}}"#,
            r#"{"dead_letter": {"line": 2, "reason": "PermissionError: sluice plugins have no network access"}}"#,
            r#"{"row": {"station": "A", "entries": 1, "exits": 2, "traffic": 3}}"#,
        ],
        "{golden}"
    );
}
