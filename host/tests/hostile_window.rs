//! A hostile window plugin beside a normal pipeline, in one host process (`sluice run --once`
//! over a folder of specs): `hostile-window` loops, eats memory, traps or overflows its stack
//! in `init`, `process`, `advance`, `snapshot` and `restore`, returns malformed output, and
//! returns more failures than records or failures of many MiB. Each time the host stays up,
//! the normal pipeline's lake equals the oracle, and each hostile pipeline is refused or
//! stopped with a message naming its step, plugin and violation, or its culprit records are
//! dead letters. In process: what the host copies out of a call is bounded by the plugin's
//! memory limit, not by wasmtime's default.

#[allow(unused_imports, reason = "the broker helper serves other tests")]
mod common;

use std::path::{Path, PathBuf};

use common::*;
use sluice_host::runtime::MAX_RESTARTS;
use sluice_host::wasm::{
    Batch, Limits, PluginEngine, PluginError, Registry, Rows, WindowInstance, WindowSpec,
};
use sluice_plugin_sdk::rows::{BatchBuilder, Field, FieldType};

/// The step and plugin every message names.
const STEP: &str = "steps[1] window hostile-window@0.1.0: plugin hostile-window@0.1.0";

/// Misbehaviours that stop their pipeline: name, config, and the violation its message says.
/// In `process` and `advance` (a batch) the pipeline restarts from its last checkpoint first,
/// as often as allowed; in `snapshot` (taking a checkpoint) it stops at once.
const STOPPED: &[(&str, &str, &str)] = &[
    ("process-trap", "process: trap", TRAP),
    ("process-loop", "process: loop", TIME),
    ("process-bomb", "process: bomb", MEMORY),
    ("process-stack", "process: stack", STACK),
    ("advance-trap", "advance: trap", TRAP),
    ("advance-loop", "advance: loop", TIME),
    ("advance-bomb", "advance: bomb", MEMORY),
    ("advance-stack", "advance: stack", STACK),
    ("snapshot-trap", "snapshot: trap", TRAP),
    ("snapshot-loop", "snapshot: loop", TIME),
    ("snapshot-bomb", "snapshot: bomb", MEMORY),
    ("snapshot-stack", "snapshot: stack", STACK),
    (
        "malformed",
        "process: malformed",
        "returned malformed output: row 0 does not decode at field `rows`: malformed row at \
         byte 0: an int64 needs 8 bytes, 3 left",
    ),
    (
        "stray-failure",
        "process: stray_failure",
        "returned malformed output: a failure names input record 4, but the input had 4",
    ),
    (
        "aliased-failures",
        "process: aliased_failures",
        "returned more than 100663296 bytes for the host to copy, three times its memory limit \
         of 33554432 bytes (strings or lists that share memory)",
    ),
];

const TRAP: &str = "trapped: wasm trap: wasm `unreachable` instruction executed";
const TIME: &str = "exceeded its time limit of 300ms per call";
const MEMORY: &str = "exceeded its memory limit of 33554432 bytes";
const STACK: &str = "trapped: wasm trap: call stack exhausted";

/// Misbehaviours in `init` (the pipeline is refused) and in `restore` (it cannot continue
/// from its checkpoint): the same four each.
const CALLS: &[(&str, &str)] = &[
    ("trap", TRAP),
    ("loop", TIME),
    ("bomb", MEMORY),
    ("stack", STACK),
];

/// 40 hourly readings of one turnstile.
fn input() -> String {
    let lines: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/{:02}/2024,{:02}:00:00,REGULAR,{},{}",
                1 + i / 24,
                i % 24,
                100 + 10 * i,
                200 + 7 * i
            )
        })
        .collect();
    lines.join("\n") + "\n"
}

