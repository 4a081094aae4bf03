//! Pacing and progress for `sluice produce`: a token bucket for `--rate` and a once-a-second
//! progress line on stderr (updated in place on a terminal, one line per second otherwise).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A token bucket allowing `rate` records per second with a burst of a tenth of a second.
pub(crate) struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket for `rate` records per second; `None` or 0 means no cap.
    pub(crate) fn new(rate: Option<u64>) -> Option<Self> {
        let rate = rate.filter(|&r| r > 0)? as f64;
        let capacity = (rate / 10.0).max(1.0);
        Some(TokenBucket {
            rate,
            capacity,
            tokens: capacity,
            last: Instant::now(),
        })
    }

    /// Takes one token, or returns how long to wait before asking again.
    pub(crate) fn take(&mut self, now: Instant) -> Option<Duration> {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return None;
        }
        Some(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
    }
}

/// Prints a progress line to stderr at most once per second.
pub(crate) struct Progress {
    started: Instant,
    next: Instant,
    terminal: bool,
    printed: bool,
}

impl Progress {
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        let terminal = std::io::stderr().is_terminal();
        Progress {
            started: now,
            next: now + Duration::from_secs(1),
            terminal,
            printed: false,
        }
    }

    /// Reports `sent` and `delivered` out of `total` records if a second has passed.
    pub(crate) fn tick(&mut self, sent: u64, delivered: u64, total: u64) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + Duration::from_secs(1);
        let secs = now.duration_since(self.started).as_secs_f64();
        let line = format!(
            "Produced {sent} of {total} records, {delivered} confirmed ({:.0} records/s).",
            delivered as f64 / secs
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        self.printed = true;
    }

    /// Ends an in-place progress line so that later output starts on a fresh line.
    pub(crate) fn finish(&self) {
        if self.terminal && self.printed {
            let _ = writeln!(std::io::stderr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_caps_the_rate() {
        assert!(TokenBucket::new(None).is_none());
        assert!(TokenBucket::new(Some(0)).is_none());
        let mut bucket = TokenBucket::new(Some(100)).unwrap();
        let start = bucket.last;
        let burst = (0..20).take_while(|_| bucket.take(start).is_none()).count();
        assert_eq!(burst, 10, "burst is a tenth of a second");
        let wait = bucket.take(start).unwrap();
        assert!(wait <= Duration::from_millis(10), "{wait:?}");
        assert!(bucket.take(start + Duration::from_millis(10)).is_none());
    }
}
