//! The webhook source's shared state: the batch being filled (records get consecutive offsets
//! in partition 0 and leave in order, by count or age), the acknowledgement watch (the
//! runtime's commits: everything before `committed` is durably written), and the rate
//! limiter (a token bucket holding one second of records).

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, watch};

use super::HttpSourceSettings;
use crate::sources::SourceBatch;

/// What requests waiting for their acknowledgement watch.
#[derive(Debug, Clone, Copy)]
pub struct Acks {
    /// Every record before this offset is durably written.
    pub committed: i64,
    /// Set when no acknowledgement will come any more, and why.
    pub ended: Option<HandOffError>,
}

/// Why records could not be handed on or acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandOffError {
    /// The source is stopping.
    #[error("the source is stopping")]
    Stopping,
    /// The runtime no longer takes batches.
    #[error("the pipeline no longer takes records")]
    Closed,
}

/// Why the rate limiter refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateError {
    /// Try again after this many seconds.
    RetryAfter(u64),
    /// The request alone holds more records than one second allows.
    TooMany { per_second: u64 },
}

/// The batch being filled.
struct Pending {
    batch: SourceBatch,
    next_offset: i64,
    /// When the first record of `batch` arrived.
    oldest: Option<Instant>,
    last_arrival: Instant,
    idle_reported: bool,
    /// `None` once stopped.
    tx: Option<mpsc::Sender<SourceBatch>>,
}

impl Pending {
    /// Sends `batch` (even when empty); forgets the channel when the runtime closed it.
    async fn send(&mut self, batch: SourceBatch) -> Result<(), HandOffError> {
        let tx = self.tx.as_ref().ok_or(HandOffError::Stopping)?;
        if tx.send(batch).await.is_err() {
            self.tx = None;
            return Err(HandOffError::Closed);
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), HandOffError> {
        self.oldest = None;
        let batch = std::mem::take(&mut self.batch);
        self.send(batch).await
    }
}

/// Shared by the request handlers, the batch timer and the commit forwarder.
pub struct Ingest {
    pending: tokio::sync::Mutex<Pending>,
    acks: watch::Sender<Acks>,
    limiter: Option<Mutex<TokenBucket>>,
    /// Wakes the batch timer when a record lands in an empty batch.
    wake: Notify,
    max_records: usize,
    max_wait: Duration,
}

impl Ingest {
    /// Offsets start at `first_offset`; batch size, age and rate limit from `settings`.
    pub fn new(
        tx: mpsc::Sender<SourceBatch>,
        first_offset: i64,
        settings: &HttpSourceSettings,
    ) -> Self {
        let now = Instant::now();
        Self {
            pending: tokio::sync::Mutex::new(Pending {
                batch: SourceBatch::default(),
                next_offset: first_offset,
                oldest: None,
                last_arrival: now,
                idle_reported: false,
                tx: Some(tx),
            }),
            acks: watch::channel(Acks {
                committed: first_offset,
                ended: None,
            })
            .0,
            limiter: settings
                .max_records_per_s
                .map(|rate| Mutex::new(TokenBucket::new(rate, now))),
            wake: Notify::new(),
            max_records: settings.max_records.max(1),
            max_wait: settings.max_wait,
        }
    }

    /// Takes `n` records from the rate limit.
    pub fn admit(&self, n: usize) -> Result<(), RateError> {
        match &self.limiter {
            Some(bucket) => bucket
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(n as f64, Instant::now()),
            None => Ok(()),
        }
    }

