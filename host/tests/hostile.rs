//! Hostile plugins beside a normal pipeline, in one host process (`sluice run --once` over
//! a folder of specs): a plugin that traps on a record, loops, eats memory, returns too much,
//! leaks until it runs out of memory, traps in `init`, implements the wrong world or imports
//! a capability. Each time the host stays up, the normal pipeline's lake equals the oracle,
//! and the hostile pipeline's outcome follows its `on_violation` policy.

#[allow(unused_imports, reason = "the broker helper serves other tests")]
mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Source lines of a hostile pipeline: readings of one turnstile every 4 hours, with the
/// marker lines (not turnstile records) at the given offsets.
fn input(markers: &[(usize, &str)]) -> String {
    let mut lines = Vec::new();
    for i in 0..40usize {
        if let Some((_, marker)) = markers.iter().find(|(at, _)| *at == i) {
            lines.push(format!("{marker} marker line {i}"));
            continue;
        }
        let (day, hour) = (1 + 4 * i / 24, 4 * i % 24);
        lines.push(format!(
            "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/{day:02}/2024,{hour:02}:00:00,REGULAR,{},{}",
            100 + 10 * i,
            200 + 7 * i
        ));
    }
    lines.join("\n") + "\n"
}

/// A pipeline over `input`: the hostile step (when `hostile` is set), then the turnstile
/// parse and window, into its own lake.
fn spec(name: &str, input: &Path, lake: &Path, hostile: Option<&str>) -> String {
    let step = hostile.map_or(String::new(), |s| format!("  - transform: {s}\n"));
    format!(
        "version: 1
name: {name}
source: {{ file: {{ paths: [\"{}\"] }} }}
batch: {{ max_records: 16 }}
steps:
{step}  - transform: {{ plugin: turnstile-parse@^0.1, config: {{ format: weekly }} }}
  - window:
      plugin: turnstile-window@^0.1
      event_time: timestamp
      size: 4h
      delay: 8days
      config: {{ counters: incremental, group_by: [station] }}
sinks:
  - lake: {{ url: \"file://{}\", partition_by: [station] }}
",
        input.display(),
        lake.display()
    )
}

/// A folder of specs: the normal backfill pipeline over the shared week, plus `extra`.
struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("specs")).unwrap();
        std::fs::copy(
            repo().join("pipelines/turnstile-file.yaml"),
            dir.path().join("specs/turnstile-file.yaml"),
        )
        .unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Adds a pipeline named `name` over `markers`; returns its spec path and lake.
    fn add(&self, name: &str, markers: &[(usize, &str)], hostile: Option<&str>) -> PathBuf {
        let data = self.path(&format!("{name}.txt"));
        std::fs::write(&data, input(markers)).unwrap();
        let lake = self.path(&format!("lake-{name}"));
        let spec_path = self.path(&format!("specs/{name}.yaml"));
        std::fs::write(&spec_path, spec(name, &data, &lake, hostile)).unwrap();
        lake
    }

    /// Runs every spec in one host; returns the exit code, stdout and stderr.
    fn run(&self, plugin_path: &str) -> (i32, String, String) {
        let out = sluice(self.dir.path())
            .args(["run", "--once", "--pipelines"])
            .arg(self.path("specs"))
            .env("SLUICE_PLUGIN_PATH", plugin_path)
            .env("TURNSTILE_FILE", week("240106"))
            .env(
                "LAKE_URL",
                format!("file://{}", self.path("backfill").display()),
            )
            .output()
            .expect("the sluice binary runs");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    /// The normal pipeline finished and its lake equals the oracle.
    fn assert_normal_pipeline_ok(&self, stdout: &str, stderr: &str) {
        assert!(
            stdout.contains("Pipeline `turnstile-backfill` finished."),
            "{stdout}\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_same_rows(
            &lake_rows(&self.path("backfill")),
            &expected_rows("mta-turnstile-240106.incremental.csv"),
        );
    }
}

fn plugin_path(extra: &[&Path]) -> String {
    let mut dirs = vec![test_plugin_path()];
    dirs.extend(extra.iter().map(|d| d.display().to_string()));
    dirs.join(":")
}

/// Every dead letter under `lake/_dlq`, sorted by offset.
fn dead_letters(lake: &Path) -> Vec<serde_json::Value> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut stack = vec![lake.join("_dlq")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let mut text = String::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
                .read_to_string(&mut text)
                .unwrap();
            out.extend(text.lines().map(|l| serde_json::from_str(l).unwrap()));
        }
    }
    out.sort_by_key(|l: &serde_json::Value| l["offset"].as_i64());
    out
}

/// The hostile pipeline's lake equals its control's (same input, no hostile step), and its
/// dead letters are exactly the marker records, from the hostile step, with `reason`.
fn assert_culprits(lake: &Path, control: &Path, offsets: &[i64], reason: &str) {
    assert_same_rows(&lake_rows(lake), &lake_rows(control));
    let letters = dead_letters(lake);
    let got: Vec<i64> = letters
        .iter()
        .map(|l| l["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(got, offsets, "{letters:#?}");
    for letter in &letters {
        assert_eq!(
            letter["stage"], "steps[0] transform hostile@0.1.0",
            "{letter}"
        );
        assert_eq!(letter["plugin"], "hostile@0.1.0");
        assert_eq!(letter["plugin_hash"].as_str().unwrap().len(), 64);
        let why = letter["reason"].as_str().unwrap();
        assert!(why.contains(reason), "{why} should mention {reason}");
        assert!(letter["record"].as_str().unwrap().contains("marker line"));
    }
}

const HOSTILE: &str =
    "{ plugin: hostile@^0.1, limits: { memory: 32MiB, call_timeout: 300ms, max_output: 1MiB";

#[test]
fn misbehaving_plugins_follow_their_policy_beside_a_normal_pipeline() {
    let run = Run::new();
    let markers = [
        (3, "BOOM"),
        (11, "LOOP"),
        (20, "BOMB"),
        (29, "HUGE"),
        (37, "BOOM"),
    ];
    let control = run.add("control", &markers, None);
    let clean = run.add("control-clean", &[], None);
    let dlq = run.add("hostile-dlq", &markers, Some(&format!("{HOSTILE} }} }}")));
    let fail = run.add(
        "hostile-fail",
        &[(7, "BOOM")],
        Some(&format!("{HOSTILE}, on_violation: fail }} }}")),
    );
    let leak = run.add(
        "hostile-leak",
        &[],
        Some(
            "{ plugin: hostile@^0.1, config: { leak_kib: \"6144\" }, \
             limits: { memory: 16MiB, on_violation: restart } }",
        ),
    );
    let (code, stdout, stderr) = run.run(&plugin_path(&[]));

    // The host ran everything to the end; only the `fail` pipeline failed.
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    run.assert_normal_pipeline_ok(&stdout, &stderr);
    for name in ["control", "control-clean", "hostile-dlq", "hostile-leak"] {
        assert!(
            stdout.contains(&format!("Pipeline `{name}` finished.")),
            "{stdout}\n{stderr}"
        );
    }

    // dlq (the default): each culprit found by bisection, named by its limit; the rest
    // flowed on, so the windows equal the control's.
    let letters = dead_letters(&dlq);
    assert_culprits(&dlq, &control, &[3, 11, 20, 29, 37], "");
    let reasons: Vec<&str> = letters
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert!(reasons[0].contains("trapped: wasm trap"), "{reasons:?}");
    assert!(
        reasons[1].contains("exceeded its time limit of 300ms per call"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("exceeded its memory limit of 33554432 bytes"),
        "{reasons:?}"
    );
    assert!(
        reasons[3].contains("over its output limit of 1048576 bytes"),
        "{reasons:?}"
    );

    // restart: a leaking instance is replaced and its batch retried; nothing is lost.
    assert!(stderr.contains("retried once"), "{stderr}");
    assert_same_rows(&lake_rows(&leak), &lake_rows(&clean));
    assert!(dead_letters(&leak).is_empty());

    // fail: the pipeline stops, naming stage, plugin, violation and record.
    let data = run.path("hostile-fail.txt");
    let expected = format!(
        "pipeline `hostile-fail`: Pipeline `hostile-fail` stopped; fix or replace the plugin, then \
         restart it: steps[0] transform \
         hostile@0.1.0: plugin hostile@0.1.0 trapped: wasm trap: wasm `unreachable` instruction \
         executed (on_violation: fail; record at {} partition 0 offset 7)",
        data.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(dead_letters(&fail).is_empty());
}

/// `line:column` (1-based) of the first occurrence of `needle` in the file at `path`.
fn position(path: &Path, needle: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let (n, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .expect("needle in the spec");
    format!("{}:{}", n + 1, line.find(needle).unwrap() + 1)
}

/// A component that imports a WASI filesystem function (and exports nothing).
fn filesystem_importer() -> Vec<u8> {
    use wasm_encoder::{
        Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection, InstanceType,
        PrimitiveValType,
    };
    let mut instance = InstanceType::new();
    instance
        .ty()
        .function()
        .params([("path", PrimitiveValType::String)])
        .result(None);
    instance.export("open", ComponentTypeRef::Func(0));
    let mut types = ComponentTypeSection::new();
    types.instance(&instance);
    let mut imports = ComponentImportSection::new();
    imports.import("wasi:filesystem/types@0.2.0", ComponentTypeRef::Instance(0));
    let mut component = Component::new();
    component.section(&types).section(&imports);
    component.finish()
}

#[test]
fn plugins_that_cannot_start_are_refused_naming_the_step_and_the_others_run() {
    let run = Run::new();
    run.add(
        "init-trap",
        &[],
        Some("{ plugin: hostile@^0.1, config: { init: trap } }"),
    );
    run.add(
        "wrong-world",
        &[],
        Some("{ plugin: turnstile-window@^0.1 }"),
    );
    run.add("denied", &[], Some("{ plugin: fs-reader@^0.1 }"));
    let extra = run.path("plugins");
    std::fs::create_dir(&extra).unwrap();
    std::fs::write(extra.join("fs-reader.wasm"), filesystem_importer()).unwrap();
    let (code, stdout, stderr) = run.run(&plugin_path(&[&extra]));

    assert_eq!(code, 2, "{stdout}\n{stderr}");
    run.assert_normal_pipeline_ok(&stdout, &stderr);
    let at = |name: &str, needle: &str| {
        let spec = run.path(&format!("specs/{name}.yaml"));
        format!("{}:{}", spec.display(), position(&spec, needle))
    };
    let expected = [
        format!(
            "{}: plugin hostile@0.1.0 trapped: wasm trap: wasm `unreachable` instruction executed",
            at("init-trap", "config: { init")
        ),
        format!(
            "{}: plugin turnstile-window@0.1.0 implements the `Window` world, but a `transform` \
             step needs `Transform`",
            at("wrong-world", "plugin: turnstile-window")
        ),
        format!(
            "{}: no plugin named `fs-reader` is installed: `{}` was refused: it imports \
             `wasi:filesystem/types@0.2.0`: this plugin wants filesystem access, which sluice \
             does not grant",
            at("denied", "plugin: fs-reader"),
            extra.join("fs-reader.wasm").display()
        ),
    ];
    for message in expected {
        assert!(
            stderr.contains(&message),
            "expected {message}\nin\n{stderr}"
        );
    }
}
