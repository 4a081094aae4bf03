//! The chain's side of a checkpoint: taking one at a batch boundary (the window plugin's
//! snapshot, the watermarks and the source positions after the batch) and restoring one
//! into a freshly built chain, and swapping a running chain for a new one (a plugin upgrade)
//! at such a boundary. Transforms hold no state, so only the window step is saved.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::chain::{Chain, ChainError, ChainErrorKind};
use super::checkpoint::{Checkpoint, StageState, now_ms};

/// Decides when the chain takes a checkpoint and tracks the positions it covers.
pub struct Barrier {
    /// Next offset per partition, after the batches processed so far.
    pub positions: BTreeMap<i32, i64>,
    /// Which source the positions belong to.
    pub source: String,
    /// Epoch of the next checkpoint.
    pub epoch: u64,
    interval: Duration,
    last: Instant,
}

impl Barrier {
    /// A barrier every `interval`, continuing from `restored` when there is one; its first
    /// checkpoint is epoch `epoch` (after every stored one).
    pub fn new(
        source: String,
        interval: Duration,
        restored: Option<&Checkpoint>,
        epoch: u64,
    ) -> Self {
        Self {
            positions: restored.map(|c| c.offsets.clone()).unwrap_or_default(),
            source,
            epoch,
            interval,
            last: Instant::now(),
        }
    }

    /// Moves the positions past a processed batch.
    pub fn advance(&mut self, next_offsets: &[(i32, i64)]) {
        for &(p, o) in next_offsets {
            let entry = self.positions.entry(p).or_insert(o);
            *entry = (*entry).max(o);
        }
    }

    /// True when the interval has passed since the last checkpoint.
    pub fn due(&self) -> bool {
        self.last.elapsed() >= self.interval
    }

    /// Takes a checkpoint of `chain` now.
    pub fn take(&mut self, chain: &mut Chain) -> Result<Checkpoint, ChainError> {
        let mut checkpoint = Checkpoint {
            epoch: self.epoch,
            created_ms: now_ms(),
            source: self.source.clone(),
            offsets: self.positions.clone(),
            ..Default::default()
        };
        if let Some(window) = chain.window.as_mut() {
            let snapshot = window.instance.snapshot().map_err(|error| ChainError {
                kind: ChainErrorKind::Fatal,
                stage: window.label.clone(),
                error,
                at: "taking a checkpoint".into(),
            })?;
            checkpoint.watermarks = window.watermarks.state();
            checkpoint.stages.push(StageState {
                label: window.label.clone(),
                plugin: window.plugin.id(),
                hash: window.plugin.hash.clone(),
                snapshot,
            });
        }
        self.epoch += 1;
        self.last = Instant::now();
        Ok(checkpoint)
    }
}

impl Chain {
    /// Continues from `checkpoint`: the window plugin restores its snapshot (a new plugin
    /// version receives the old version's state) and the watermarks continue where they were.
    pub fn restore(&mut self, checkpoint: &Checkpoint) -> Result<(), ChainError> {
        let Some(window) = self.window.as_mut() else {
            return Ok(());
        };
        window.watermarks.restore(&checkpoint.watermarks);
        let Some(state) = checkpoint.stages.first() else {
            return Ok(());
        };
        if state.hash != window.plugin.hash {
            tracing::info!(
                pipeline = %self.pipeline, from = %state.plugin, to = %window.plugin.id(),
                "Handing the window state of the checkpoint to another plugin build."
            );
        }
        window
            .instance
            .restore(&state.snapshot)
            .map_err(|error| ChainError {
                kind: ChainErrorKind::Fatal,
                stage: window.label.clone(),
                error,
                at: format!("restoring the state written by {}", state.plugin),
            })
    }
}

/// What a swap reports back: how long the chain was held, or why the new one was refused.
pub type SwapResult = Result<Duration, String>;

/// A new chain waiting to replace the running one at the next batch boundary (a plugin
/// upgrade without stopping the source): the old chain is checkpointed, the new one restores
/// that checkpoint and takes over; if it cannot, the old one goes on and the error is
/// reported. A request also wakes a processing thread waiting for input, so an idle source
/// does not hold the switch back.
#[derive(Clone, Default)]
pub struct ChainSwap {
    pending: Arc<Mutex<Option<Pending>>>,
    wake: Arc<tokio::sync::Notify>,
}

/// A queued chain and where its outcome goes.
type Pending = (Chain, mpsc::Sender<SwapResult>);

impl ChainSwap {
    /// Queues `chain`; the receiver gets the outcome once the processing thread took it.
    pub fn request(&self, chain: Chain) -> mpsc::Receiver<SwapResult> {
        let (tx, rx) = mpsc::channel();
        *self.pending.lock().expect("swap lock") = Some((chain, tx));
        self.wake.notify_one();
        rx
    }

    /// Withdraws a queued chain the processing thread has not taken yet; true if there was
    /// one (its receiver then gets nothing).
    pub fn cancel(&self) -> bool {
        self.take().is_some()
    }

    /// The queued chain, if any.
    pub(super) fn take(&self) -> Option<Pending> {
        self.pending.lock().expect("swap lock").take()
    }

    /// Resolves when a chain was queued (possibly already taken since).
    pub(super) async fn requested(&self) {
        self.wake.notified().await;
    }
}
