//! The plain-Rust plugin API: the [`Transform`] and [`Window`] traits a plugin implements,
//! and the types they exchange ([`Metadata`], [`WindowSpec`], [`Output`]). Nothing here
//! depends on the WIT bindings, so a plugin's logic can be unit-tested, benchmarked or linked
//! natively into the host; the export macros adapt it to the component worlds.

use crate::rows::{Batch, BatchBuilder, Field};

/// What a plugin says about itself; see `metadata` in `wit/plugin.wit`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Plugin name, kebab-case (`turnstile-parse`).
    pub name: String,
    /// Semantic version of the plugin.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// A JSON Schema of the accepted config, as text.
    pub config_schema: String,
    /// A config that `init` accepts.
    pub sample_config: String,
}

/// The window a stateful plugin assigns rows to (all in milliseconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    /// Name of the `timestamp` field holding event time.
    pub event_time: String,
    /// Window length.
    pub size: i64,
    /// Distance between window starts; equal to `size` for tumbling windows.
    pub slide: i64,
}

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

/// Builds the plugin's [`Metadata`], taking its name and version from the calling crate's
/// `Cargo.toml`: `metadata!(description, config_schema, sample_config)`.
#[macro_export]
macro_rules! metadata {
    ($description:expr, $config_schema:expr, $sample_config:expr $(,)?) => {
        $crate::Metadata {
            name: ::std::string::String::from(env!("CARGO_PKG_NAME")),
            version: ::std::string::String::from(env!("CARGO_PKG_VERSION")),
            description: ::std::string::String::from($description),
            config_schema: ::std::string::String::from($config_schema),
            sample_config: ::std::string::String::from($sample_config),
        }
    };
}
