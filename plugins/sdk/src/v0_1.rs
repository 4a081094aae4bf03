//! The plugin API of `sluice:plugin@0.1` (`wit/0.1/plugin.wit`), where batches travel as
//! packed rows ([`crate::rows`]): the [`Transform`] and [`Window`] traits and their
//! [`Output`], exported with the macros of the `sluice-plugin-sdk-v0_1` crate. Kept for
//! plugins not yet moved to the column layout of 0.2 (the crate root); hosts run both.

pub use crate::plugin::{Metadata, WindowSpec};
use crate::rows::{Batch, BatchBuilder, Field};

/// What one call produces: rows, their origins, and per-record failures.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// The rows produced, in the plugin's output schema.
    pub rows: BatchBuilder,
    /// For each output row, the index of the input row it came from; empty for rows made
    /// from state (window results).
    pub origins: Vec<u32>,
    /// Input rows the plugin could not handle: (index in the input batch, reason).
    pub failures: Vec<(u32, String)>,
}

impl Output {
    /// Records that input row `index` failed for `reason`.
    pub fn fail(&mut self, index: u32, reason: impl Into<String>) {
        self.failures.push((index, reason.into()));
    }

    /// Forgets everything, keeping the allocations.
    pub fn clear(&mut self) {
        self.rows.clear();
        self.origins.clear();
        self.failures.clear();
    }
}

/// A stateless plugin (the `transform` world).
pub trait Transform: Sized + 'static {
    /// Describes the plugin; use [`crate::metadata!`].
    fn metadata() -> Metadata;

    /// Reads the JSON `config` for rows of schema `input`; returns the plugin and the schema
    /// of the rows it will emit, or a message saying what is wrong with the config.
    fn init(config: &str, input: &[Field]) -> Result<(Self, Vec<Field>), String>;

    /// Processes one batch. Per-record problems go to `out.failures`; an `Err` fails the
    /// whole batch.
    fn process(&mut self, input: Batch<'_>, out: &mut Output) -> Result<(), String>;
}

/// A stateful event-time plugin (the `window` world). The host owns time: it filters late
/// records, computes the watermark and calls [`Window::advance`].
pub trait Window: Sized + 'static {
    /// Describes the plugin; use [`crate::metadata!`].
    fn metadata() -> Metadata;

    /// Reads the JSON `config` for rows of schema `input`, windowed per `window`; returns the
    /// plugin and the schema of the rows it will emit.
    fn init(
        config: &str,
        input: &[Field],
        window: &WindowSpec,
    ) -> Result<(Self, Vec<Field>), String>;

    /// Adds a batch of rows; `watermark` is the host's current watermark.
    fn process(&mut self, input: Batch<'_>, watermark: i64, out: &mut Output)
    -> Result<(), String>;

    /// Emits, and forgets, every window whose end is at or before `watermark`.
    fn advance(&mut self, watermark: i64, out: &mut Output) -> Result<(), String>;

    /// Serialises the whole state.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the state with one produced by [`Window::snapshot`].
    fn restore(&mut self, state: &[u8]) -> Result<(), String>;
}
