use super::*;

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn minimum_over_partitions_minus_delay() {
    let now = Instant::now();
    let mut w = Watermarks::new(10, 5 * SECOND);
    assert_eq!(w.update(now), i64::MIN);
    w.observe(0, 100);
    w.observe(1, 50);
    assert_eq!(w.update(now), 40);
    w.observe(1, 200);
    assert_eq!(w.update(now), 90);
}

#[test]
fn no_assignment_means_no_progress() {
    let now = Instant::now();
    let mut w = Watermarks::new(0, SECOND);
    w.observe(0, 100);
    assert_eq!(w.update(now), 100);
    w.revoke(0);
    assert_eq!(
        w.update(now + 60 * SECOND),
        100,
        "nothing advances, nothing goes back"
    );
    assert!(w.held().is_empty());
}

#[test]
fn an_assigned_silent_partition_holds_until_it_delivers() {
    let now = Instant::now();
    let mut w = Watermarks::new(0, 5 * SECOND);
    w.assign(0);
    w.assign(1);
    w.observe(1, 100);
    // Partition 0 has not been fetched yet: it holds, however long that takes.
    for later in [0, 10, 60, 3600] {
        assert_eq!(w.update(now + later * SECOND), i64::MIN);
    }
    w.observe(0, 40);
    assert_eq!(w.update(now), 40);
}

#[test]
fn a_silent_partition_proves_idle_only_at_its_end_after_idle_after() {
    let now = Instant::now();
    let mut w = Watermarks::new(0, 5 * SECOND);
    w.assign(0);
    w.observe(1, 100);
    w.at_end(0, now);
    assert_eq!(w.update(now + SECOND), i64::MIN, "at its end, not idle yet");
    assert_eq!(
        w.update(now + 6 * SECOND),
        100,
        "idle: partition 1 alone decides"
    );
}

#[test]
fn a_record_resets_idleness() {
    let now = Instant::now();
    let mut w = Watermarks::new(0, 5 * SECOND);
    w.observe(0, 100);
    w.observe(1, 10);
    w.at_end(1, now);
    assert_eq!(w.update(now + SECOND), 10);
    w.observe(1, 20);
    assert_eq!(
        w.update(now + 6 * SECOND),
        20,
        "it delivered again: it holds"
    );
    w.at_end(1, now + 6 * SECOND);
    assert_eq!(w.update(now + 12 * SECOND), 100);
    w.observe(1, 30);
    assert_eq!(w.update(now + 12 * SECOND), 100, "never backwards");
    assert_eq!(w.finish(), i64::MAX);
}

#[test]
fn when_every_partition_is_idle_the_largest_event_time_rules() {
    let now = Instant::now();
    let mut w = Watermarks::new(0, Duration::ZERO);
    w.observe(0, 100);
    w.observe(1, 10);
    w.at_end(0, now);
    w.at_end(1, now);
    assert_eq!(w.update(now), 100);
}

#[test]
fn a_restore_holds_every_partition_at_its_checkpointed_time() {
    let now = Instant::now();
    let mut w = Watermarks::new(10, 5 * SECOND);
    w.observe(0, 100);
    w.observe(1, 50);
    w.observe(2, 70);
    w.update(now);
    let state = w.state();

    let mut back = Watermarks::new(10, 5 * SECOND);
    back.restore(&state);
    assert_eq!(back.current(), 40);
    assert_eq!(back.state(), state);
    // Nothing assigned or fetched yet: time passing changes nothing.
    assert_eq!(back.update(now + 3600 * SECOND), 40);
    // The first partition to deliver cannot drag the watermark forward alone.
    back.observe(0, 10_000);
    assert_eq!(back.update(now + 3600 * SECOND), 40);
    back.observe(1, 9_000);
    assert_eq!(back.update(now), 60, "partition 2 still holds at 70");
    back.observe(2, 8_000);
    assert_eq!(back.update(now), 7_990);
}

#[test]
fn a_restored_partition_at_its_end_releases_after_idle_after() {
    let now = Instant::now();
    let mut back = Watermarks::new(0, 5 * SECOND);
    back.restore(&WatermarkState {
        current: 40,
        partitions: vec![(0, 40), (1, 90)],
    });
    back.assign(0);
    back.assign(1);
    back.observe(1, 200);
    back.at_end(0, now);
    assert_eq!(back.update(now + SECOND), 40);
    assert_eq!(back.update(now + 5 * SECOND), 200);
}
