//! Plugin limits and violation policies in process, on the real wasm components: bisection
//! finds exactly the culprit records of a batch, the window step asks for a restart from the
//! last checkpoint (or fails, per its policy), and turnstile-parse accounts for every record
//! of arbitrary input (property tests, through the host's `TransformStage`).

use std::path::PathBuf;
use std::sync::Arc;

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use sluice_host::runtime::{ChainErrorKind, Host, TransformStage, source_schema};
use sluice_host::sources::SourceBatch;
use sluice_host::spec::OnViolation;
use sluice_host::wasm::{Batch, Limits, Plugin, PluginEngine, Registry, Rows};
use sluice_plugin_sdk::rows::BatchBuilder;

fn plugin_dirs() -> Vec<PathBuf> {
    vec![
        PathBuf::from(sluice_plugin_artifacts::PLUGIN_DIR),
        PathBuf::from(sluice_plugin_artifacts::TEST_PLUGIN_DIR),
    ]
}

fn plugin(engine: &PluginEngine, name: &str) -> Arc<Plugin> {
    let (registry, errors) = Registry::load_dirs(engine, &plugin_dirs());
    assert!(errors.is_empty(), "{errors:?}");
    registry.resolve(name).unwrap()
}

fn stage(engine: &PluginEngine, name: &str, policy: OnViolation) -> TransformStage {
    let plugin = plugin(engine, name);
    let label = format!("steps[0] transform {}", plugin.id());
    let limits = Limits::default();
    TransformStage::new(
        engine,
        label,
        plugin,
        limits,
        policy,
        "{}".into(),
        source_schema(),
    )
    .unwrap()
}

/// Raw records as a batch of one `bytes` field.
fn batch(records: &[Vec<u8>]) -> Rows {
    let mut rows = BatchBuilder::default();
    for record in records {
        rows.put_bytes(record);
        rows.end_row();
    }
    Rows::Packed(Batch {
        data: rows.data,
        ends: rows.ends,
    })
}

/// A batch with records that trap anywhere: the output is exactly the other records, in
/// order, and the failures are exactly the trapping ones.
#[test]
fn bisection_isolates_exactly_the_culprits() {
    let engine = PluginEngine::new(None).unwrap();
    let hostile = std::cell::RefCell::new(stage(&engine, "hostile", OnViolation::Dlq));
    let mut runner = TestRunner::new(ProptestConfig::with_cases(24));
    let strategy = proptest::collection::vec(any::<bool>(), 1..48);
    let result = runner.run(&strategy, |boom| {
        let records: Vec<Vec<u8>> = boom
            .iter()
            .enumerate()
            .map(|(i, &b)| format!("{} {i}", if b { "BOOM" } else { "fine" }).into_bytes())
            .collect();
        let out = hostile
            .borrow_mut()
            .process(&engine, &batch(&records))
            .unwrap();
        let n = boom.len() as u32;
        let expected_out: Vec<u32> = (0..n).filter(|&i| !boom[i as usize]).collect();
        let expected_failed: Vec<u32> = (0..n).filter(|&i| boom[i as usize]).collect();
        prop_assert_eq!(&out.origins, &expected_out);
        let failed: Vec<u32> = out.failures.iter().map(|(i, _)| *i).collect();
        prop_assert_eq!(failed, expected_failed);
        for (_, reason) in &out.failures {
            prop_assert!(
                reason.contains("plugin hostile@0.1.0 trapped"),
                "{}",
                reason
            );
        }
        let packed = out.rows.to_packed().unwrap();
        let rows = sluice_plugin_sdk::rows::Batch::new(&packed.data, &packed.ends);
        for (row, &origin) in rows.rows().zip(&out.origins) {
            prop_assert_eq!(&row[4..], records[origin as usize].as_slice());
        }
        Ok(())
    });
    result.unwrap();
}

