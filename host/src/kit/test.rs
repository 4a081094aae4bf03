//! `sluice plugin test`: builds the plugin, then runs each fixture through the engine the
//! way a pipeline runs its steps: a chain planned from a spec (so the step's config, limits,
//! `on_violation`, window size, delay and lateness are those of a pipeline), fed batch by
//! batch, the watermark moving with event time and every window closing at the end of the
//! input. Early window results come out after every batch. The output is compared with the
//! golden `expected.jsonl`; `--bless` writes it instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::fixture::{self, Case};
use super::golden::{self, Golden};
use crate::runtime::Host;

/// `sluice plugin test` arguments.
#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// The plugin folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Rewrite each case's expected.jsonl with what the plugin produces now.
    #[arg(long)]
    pub bless: bool,
    /// Run only this case (a folder name under tests/).
    #[arg(long)]
    pub case: Option<String>,
    /// Test this component instead of building the folder.
    #[arg(long)]
    pub wasm: Option<PathBuf>,
}

/// Runs the cases; returns the exit code (0: all passed or blessed, 1: a case differs).
pub fn run(args: &TestArgs) -> anyhow::Result<i32> {
    let cases = fixture::cases(&args.dir, args.case.as_deref())?;
    let built = match &args.wasm {
        Some(path) => super::build::inspect(&args.dir, path)?,
        None => super::build::build(&args.dir)?,
    };
    eprintln!("{built}");
    let component = built.path;
    let host = test_host(&args.dir, &component)?;
    let wanted = std::fs::canonicalize(&component)?;
    let plugin = host
        .registry
        .all()
        .find(|p| std::fs::canonicalize(&p.path).is_ok_and(|p| p == wanted))
        .ok_or_else(|| anyhow::anyhow!("`{}` did not load as a plugin", component.display()))?;
    let reference = format!("{}@={}", plugin.name, plugin.version);
    let (mut passed, mut failed) = (0, 0);
    for case in &cases {
        let (actual, speed) = run_case(&host, case, &reference)?;
        let golden = case.dir.join("expected.jsonl");
        if args.bless {
            let mut text = actual.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            std::fs::write(&golden, text)?;
            println!("blessed {} ({} lines)", case.name, actual.len());
            passed += 1;
            continue;
        }
        let expected: Vec<String> = match std::fs::read_to_string(&golden) {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(_) => {
                println!(
                    "FAILED {}: there is no {} yet; run with --bless to write it from this output:\n{}",
                    case.name,
                    golden.display(),
                    actual.join("\n")
                );
                failed += 1;
                continue;
            }
        };
        match golden::diff(&expected, &actual) {
            None => {
                println!("ok     {} ({} lines; {speed})", case.name, actual.len());
                passed += 1;
            }
            Some(diff) => {
                println!(
                    "FAILED {}: the output differs from {} (- expected, + actual):\n{diff}",
                    case.name,
                    golden.display()
                );
                failed += 1;
            }
        }
    }
    println!(
        "{} case(s): {passed} {}, {failed} failed",
        passed + failed,
        if args.bless { "blessed" } else { "passed" }
    );
    Ok(if failed == 0 { 0 } else { 1 })
}

/// A host whose registry holds the component, with its state (compile cache) in the
/// plugin folder's `target/`.
fn test_host(dir: &Path, component: &Path) -> anyhow::Result<Host> {
    let component = std::fs::canonicalize(component)?;
    let folder = component
        .parent()
        .expect("a file is in a folder")
        .to_owned();
    let mut host = Host::new(&dir.join("target/plugin-test"), &[folder])?;
    // Fixtures run on a developer's machine: the host's ceilings are the defaults a
    // pipeline gets, and a spec's `limits` apply as they would there.
    host.ceilings = crate::wasm::Limits::ceilings();
    Ok(host)
}

/// The output lines of one case, and how fast the engine ran it (`N records in T ms`).
fn run_case(host: &Host, case: &Case, reference: &str) -> anyhow::Result<(Vec<String>, String)> {
    let yaml = case.pipeline(reference)?;
    let file = format!(
        "{} (the step of case.yaml)",
        case.dir.join("case.yaml").display()
    );
    let loaded = crate::spec::load_str(&file, &yaml, &|_| None)
        .map_err(|e| crate::cli::UserError(format!("{e}")))?;
    let chain = match &case.schema {
        Some(schema) => host.chain_over(&loaded, schema.clone(), &[0]),
        None => host.chain(&loaded, "fixture", &[0], true),
    };
    let mut chain = chain.map_err(|e| crate::cli::UserError(format!("case {}: {e}", case.name)))?;
    if let Some(window) = chain.window.as_mut()
        && window.early.is_some()
    {
        // Early results after every batch, not on a wall-clock period: deterministic.
        window.early = Some(Duration::ZERO);
    }
    let mut golden = Golden::default();
    let batches = case.batches()?;
    let started = std::time::Instant::now();
    for (batch, rows) in batches {
        match chain.process_rows(batch, rows) {
            Ok(out) => golden.add(&out)?,
            Err(e) => {
                // A pipeline would stop (or restart) here: the case ends with the reason.
                golden.lines.push(format!(
                    "{{\"stopped\": {}}}",
                    serde_json::Value::from(e.to_string())
                ));
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    let records = case.lines.len();
    let mut speed = format!("{records} records in {:.1} ms", elapsed.as_secs_f64() * 1e3);
    if records >= 1000 {
        speed += &format!(", {:.0} records/s", records as f64 / elapsed.as_secs_f64());
    }
    Ok((golden.finish(), speed))
}
