//! The dead-letter threshold of `errors: { max_dead_letters: { count, per_records } }`: a
//! pure detector fed once per batch with the records read and the dead letters produced,
//! which says when more than `count` dead letters fall within the last `per_records` records
//! read. The pipeline then pauses ([`Paused`]) instead of flooding its dead-letter
//! destination.
//!
//! The dead letters of one batch are taken as spread evenly over the batch's records, so a
//! batch larger than the window counts only its share of dead letters that lies inside it.

use std::collections::VecDeque;

/// A pipeline stopped by its dead-letter threshold; the reason says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Paused {
    /// `paused: 1001 dead letters in the last 10000 records (threshold 1000); ...`
    pub reason: String,
}

/// One batch inside the window: where its records start, how many, how many were dead.
#[derive(Clone, Copy, Debug)]
struct Segment {
    start: u64,
    records: u64,
    dead: u64,
}

/// Counts dead letters over a sliding window of the last `per_records` records.
#[derive(Debug)]
pub struct DeadLetterThreshold {
    count: u64,
    per_records: u64,
    /// Records seen so far.
    seen: u64,
    /// Batches with dead letters that may still overlap the window, oldest first.
    segments: VecDeque<Segment>,
}

impl DeadLetterThreshold {
    /// A detector that trips at more than `count` dead letters in `per_records` records.
    pub fn new(count: u64, per_records: u64) -> Self {
        Self {
            count,
            per_records: per_records.max(1),
            seen: 0,
            segments: VecDeque::new(),
        }
    }

    /// Adds one batch of `records` records of which `dead` were dead-lettered; returns the
    /// pause when the window now holds more than `count` dead letters. `first_reason` is
    /// the reason of the batch's first dead letter, for the message.
    pub fn observe(&mut self, records: u64, dead: u64, first_reason: &str) -> Option<Paused> {
        // A batch may dead-letter more than it read (a window step's late records come from
        // earlier batches): count it as at least that many records.
        let records = records.max(dead);
        if dead > 0 {
            self.segments.push_back(Segment {
                start: self.seen,
                records,
                dead,
            });
        }
        self.seen += records;
        let from = self.seen.saturating_sub(self.per_records);
        while self
            .segments
            .front()
            .is_some_and(|s| s.start + s.records <= from)
        {
            self.segments.pop_front();
        }
        let in_window = self.in_window(from);
        (dead > 0 && in_window > self.count).then(|| Paused {
            reason: format!(
                "paused: {in_window} dead letters in the last {} records (threshold {}); first \
                 reason: {first_reason}; fix the input or the plugin, then resume",
                self.per_records.min(self.seen),
                self.count
            ),
        })
    }

    /// Dead letters of the records from `from` on (whole batches, plus the evenly spread
    /// share of a batch that starts before `from`, rounded up).
    fn in_window(&self, from: u64) -> u64 {
        self.segments
            .iter()
            .map(|s| {
                let outside = from.saturating_sub(s.start).min(s.records);
                let inside = s.records - outside;
                (s.dead * inside).div_ceil(s.records)
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_only_above_the_count() {
        let mut t = DeadLetterThreshold::new(3, 100);
        assert_eq!(t.observe(10, 3, "bad"), None);
        let paused = t.observe(10, 1, "worse").expect("4 > 3");
        assert_eq!(
            paused.reason,
            "paused: 4 dead letters in the last 20 records (threshold 3); first reason: worse; \
             fix the input or the plugin, then resume"
        );
    }

    #[test]
    fn old_dead_letters_slide_out_of_the_window() {
        let mut t = DeadLetterThreshold::new(2, 100);
        assert_eq!(t.observe(50, 2, "a"), None);
        assert_eq!(t.observe(100, 0, ""), None);
        // The first two are more than 100 records back now.
        assert_eq!(t.observe(10, 2, "b"), None);
        assert!(t.observe(10, 1, "c").is_some());
    }

    #[test]
    fn a_clean_batch_never_pauses() {
        let mut t = DeadLetterThreshold::new(0, 10);
        assert_eq!(t.observe(1000, 0, ""), None);
        assert!(t.observe(1, 1, "x").is_some());
    }

    #[test]
    fn a_batch_larger_than_the_window_counts_its_share() {
        let mut t = DeadLetterThreshold::new(10, 100);
        // 50 dead letters spread over 1000 records: 5 in the last 100.
        assert_eq!(t.observe(1000, 50, "x"), None);
        let paused = t.observe(1000, 200, "y").expect("20 > 10");
        assert!(
            paused
                .reason
                .starts_with("paused: 20 dead letters in the last 100 records")
        );
    }

    #[test]
    fn a_batch_straddling_the_window_start_counts_its_share() {
        let mut t = DeadLetterThreshold::new(5, 100);
        assert_eq!(t.observe(20, 4, "a"), None);
        // 90 more records: half of the first batch is still inside (2 of 4).
        assert_eq!(t.observe(90, 0, ""), None);
        assert_eq!(t.observe(1, 3, "b"), None, "2 + 3 is not above 5");
        assert!(t.observe(1, 1, "c").is_some(), "2 + 3 + 1 > 5");
    }
}