/// A valid weekly MTA line, a garbage line, or a truncated valid line.
fn record() -> impl Strategy<Value = Vec<u8>> {
    let valid = (0u32..28, 0u32..24, 0u64..1_000_000, 0u64..1_000_000).prop_map(|(d, h, e, x)| {
        format!(
            "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/{:02}/2024,{h:02}:00:00,REGULAR,{e},{x}",
            d + 1
        )
        .into_bytes()
    });
    let garbage =
        proptest::collection::vec(any::<u8>().prop_filter("one line", |b| *b != b'\n'), 0..120);
    prop_oneof![
        3 => valid.clone(),
        2 => garbage,
        2 => (valid, 0usize..80).prop_map(|(v, n)| v[..n.min(v.len())].to_vec()),
    ]
}

/// Blank lines and header lines are skipped by turnstile-parse, neither parsed nor failed.
fn skippable(record: &[u8]) -> bool {
    let text = String::from_utf8_lossy(record).to_ascii_lowercase();
    text.trim().is_empty() || text.contains("unit") || text.contains("station")
}

/// Every record is parsed (its index is an origin of the output) or dead-lettered (a
/// failure), never both, and only blank or header lines are neither.
#[test]
fn turnstile_parse_accounts_for_every_record() {
    let engine = PluginEngine::new(None).unwrap();
    let parse = std::cell::RefCell::new(stage(&engine, "turnstile-parse", OnViolation::Dlq));
    let mut runner = TestRunner::new(ProptestConfig::with_cases(64));
    let strategy = proptest::collection::vec(record(), 0..64);
    let result = runner.run(&strategy, |records| {
        let out = parse
            .borrow_mut()
            .process(&engine, &batch(&records))
            .unwrap();
        let parsed: BTreeSet<u32> = out.origins.iter().copied().collect();
        let failed: BTreeSet<u32> = out.failures.iter().map(|(i, _)| *i).collect();
        prop_assert_eq!(
            out.origins.len(),
            parsed.len(),
            "one row per one-line record"
        );
        prop_assert!(parsed.is_disjoint(&failed));
        for (i, record) in records.iter().enumerate() {
            let i = i as u32;
            if !parsed.contains(&i) && !failed.contains(&i) {
                prop_assert!(skippable(record), "record {} was lost: {:?}", i, record);
            }
        }
        prop_assert_eq!(out.rows.len(), out.origins.len());
        Ok(())
    });
    result.unwrap();
}

/// Arbitrary bytes, newlines included: no trap, and every index the plugin reports is a
/// record of the batch.
#[test]
fn turnstile_parse_survives_arbitrary_bytes() {
    let engine = PluginEngine::new(None).unwrap();
    let parse = std::cell::RefCell::new(stage(&engine, "turnstile-parse", OnViolation::Fail));
    let mut runner = TestRunner::new(ProptestConfig::with_cases(64));
    let bytes = proptest::collection::vec(any::<u8>(), 0..200);
    let strategy = proptest::collection::vec(bytes, 0..32);
    let result = runner.run(&strategy, |records| {
        let out = parse
            .borrow_mut()
            .process(&engine, &batch(&records))
            .unwrap();
        let n = records.len() as u32;
        prop_assert!(out.origins.iter().all(|&o| o < n));
        prop_assert!(out.failures.iter().all(|(i, _)| *i < n));
        Ok(())
    });
    result.unwrap();
}

const WINDOW_SPEC: &str = r#"version: 1
name: window-policy
source: { file: { paths: [unused] } }
steps:
  - transform: { plugin: turnstile-parse@^0.1, config: { format: weekly } }
  - window:
      plugin: hostile-window@^0.1
      event_time: timestamp
      size: 4h
      LIMITS
sinks: [ { stdout: {} } ]
"#;

