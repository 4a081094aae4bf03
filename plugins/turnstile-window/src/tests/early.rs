//! Early results (`emit_early`): `process` returns the running sums of what each batch
//! touched; `advance` stays the only source of final rows.

use super::*;

fn init_with(counters: &str, emit_early: bool) -> TurnstileWindow {
    let config = format!(r#"{{"counters":"{counters}","emit_early":{emit_early}}}"#);
    TurnstileWindow::init(&config, &input_schema(), &spec())
        .unwrap()
        .0
}

/// Processes one batch and returns its early rows.
fn early(w: &mut TurnstileWindow, readings: &[(&str, &str, i64, i64, i64)]) -> Vec<String> {
    let mut out = output();
    w.process_rows(&batch(readings), 0, &mut out).unwrap();
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert!(out.origins.is_empty());
    rows_of(&out)
}

#[test]
fn early_rows_are_the_running_sums_of_touched_windows() {
    let mut w = init_with("incremental", true);
    let first = early(&mut w, &[("t1", "S", 1, 5, 1), ("t2", "S", 2, 7, 2)]);
    assert_eq!(first, ["S,1970-01-01 00:00:00,1970-01-01 04:00:00,12,3"]);
    let second = early(
        &mut w,
        &[
            ("t1", "T", 5, 2, 2),
            ("t1", "S", 3, 1, 1),
            ("t1", "A", 6, 1, 0),
        ],
    );
    assert_eq!(
        second,
        [
            "S,1970-01-01 00:00:00,1970-01-01 04:00:00,13,4",
            "A,1970-01-01 04:00:00,1970-01-01 08:00:00,1,0",
            "T,1970-01-01 04:00:00,1970-01-01 08:00:00,2,2",
        ]
    );
    // Final rows come from `advance` only, with the same values.
    let mut out = output();
    w.advance(4 * H, &mut out).unwrap();
    assert_eq!(rows_of(&out), [first[0].replace(",12,3", ",13,4")]);
    assert!(early(&mut w, &[]).is_empty());
}

#[test]
fn cumulative_early_rows_follow_the_pairs() {
    let mut w = init_with("cumulative", true);
    assert_eq!(
        early(&mut w, &STREAM[..3]),
        ["59 ST,1970-01-01 00:00:00,1970-01-01 04:00:00,10,2"]
    );
    assert_eq!(
        early(&mut w, &STREAM[3..]),
        [
            "1 AV,1970-01-01 04:00:00,1970-01-01 08:00:00,4,1",
            "59 ST,1970-01-01 04:00:00,1970-01-01 08:00:00,1,8",
            "59 ST,1970-01-01 08:00:00,1970-01-01 12:00:00,9,1",
            "1 AV,1970-01-01 12:00:00,1970-01-01 16:00:00,10,2",
        ]
    );
}

/// After every batch, each early row equals the same (group, window) in a flush of a fresh
/// instance fed the same prefix, whatever the batch size.
#[test]
fn early_rows_match_a_flush_of_the_prefix() {
    for counters in ["cumulative", "incremental"] {
        for size in 1..=3 {
            let mut w = init_with(counters, true);
            for end in (size..=STREAM.len()).step_by(size) {
                let got = early(&mut w, &STREAM[end - size..end]);
                let mut reference = init_with(counters, false);
                let mut out = output();
                reference
                    .process_rows(&batch(&STREAM[..end]), 0, &mut out)
                    .unwrap();
                assert!(out.rows.is_empty(), "no early rows when emit_early is off");
                reference.advance(i64::MAX, &mut out).unwrap();
                let flushed = rows_of(&out);
                for row in &got {
                    assert!(
                        flushed.contains(row),
                        "{counters}/{size}: {row} not in {flushed:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn emit_early_off_emits_nothing_from_process() {
    for config in [
        r#"{"counters":"incremental"}"#,
        r#"{"counters":"incremental","emit_early":false}"#,
    ] {
        let mut w = TurnstileWindow::init(config, &input_schema(), &spec())
            .unwrap()
            .0;
        assert!(early(&mut w, STREAM).is_empty(), "{config}");
    }
}

#[test]
fn restore_keeps_early_results_on() {
    let mut first = init_with("cumulative", true);
    early(&mut first, &STREAM[..3]);
    let mut second = init_with("cumulative", true);
    second.restore(&first.snapshot()).unwrap();
    assert_eq!(first.snapshot(), second.snapshot());
    assert_eq!(early(&mut second, &STREAM[3..4]).len(), 1);
    // A snapshot taken without early results restores into an instance with them.
    let mut plain = init_with("cumulative", false);
    early(&mut plain, &STREAM[..3]);
    second.restore(&plain.snapshot()).unwrap();
    assert_eq!(
        early(&mut second, &STREAM[3..4]),
        ["1 AV,1970-01-01 04:00:00,1970-01-01 08:00:00,4,1"]
    );
}