    /// Appends `records`, sending every batch that fills up; returns the offsets of the first
    /// and the last record.
    pub async fn append(&self, records: &[Cow<'_, str>]) -> Result<(i64, i64), HandOffError> {
        let mut pending = self.pending.lock().await;
        if pending.tx.is_none() {
            return Err(self.acks.borrow().ended.unwrap_or(HandOffError::Stopping));
        }
        let first = pending.next_offset;
        for record in records {
            if pending.batch.is_empty() {
                pending.oldest = Some(Instant::now());
                self.wake.notify_one();
            }
            let offset = pending.next_offset;
            pending.batch.push(0, offset, record.as_bytes());
            pending.next_offset += 1;
            if pending.batch.len() >= self.max_records {
                pending.flush().await.inspect_err(|&e| self.end(e))?;
            }
        }
        pending.last_arrival = Instant::now();
        pending.idle_reported = false;
        Ok((first, pending.next_offset - 1))
    }

    /// Waits until every record up to `last` is durably written.
    pub async fn acknowledged(&self, last: i64) -> Result<(), HandOffError> {
        let mut acks = self.acks.subscribe();
        let seen = acks
            .wait_for(|a| a.committed > last || a.ended.is_some())
            .await
            .map_err(|_| HandOffError::Stopping)?;
        match seen.ended {
            _ if seen.committed > last => Ok(()),
            Some(error) => Err(error),
            None => Err(HandOffError::Stopping),
        }
    }

    /// No acknowledgement will come any more: wakes every waiting request.
    fn end(&self, why: HandOffError) {
        self.acks.send_modify(|a| {
            a.ended.get_or_insert(why);
        });
    }

    /// Takes a commit from the runtime: the next offset of each partition.
    pub fn commit(&self, offsets: &[(i32, i64)]) {
        for &(partition, next) in offsets {
            if partition == 0 {
                self.acks.send_if_modified(|a| {
                    let newer = next > a.committed;
                    a.committed = a.committed.max(next);
                    newer
                });
            }
        }
    }

    /// Sends the batch once its first record is `max_wait` old, and an empty batch marking
    /// partition 0 idle once nothing arrived for `max_wait`. Returns when to call it again,
    /// or `None` once stopped.
    pub async fn tick(&self) -> Option<Instant> {
        let mut pending = self.pending.lock().await;
        pending.tx.as_ref()?;
        let now = Instant::now();
        if pending.oldest.is_some_and(|t| now >= t + self.max_wait) {
            pending.flush().await.inspect_err(|&e| self.end(e)).ok()?;
        }
        let quiet_until = pending.last_arrival + self.max_wait;
        if pending.batch.is_empty() && !pending.idle_reported && now >= quiet_until {
            let idle = SourceBatch {
                at_end: vec![0],
                ..SourceBatch::default()
            };
            pending
                .send(idle)
                .await
                .inspect_err(|&e| self.end(e))
                .ok()?;
            pending.idle_reported = true;
        }
        Some(match pending.oldest {
            Some(t) => t + self.max_wait,
            None if !pending.idle_reported => quiet_until.max(now + Duration::from_millis(1)),
            None => now + self.max_wait.max(Duration::from_secs(1)),
        })
    }

    /// Waits until a record lands in an empty batch.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Stops: wakes every waiting request, hands the pending records on if the runtime has
    /// room for them (they may still be processed), and closes the batch channel.
    pub async fn stop(&self) {
        self.end(HandOffError::Stopping);
        let mut pending = self.pending.lock().await;
        if let Some(tx) = pending.tx.take()
            && !pending.batch.is_empty()
        {
            let _ = tx.try_send(std::mem::take(&mut pending.batch));
        }
    }
}

/// Allows `rate` records per second, in bursts of up to one second's worth.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u64, now: Instant) -> Self {
        Self {
            rate: rate as f64,
            tokens: rate as f64,
            last: now,
        }
    }

    fn take(&mut self, n: f64, now: Instant) -> Result<(), RateError> {
        if n > self.rate {
            return Err(RateError::TooMany {
                per_second: self.rate as u64,
            });
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= n {
            self.tokens -= n;
            return Ok(());
        }
        let wait = ((n - self.tokens) / self.rate).ceil().max(1.0);
        Err(RateError::RetryAfter(wait as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, t0);
        assert_eq!(
            bucket.take(11.0, t0),
            Err(RateError::TooMany { per_second: 10 })
        );
        assert_eq!(bucket.take(8.0, t0), Ok(()));
        assert_eq!(bucket.take(5.0, t0), Err(RateError::RetryAfter(1)));
        assert_eq!(bucket.take(5.0, t0 + Duration::from_millis(300)), Ok(()));
        assert_eq!(bucket.take(10.0, t0 + Duration::from_secs(60)), Ok(()));
    }
}
