//! Unit tests of both counter semantics and of window assignment.

use super::*;

const H: i64 = 3_600_000;
const TUMBLING_4H: Windows = Windows {
    size: 4 * H,
    slide: 4 * H,
};

fn key(s: &str) -> Vec<u8> {
    let mut b = sluice_plugin_sdk::BatchBuilder::new();
    b.put_str(s);
    b.data
}

type Row = (String, i64, i64, Vec<i64>);

fn drain(a: &mut Aggregator, watermark: i64) -> Vec<Row> {
    let mut rows = Vec::new();
    a.advance(watermark, |g, s, e, v| {
        let name = sluice_plugin_sdk::RowReader::new(g)
            .str()
            .unwrap()
            .to_string();
        rows.push((name, s, e, v.to_vec()));
    });
    rows
}

fn row(g: &str, start_h: i64, v: &[i64]) -> Row {
    (g.to_string(), start_h * H, (start_h + 4) * H, v.to_vec())
}

/// Adds a reading of turnstile `t` at station `g`.
fn add(a: &mut Aggregator, g: &str, t: &str, hour: i64, v: [i64; 2]) -> Result<(), String> {
    a.add(&key(g), t.as_bytes(), hour * H, &v)
}

#[test]
fn incremental_sums_each_reading_into_its_window() {
    let mut a = Aggregator::new(Counters::Incremental, TUMBLING_4H, 2);
    add(&mut a, "B", "t1", 1, [1, 10]).unwrap();
    add(&mut a, "A", "t2", 3, [2, 20]).unwrap();
    add(&mut a, "B", "t1", 3, [3, 30]).unwrap();
    add(&mut a, "B", "t1", 4, [4, 40]).unwrap();
    assert_eq!(drain(&mut a, 4 * H - 1), vec![]);
    assert_eq!(
        drain(&mut a, 4 * H),
        vec![row("A", 0, &[2, 20]), row("B", 0, &[4, 40])]
    );
    assert_eq!(drain(&mut a, i64::MAX), vec![row("B", 4, &[4, 40])]);
    assert_eq!(a.open_windows(), 0);
}

#[test]
fn cumulative_counts_differences_between_readings() {
    let mut a = Aggregator::new(Counters::Cumulative, TUMBLING_4H, 2);
    add(&mut a, "S", "t1", 1, [100, 50]).unwrap();
    add(&mut a, "S", "t1", 3, [110, 55]).unwrap();
    add(&mut a, "S", "t2", 2, [7, 7]).unwrap();
    add(&mut a, "S", "t2", 5, [9, 17]).unwrap();
    add(&mut a, "S", "t1", 6, [111, 56]).unwrap();
    assert_eq!(
        drain(&mut a, i64::MAX),
        vec![row("S", 0, &[10, 5]), row("S", 4, &[3, 11])]
    );
    assert_eq!(a.turnstiles(), 2);
}

#[test]
fn cumulative_drops_duplicates_and_rejects_late_readings() {
    let mut a = Aggregator::new(Counters::Cumulative, TUMBLING_4H, 2);
    add(&mut a, "S", "t1", 1, [100, 100]).unwrap();
    add(&mut a, "S", "t1", 1, [500, 500]).unwrap();
    let late = add(&mut a, "S", "t1", 0, [90, 90]).unwrap_err();
    assert!(
        late.contains("late reading") && late.contains("1970-01-01 00:00:00"),
        "{late}"
    );
    add(&mut a, "S", "t1", 2, [101, 102]).unwrap();
    assert_eq!(drain(&mut a, i64::MAX), vec![row("S", 0, &[1, 2])]);
}

#[test]
fn cumulative_ignores_negative_and_huge_deltas_but_keeps_the_row() {
    let mut a = Aggregator::new(Counters::Cumulative, TUMBLING_4H, 2);
    add(&mut a, "S", "t1", 1, [100, 100]).unwrap();
    add(&mut a, "S", "t1", 2, [50, 10_100]).unwrap();
    add(&mut a, "S", "t1", 5, [50 + 10_001, 10_100 + 3]).unwrap();
    assert_eq!(
        drain(&mut a, i64::MAX),
        vec![row("S", 0, &[0, 10_000]), row("S", 4, &[0, 3])]
    );
}