/// Runs a batch whose third record traps the window plugin, with `limits` on the step.
fn window_error(limits: &str) -> sluice_host::runtime::ChainError {
    let state = tempfile::tempdir().unwrap();
    let host = Host::new(state.path(), &plugin_dirs()).unwrap();
    let text = WINDOW_SPEC.replace("LIMITS", limits);
    let loaded = sluice_host::spec::load_str("w.yaml", &text, &|_| None).unwrap();
    let mut chain = host.chain(&loaded, "t", &[0], true).unwrap();
    let mut source = SourceBatch::default();
    for (offset, station) in [(40, "59 ST"), (41, "59 ST"), (42, "BOOM ST"), (43, "59 ST")] {
        let line =
            format!("A002,R051,02-00-00,{station},NQR456W,BMT,01/01/2024,00:00:00,REGULAR,1,2");
        source.push(0, offset, line.as_bytes());
    }
    chain
        .process(source)
        .err()
        .expect("the window plugin traps")
}

#[test]
fn a_window_trap_asks_for_a_restart_from_the_last_checkpoint_by_default() {
    for limits in [
        "limits: {}",
        "limits: { on_violation: restart }",
        "limits: { on_violation: dlq }",
    ] {
        let error = window_error(limits);
        assert_eq!(
            error.kind,
            ChainErrorKind::RestartFromCheckpoint,
            "{limits}: {error}"
        );
        assert!(
            error.stage.contains("window hostile-window@0.1.0"),
            "{error}"
        );
    }
}

#[test]
fn a_window_trap_under_fail_stops_the_pipeline_naming_the_records() {
    let error = window_error("limits: { on_violation: fail }");
    assert_eq!(error.kind, ChainErrorKind::Fatal);
    assert_eq!(
        error.to_string(),
        "steps[1] window hostile-window@0.1.0: plugin hostile-window@0.1.0 trapped: wasm trap: \
         wasm `unreachable` instruction executed (on_violation: fail; while processing 4 records \
         at partition 0 offsets 40-43 of t)"
    );
}

#[test]
fn restart_retries_a_batch_on_a_fresh_instance() {
    let engine = PluginEngine::new(None).unwrap();
    let plugin = plugin(&engine, "hostile");
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let config = r#"{"leak_kib":"6144"}"#.to_owned();
    let mut leaky = TransformStage::new(
        &engine,
        "leaky".into(),
        plugin,
        limits,
        OnViolation::Restart,
        config,
        source_schema(),
    )
    .unwrap();
    let records = batch(&[b"a".to_vec(), b"b".to_vec()]);
    for call in 0..6 {
        let out = leaky.process(&engine, &records).unwrap();
        assert_eq!(out.origins, [0, 1], "call {call}");
        assert!(out.failures.is_empty(), "call {call}: {:?}", out.failures);
    }
}

/// A spec cannot grant a plugin more than the host's ceilings: `call_timeout: 100d` (which
/// would freeze the step's thread for 100 days on a looping plugin) and memory or output
/// over the ceiling are refused at the key that asks, naming the host option.
#[test]
fn limits_over_the_host_ceilings_are_refused() {
    let state = tempfile::tempdir().unwrap();
    let mut host = Host::new(state.path(), &plugin_dirs()).unwrap();
    let check = |host: &Host, limits: &str| {
        let text = WINDOW_SPEC.replace("LIMITS", limits);
        let loaded = sluice_host::spec::load_str("w.yaml", &text, &|_| None).unwrap();
        host.check(&loaded).map_err(|e| e.to_string())
    };
    let error = check(&host, "limits: { call_timeout: 100d }").unwrap_err();
    assert!(
        error.contains("w.yaml:10:")
            && error.contains("`call_timeout`: 8640000s is over this host's ceiling of 60s")
            && error.contains("--max-call-timeout"),
        "{error}"
    );
    let error = check(&host, "limits: { memory: 8GiB }").unwrap_err();
    assert!(error.contains("--max-plugin-memory"), "{error}");
    let error = check(&host, "limits: { max_output: 2GiB }").unwrap_err();
    assert!(error.contains("--max-plugin-output"), "{error}");
    check(&host, "limits: { call_timeout: 30s, memory: 512MiB }").unwrap();
    host.ceilings.call_timeout = std::time::Duration::from_secs(10);
    assert!(check(&host, "limits: { call_timeout: 30s }").is_err());
}
