//! Plugins built for `sluice:plugin@0.1` keep running unchanged: the turnstile-parse and
//! turnstile-window components as they were built at 0.1.0 (kept as fixtures in
//! `tests/fixtures/plugins-0.1/`) load in this host, say so in the plugin listing, and run the
//! turnstile pipeline over a real MTA week through the host's 0.1 adapter with the oracle's
//! windows: the same rows as today's 0.2 plugins, and the same parsed rows as them too.

#[allow(unused_imports, reason = "these tests need no broker")]
mod common;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use common::*;
use sluice_host::wasm::{Contract, PluginEngine, Registry};

/// The 0.1.0 components.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins-0.1")
}

const WINDOWS: &str = r#"version: 1
name: windows
source: { file: { paths: ["${INPUT}"] } }
steps:
  - transform: { plugin: turnstile-parse@^0.1, config: { format: weekly } }
  - window:
      plugin: turnstile-window@^0.1
      event_time: timestamp
      size: 4h
      delay: 4h
      config: { counters: cumulative, group_by: [station] }
sinks:
  - lake: { url: "${LAKE_URL}", partition_by: [window_start] }
"#;

const PARSED: &str = r#"version: 1
name: parsed
source: { file: { paths: ["${INPUT}"] } }
steps:
  - transform: { plugin: turnstile-parse@^0.1, config: { format: weekly } }
sinks:
  - lake: { url: "${LAKE_URL}", format: csv, compression: none }
"#;

/// Week 240106 in event-time order (stable by DATE+TIME, as `sluice produce --order
/// event-time` replays it), as a plain CSV file under `dir`.
fn week_in_event_time(dir: &Path) -> PathBuf {
    let file = std::fs::File::open(week("240106")).unwrap();
    let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file));
    let mut lines: Vec<(String, String)> = Vec::new();
    for line in reader.lines().skip(1) {
        let line = line.unwrap();
        let f: Vec<&str> = line.split(',').collect();
        let (date, time) = (f[f.len() - 5], f[f.len() - 4]);
        // mm/dd/yyyy hh:mm:ss as a sortable key.
        let key = format!("{}{}{}{time}", &date[6..], &date[..2], &date[3..5]);
        lines.push((key, line));
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let path = dir.join("week.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for (_, line) in lines {
        writeln!(out, "{line}").unwrap();
    }
    path
}

/// Runs `spec` over `input` with the plugins in `plugins`; returns the lake folder.
fn run(dir: &Path, name: &str, spec: &str, input: &Path, plugins: &Path) -> PathBuf {
    let (spec_file, lake) = (dir.join(format!("{name}.yaml")), dir.join(name));
    std::fs::write(&spec_file, spec).unwrap();
    let state = dir.join(format!("state-{name}"));
    std::fs::create_dir_all(&state).unwrap();
    ok(sluice(&state)
        .args(["run", "--once", "--pipelines"])
        .arg(&spec_file)
        .env("SLUICE_PLUGIN_PATH", plugins)
        .env("INPUT", input)
        .env("LAKE_URL", format!("file://{}", lake.display())));
    lake
}

/// Every line of every plain CSV object under `lake`, sorted.
fn csv_rows(lake: &Path) -> Vec<String> {
    let mut rows: Vec<String> = files_under(lake)
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines().skip(1).map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn the_0_1_0_components_run_the_turnstile_week_through_the_adapter_as_the_0_2_ones_do() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let engine = PluginEngine::new(None).unwrap();
    let (registry, errors) = Registry::load_dirs(&engine, &[fixtures()]);
    assert!(errors.is_empty(), "{errors:?}");
    let loaded: Vec<(String, Contract)> = registry.all().map(|p| (p.id(), p.contract)).collect();
    assert_eq!(
        loaded,
        [
            ("turnstile-parse@0.1.0".to_owned(), Contract::V0_1),
            ("turnstile-window@0.1.0".to_owned(), Contract::V0_1)
        ]
    );
    let input = week_in_event_time(dir);

    let old = run(dir, "old", WINDOWS, &input, &fixtures());
    let new = run(
        dir,
        "new",
        WINDOWS,
        &input,
        Path::new(sluice_plugin_artifacts::PLUGIN_DIR),
    );
    let expected = expected_rows("mta-turnstile-240106.cumulative.csv");
    assert_same_rows(&lake_rows(&old), &expected);
    assert_same_rows(&lake_rows(&new), &expected);

    let old = csv_rows(&run(dir, "old-parsed", PARSED, &input, &fixtures()));
    let new = csv_rows(&run(
        dir,
        "new-parsed",
        PARSED,
        &input,
        Path::new(sluice_plugin_artifacts::PLUGIN_DIR),
    ));
    assert_eq!(old.len(), 250_816, "every reading of the week, parsed");
    assert!(
        old == new,
        "the 0.1 and 0.2 parse plugins give different rows"
    );
}
