//! Event time: the largest event time seen per source partition, and the watermark
//! (the minimum of those over the partitions still receiving data, minus the delay).
//! A partition that reported it has no more data, and stayed quiet for `idle_after`, stops
//! holding the watermark back. The watermark never goes backwards.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Per-partition event-time tracking.
#[derive(Debug)]
pub struct Watermarks {
    delay: i64,
    idle_after: Duration,
    partitions: BTreeMap<i32, PartitionTime>,
    current: i64,
}

#[derive(Debug)]
struct PartitionTime {
    max: i64,
    caught_up: Option<Instant>,
}

impl Watermarks {
    /// `delay` in ms; `idle_after`: how long a caught-up partition may stay silent before it
    /// stops holding the watermark back (zero with `--once`, where caught up means done).
    pub fn new(delay: i64, idle_after: Duration) -> Self {
        Self {
            delay,
            idle_after,
            partitions: BTreeMap::new(),
            current: i64::MIN,
        }
    }

    /// The current watermark (`i64::MIN` before any event).
    pub fn current(&self) -> i64 {
        self.current
    }

    /// Declares a partition before it delivers anything, so that it holds the watermark back
    /// until it does, or (when `holding` is false) until it stays silent for `idle_after`.
    pub fn register(&mut self, partition: i32, holding: bool, now: Instant) {
        let caught_up = if holding { None } else { Some(now) };
        self.partitions.entry(partition).or_insert(PartitionTime {
            max: i64::MIN,
            caught_up,
        });
    }

    /// Records an event at `ts` in `partition`.
    pub fn observe(&mut self, partition: i32, ts: i64) {
        let entry = self.partitions.entry(partition).or_insert(PartitionTime {
            max: ts,
            caught_up: None,
        });
        entry.max = entry.max.max(ts);
        entry.caught_up = None;
    }

    /// `partition` has no more data for now.
    pub fn caught_up(&mut self, partition: i32, now: Instant) {
        if let Some(entry) = self.partitions.get_mut(&partition) {
            entry.caught_up.get_or_insert(now);
        }
    }

    /// Recomputes the watermark; returns it.
    pub fn update(&mut self, now: Instant) -> i64 {
        let active = self
            .partitions
            .values()
            .filter(|p| {
                p.caught_up
                    .is_none_or(|t| now.duration_since(t) < self.idle_after)
            })
            .map(|p| p.max)
            .min();
        let candidate = active.or_else(|| self.partitions.values().map(|p| p.max).max());
        if let Some(max) = candidate.filter(|&m| m != i64::MIN) {
            self.current = self.current.max(max.saturating_sub(self.delay));
        }
        self.current
    }

    /// Ends event time: every window may close.
    pub fn finish(&mut self) -> i64 {
        self.current = i64::MAX;
        self.current
    }

    /// What a checkpoint keeps: the watermark and each partition's largest event time.
    pub fn state(&self) -> WatermarkState {
        WatermarkState {
            current: self.current,
            partitions: self.partitions.iter().map(|(&p, t)| (p, t.max)).collect(),
        }
    }

    /// Continues from a checkpoint: its watermark and largest event times (partitions keep
    /// their idleness as registered; the watermark never goes backwards).
    pub fn restore(&mut self, state: &WatermarkState) {
        self.current = self.current.max(state.current);
        for &(p, max) in &state.partitions {
            let entry = self.partitions.entry(p).or_insert(PartitionTime {
                max,
                caught_up: None,
            });
            entry.max = entry.max.max(max);
        }
    }
}

/// Event time as a checkpoint keeps it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WatermarkState {
    /// The watermark (ms; `i64::MIN` before any event, `i64::MAX` after the end).
    pub current: i64,
    /// Largest event time seen per partition.
    pub partitions: Vec<(i32, i64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_over_active_partitions_minus_delay() {
        let now = Instant::now();
        let mut w = Watermarks::new(10, Duration::from_secs(5));
        assert_eq!(w.update(now), i64::MIN);
        w.observe(0, 100);
        w.observe(1, 50);
        assert_eq!(w.update(now), 40);
        w.observe(1, 200);
        assert_eq!(w.update(now), 90);
    }

    #[test]
    fn never_goes_backwards_and_idle_partitions_release_it() {
        let now = Instant::now();
        let mut w = Watermarks::new(0, Duration::ZERO);
        w.observe(0, 100);
        w.observe(1, 10);
        assert_eq!(w.update(now), 10);
        w.caught_up(1, now);
        assert_eq!(w.update(now), 100);
        w.observe(1, 20);
        assert_eq!(w.update(now), 100);
        assert_eq!(w.finish(), i64::MAX);
    }

    #[test]
    fn registered_partitions_hold_until_they_deliver_or_go_idle() {
        let now = Instant::now();
        let mut w = Watermarks::new(0, Duration::from_secs(5));
        w.register(0, true, now);
        w.register(1, false, now);
        w.observe(1, 100);
        assert_eq!(w.update(now), i64::MIN);
        w.caught_up(0, now);
        assert_eq!(w.update(now + Duration::from_secs(6)), 100);
    }

    #[test]
    fn state_round_trips_through_a_checkpoint() {
        let now = Instant::now();
        let mut w = Watermarks::new(10, Duration::from_secs(5));
        w.observe(0, 100);
        w.observe(1, 50);
        w.update(now);
        let mut back = Watermarks::new(10, Duration::from_secs(5));
        back.register(0, true, now);
        back.restore(&w.state());
        assert_eq!(back.current(), 40);
        assert_eq!(back.state(), w.state());
        back.observe(1, 300);
        assert_eq!(back.update(now), 90);
    }

    #[test]
    fn a_caught_up_partition_holds_until_idle_after() {
        let now = Instant::now();
        let mut w = Watermarks::new(0, Duration::from_secs(5));
        w.observe(0, 100);
        w.observe(1, 10);
        w.caught_up(1, now);
        assert_eq!(w.update(now + Duration::from_secs(1)), 10);
        assert_eq!(w.update(now + Duration::from_secs(6)), 100);
    }
}
