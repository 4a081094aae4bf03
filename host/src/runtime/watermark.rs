//! Event time: the largest event time seen per source partition, and the watermark (the
//! minimum of those over the partitions that may still deliver, minus the delay). The
//! watermark never goes backwards.
//!
//! Idleness comes only from evidence. A partition this task holds (assigned by the source,
//! known up front, or restored from a checkpoint) holds the watermark at its largest known
//! event time — the checkpointed one after a restore, none at all before its first record —
//! until it delivers or proves idle. It proves idle only when the consumer has reached its
//! end (end-of-partition at the high watermark) and nothing has arrived for `idle_after`
//! since; a record resets that. A partition that is assigned but not fetched yet, or known
//! but not assigned yet, has proved nothing and holds. A partition with no known event time
//! that holds keeps the watermark where it is. When every partition held has proved idle,
//! the watermark follows the largest event time among them. With no partition held at all
//! (no assignment yet), nothing advances. A revoked partition stops counting.

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
    /// Largest event time seen (or restored); `i64::MIN` before any.
    max: i64,
    /// Since when the consumer has been at the partition's end with nothing new.
    at_end_since: Option<Instant>,
}

impl PartitionTime {
    fn holding(max: i64) -> Self {
        Self {
            max,
            at_end_since: None,
        }
    }

    fn idle(&self, now: Instant, idle_after: Duration) -> bool {
        self.at_end_since
            .is_some_and(|t| now.saturating_duration_since(t) >= idle_after)
    }
}

impl Watermarks {
    /// `delay` in ms; `idle_after`: how long a partition at its end must stay silent before
    /// it stops holding the watermark back (zero with `--once`, where the end means done).
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

    /// The partitions held, in order.
    pub fn held(&self) -> Vec<i32> {
        self.partitions.keys().copied().collect()
    }

    /// Takes `partition` on (assigned, or known up front): it holds the watermark until it
    /// delivers or proves idle. A partition already held keeps what it knows.
    pub fn assign(&mut self, partition: i32) {
        self.partitions
            .entry(partition)
            .or_insert(PartitionTime::holding(i64::MIN));
    }

    /// Lets `partition` go (revoked): it no longer holds the watermark back.
    pub fn revoke(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// Records an event at `ts` in `partition` (taking it on if it was not held).
    pub fn observe(&mut self, partition: i32, ts: i64) {
        let entry = self
            .partitions
            .entry(partition)
            .or_insert(PartitionTime::holding(ts));
        entry.max = entry.max.max(ts);
        entry.at_end_since = None;
    }

    /// The consumer reached the end of `partition` (end-of-partition at the high watermark).
    pub fn at_end(&mut self, partition: i32, now: Instant) {
        if let Some(entry) = self.partitions.get_mut(&partition) {
            entry.at_end_since.get_or_insert(now);
        }
    }

    /// Recomputes the watermark; returns it.
    pub fn update(&mut self, now: Instant) -> i64 {
        if self.partitions.is_empty() {
            return self.current; // no assignment: nothing advances
        }
        let holding = self
            .partitions
            .values()
            .filter(|p| !p.idle(now, self.idle_after))
            .map(|p| p.max)
            .min();
        let candidate = match holding {
            Some(min) => min,
            // Every partition proved idle: none holds anything back.
            None => self
                .partitions
                .values()
                .map(|p| p.max)
                .max()
                .unwrap_or(i64::MIN),
        };
        if candidate != i64::MIN {
            self.current = self.current.max(candidate.saturating_sub(self.delay));
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

    /// Takes over the live event time of `old` (a chain switched in place): the partitions
    /// held, what each proved, and the watermark. Only the delay and `idle_after` stay this
    /// one's own.
    pub fn take_over(&mut self, old: &Watermarks) {
        self.current = self.current.max(old.current);
        for (&p, time) in &old.partitions {
            self.partitions.insert(
                p,
                PartitionTime {
                    max: time.max,
                    at_end_since: time.at_end_since,
                },
            );
        }
    }

    /// Continues from a checkpoint: its watermark, and each of its partitions held at its
    /// checkpointed event time until it delivers or proves idle (the watermark never goes
    /// backwards).
    pub fn restore(&mut self, state: &WatermarkState) {
        self.current = self.current.max(state.current);
        for &(p, max) in &state.partitions {
            let entry = self
                .partitions
                .entry(p)
                .or_insert(PartitionTime::holding(max));
            entry.max = entry.max.max(max);
            entry.at_end_since = None;
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
mod tests;