#[test]
fn cumulative_gap_over_a_day_is_not_a_pair() {
    let mut a = Aggregator::new(Counters::Cumulative, TUMBLING_4H, 2);
    add(&mut a, "S", "t1", 0, [0, 0]).unwrap();
    add(&mut a, "S", "t1", 25, [5, 5]).unwrap();
    add(&mut a, "S", "t1", 49, [8, 9]).unwrap();
    add(&mut a, "S", "t1", 50, [9, 9]).unwrap();
    assert_eq!(drain(&mut a, i64::MAX), vec![row("S", 48, &[4, 4])]);
}

#[test]
fn boundaries_belong_to_the_window_they_start() {
    let mut a = Aggregator::new(Counters::Incremental, TUMBLING_4H, 2);
    add(&mut a, "S", "t", 0, [1, 1]).unwrap();
    a.add(&key("S"), b"t", 4 * H - 1, &[2, 2]).unwrap();
    add(&mut a, "S", "t", 4, [4, 4]).unwrap();
    a.add(&key("S"), b"t", -1, &[8, 8]).unwrap();
    let rows = drain(&mut a, i64::MAX);
    assert_eq!(
        rows,
        vec![
            row("S", -4, &[8, 8]),
            row("S", 0, &[3, 3]),
            row("S", 4, &[4, 4])
        ]
    );
}

#[test]
fn hopping_windows_count_a_reading_in_each_window() {
    let w = Windows {
        size: 4 * H,
        slide: 2 * H,
    };
    assert_eq!(w.starts(3 * H).collect::<Vec<_>>(), vec![2 * H, 0]);
    assert_eq!(w.starts(2 * H).collect::<Vec<_>>(), vec![2 * H, 0]);
    assert_eq!(w.starts(4 * H).collect::<Vec<_>>(), vec![4 * H, 2 * H]);
    let mut a = Aggregator::new(Counters::Incremental, w, 1);
    a.add(&key("S"), b"", 3 * H, &[5]).unwrap();
    let rows = drain(&mut a, i64::MAX);
    assert_eq!(
        rows,
        vec![
            ("S".into(), 0, 4 * H, vec![5]),
            ("S".into(), 2 * H, 6 * H, vec![5])
        ]
    );
}

#[test]
fn window_assignment_survives_extreme_times() {
    let w = Windows {
        size: 4 * H,
        slide: H,
    };
    assert_eq!(w.starts(i64::MIN).count(), 0);
    assert_eq!(Windows { size: 4, slide: 2 }.starts(i64::MIN).count(), 1);
    assert_eq!(w.starts(i64::MAX).count(), 4);
    assert_eq!(w.end(i64::MAX - 1), i64::MAX);
}

#[test]
fn readings_for_emitted_windows_are_late() {
    let mut a = Aggregator::new(Counters::Incremental, TUMBLING_4H, 2);
    add(&mut a, "S", "t", 1, [1, 1]).unwrap();
    assert_eq!(drain(&mut a, 4 * H).len(), 1);
    let e = add(&mut a, "S", "t", 2, [1, 1]).unwrap_err();
    assert!(e.contains("already emitted"), "{e}");
    add(&mut a, "S", "t", 4, [1, 1]).unwrap();
    assert_eq!(drain(&mut a, i64::MAX), vec![row("S", 4, &[1, 1])]);
}

#[test]
fn group_keys_must_be_text() {
    let mut a = Aggregator::new(Counters::Incremental, TUMBLING_4H, 1);
    let e = a.add(&[2, 0, 0, 0, 0xc3, 0x28], b"", 0, &[1]).unwrap_err();
    assert!(e.contains("not valid UTF-8"), "{e}");
    assert_eq!(a.open_windows(), 0);
}

#[test]
fn a_turnstile_moving_station_counts_where_the_reading_is() {
    let mut a = Aggregator::new(Counters::Cumulative, TUMBLING_4H, 2);
    add(&mut a, "A", "t1", 0, [0, 0]).unwrap();
    add(&mut a, "A", "t1", 1, [1, 1]).unwrap();
    add(&mut a, "B", "t1", 2, [3, 3]).unwrap();
    add(&mut a, "A", "t1", 3, [6, 6]).unwrap();
    assert_eq!(
        drain(&mut a, i64::MAX),
        vec![row("A", 0, &[4, 4]), row("B", 0, &[2, 2])]
    );
}