/// A folder of specs: the normal backfill pipeline over the shared week, plus hostile ones.
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
        std::fs::write(dir.path().join("in.csv"), input()).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Adds pipeline `name`: parse, then the hostile window with `config` (small limits,
    /// four records a batch and a checkpoint after each); returns its lake.
    fn add(&self, name: &str, config: &str) -> PathBuf {
        let lake = self.path(&format!("lake-{name}"));
        let spec = format!(
            "version: 1
name: {name}
source: {{ file: {{ paths: [\"{input}\"] }} }}
batch: {{ max_records: 4 }}
checkpoint: {{ url: \"file://{checkpoints}\", interval: 1ms }}
steps:
  - transform: {{ plugin: turnstile-parse@^0.1, config: {{ format: weekly }} }}
  - window:
      plugin: hostile-window@^0.1
      event_time: timestamp
      size: 4h
      config: {{ after_rows: \"8\", {config} }}
      limits: {{ memory: 32MiB, call_timeout: 300ms, max_output: 1MiB }}
sinks:
  - lake: {{ url: \"file://{lake}\" }}
",
            input = self.path("in.csv").display(),
            checkpoints = self.path(&format!("checkpoints-{name}")).display(),
            lake = lake.display(),
        );
        std::fs::write(self.path(&format!("specs/{name}.yaml")), spec).unwrap();
        lake
    }

    /// Runs every spec in one host; returns the exit code and stdout and stderr together.
    fn run(&self) -> (i32, String) {
        let out = sluice(self.dir.path())
            .args(["run", "--once", "--pipelines"])
            .arg(self.path("specs"))
            .env("SLUICE_PLUGIN_PATH", test_plugin_path())
            .env("TURNSTILE_FILE", week("240106"))
            .env(
                "LAKE_URL",
                format!("file://{}", self.path("backfill").display()),
            )
            .output()
            .expect("the sluice binary runs");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), plain(&text))
    }

    /// The host did not panic, the normal pipeline finished and its lake equals the oracle.
    fn assert_normal_pipeline_ok(&self, text: &str) {
        assert!(!text.contains("panicked"), "{text}");
        assert!(
            text.contains("Pipeline `turnstile-backfill` finished."),
            "{text}"
        );
        assert_same_rows(
            &lake_rows(&self.path("backfill")),
            &expected_rows("mta-turnstile-240106.incremental.csv"),
        );
    }
}

/// Every dead letter under `lake/_dlq`, sorted by offset.
fn dead_letters(lake: &Path) -> Vec<serde_json::Value> {
    use std::io::Read;
    let mut out = Vec::new();
    for path in files_under(&lake.join("_dlq")) {
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        out.extend(text.lines().map(|l| serde_json::from_str(l).unwrap()));
    }
    out.sort_by_key(|l: &serde_json::Value| l["offset"].as_i64());
    out
}

/// The offsets and reasons of the dead letters of `lake`, each from the window step.
fn culprits(lake: &Path) -> Vec<(i64, String)> {
    let letters = dead_letters(lake);
    for letter in &letters {
        assert_eq!(
            letter["stage"], "steps[1] window hostile-window@0.1.0",
            "{letter}"
        );
        assert_eq!(letter["plugin"], "hostile-window@0.1.0");
    }
    letters
        .iter()
        .map(|l| {
            let reason = l["reason"].as_str().unwrap().to_owned();
            (l["offset"].as_i64().unwrap(), reason)
        })
        .collect()
}

#[test]
fn a_hostile_window_plugin_is_stopped_or_dead_lettered_beside_a_normal_pipeline() {
    let run = Run::new();
    for (name, config, _) in STOPPED {
        run.add(name, config);
    }
    for (how, _) in CALLS {
        run.add(&format!("init-{how}"), &format!("init: {how}"));
        run.add(&format!("restore-{how}"), &format!("restore: {how}"));
    }
    let many = run.add("many-failures", "process: many_failures");
    let huge = run.add("huge-failure", "process: huge_failure");
    let (code, text) = run.run();

    assert_eq!(code, 2, "{text}");
    run.assert_normal_pipeline_ok(&text);
    for (how, violation) in CALLS {
        let name = format!("init-{how}");
        let spec = run.path(&format!("specs/{name}.yaml"));
        let refused = format!(
            "{}:12:7: plugin hostile-window@0.1.0 {violation}",
            spec.display()
        );
        assert!(text.contains(&refused), "{name}: {refused}\n{text}");
    }
    for (name, _, violation) in STOPPED {
        let stopped = format!("pipeline `{name}`: Pipeline `{name}` stopped");
        let line = text
            .lines()
            .find(|l| l.starts_with(&stopped))
            .unwrap_or_else(|| panic!("{stopped}\n{text}"));
        assert!(line.contains(&format!("{STEP} {violation}")), "{line}");
        // The batch that broke it is named (`advance` runs once the eighth record is in).
        let records = if name.starts_with("advance") {
            "4-7"
        } else {
            "8-11"
        };
        let restarts = format!("pipeline={name} restarts={MAX_RESTARTS} ");
        if name.starts_with("snapshot") {
            assert!(line.contains("(taking a checkpoint)"), "{line}");
            assert!(
                line.contains("stopped; fix or replace the plugin"),
                "{line}"
            );
            assert!(!text.contains(&format!("pipeline={name} restarts=")));
        } else {
            let at = format!(
                "(on_violation: restart; while processing 4 records at partition 0 offsets \
                 {records} of "
            );
            assert!(line.contains(&at), "{at}\n{line}");
            let gave_up = format!(
                "stopped after {MAX_RESTARTS} restarts in a row from its last checkpoint; fix or \
                 replace the plugin, then restart it: {STEP} {violation}"
            );
            assert!(line.contains(&gave_up), "{gave_up}\n{line}");
            assert!(text.contains(&restarts), "{name}: {restarts}\n{text}");
        }
        assert!(dead_letters(&run.path(&format!("lake-{name}"))).is_empty());
    }
    // `restore` is not called without a checkpoint: these ran to the end.
    let ran = [
        "restore-trap",
        "restore-loop",
        "restore-bomb",
        "restore-stack",
    ];
    for name in ran.iter().chain(&["many-failures", "huge-failure"]) {
        let finished = format!("Pipeline `{name}` finished.");
        assert!(text.contains(&finished), "{finished}\n{text}");
    }

    // A thousand failures per record: each record after the eighth is one dead letter.
    let letters = culprits(&many);
    let offsets: Vec<i64> = letters.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (8..40).collect::<Vec<_>>());
    for (offset, reason) in &letters {
        assert!(
            reason.starts_with(&format!(
                "failure 0 of row {}; failure 1 of row",
                offset % 4
            )),
            "{reason}"
        );
        assert!(reason.len() < 1100, "{}", reason.len());
    }
    // A 12 MiB reason: the first record of each batch after the eighth record, cut to 1 KiB.
    let letters = culprits(&huge);
    let offsets: Vec<i64> = letters.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (8..40).step_by(4).collect::<Vec<_>>());
    for (_, reason) in &letters {
        assert!(
            reason.starts_with("xxxx") && reason.len() < 1100,
            "{reason}"
        );
    }

    // The second run continues from the checkpoints: `restore` misbehaves.
    let (code, text) = run.run();
    assert_eq!(code, 2, "{text}");
    run.assert_normal_pipeline_ok(&text);
    for (how, violation) in CALLS {
        let name = format!("restore-{how}");
        let refused = format!("Pipeline `{name}` cannot continue from its checkpoint ");
        let line = text
            .lines()
            .find(|l| l.contains(&refused))
            .unwrap_or_else(|| panic!("{refused}\n{text}"));
        let why =
            format!("{STEP} {violation} (restoring the state written by hostile-window@0.1.0)");
        assert!(line.contains(&why), "{why}\n{line}");
    }
}

/// What the host copies out of one call is bounded by three times the plugin's memory
/// limit: a window state as large as the memory allows is saved (160 MiB, over wasmtime's
/// default bound of 128 MiB), while failures whose reasons all share one MiB of guest memory
/// (1 GiB to copy) are refused as a broken limit, not copied.
#[test]
fn the_host_copies_out_of_a_call_what_the_memory_limit_allows() {
    let engine = PluginEngine::new(None).unwrap();
    let dirs = [
        PathBuf::from(sluice_plugin_artifacts::PLUGIN_DIR),
        PathBuf::from(sluice_plugin_artifacts::TEST_PLUGIN_DIR),
    ];
    let (registry, errors) = Registry::load_dirs(&engine, &dirs);
    assert!(errors.is_empty(), "{errors:?}");
    let plugin = registry.resolve("hostile-window").unwrap();
    let window = |memory_bytes: usize, config: &str| {
        // A deadline that a loaded machine meets: this is about sizes.
        let limits = Limits {
            memory_bytes,
            call_timeout: std::time::Duration::from_secs(60),
            ..Limits::default()
        };
        let input = [Field::new("timestamp", FieldType::Timestamp)];
        let spec = WindowSpec {
            event_time: "timestamp".into(),
            size: 1000,
            slide: 1000,
        };
        let id = plugin.id();
        WindowInstance::new(
            &engine,
            &plugin.component,
            &id,
            &limits,
            config,
            &input,
            &spec,
        )
        .unwrap()
    };
    let mut large = window(512 << 20, r#"{"state_kib":"163840"}"#);
    assert_eq!(large.snapshot().unwrap().len(), 8 + (160 << 20));

    let mut aliased = window(32 << 20, r#"{"process":"aliased_failures"}"#);
    let mut rows = BatchBuilder::default();
    rows.put_timestamp(0);
    rows.end_row();
    let batch = Rows::Packed(Batch {
        data: rows.data,
        ends: rows.ends,
    });
    let error = aliased.process(&batch, 0).unwrap_err();
    assert!(matches!(error, PluginError::Limit { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "plugin hostile-window@0.1.0 returned more than 100663296 bytes for the host to copy, \
         three times its memory limit of 33554432 bytes (strings or lists that share memory)"
    );
}
