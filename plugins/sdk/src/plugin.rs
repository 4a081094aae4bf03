//! The plain-Rust plugin API of `sluice:plugin@0.2`: the [`Transform`] and [`Window`] traits
//! a plugin implements, and the types they exchange ([`Metadata`], [`WindowSpec`],
//! [`Output`]). Input is a [`Columns`] batch with typed access by field name; output goes
//! through [`Output`], which keeps rows, origins and failures in step. Nothing here depends
//! on the WIT bindings, so a plugin's logic can be unit-tested, benchmarked or linked natively
//! into the host; the export macros adapt it to the component worlds.

use crate::columns::{Columns, ColumnsBuilder};
use crate::rows::Field;

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

/// What one call produces: rows in the plugin's output schema, the input row each came
/// from, and per-record failures. Made once per instance (from the schema `init` returned)
/// and reused for every call, so its buffers are allocated once.
#[derive(Clone, Debug)]
pub struct Output {
    /// The rows produced: push one value per column with the `push_*` methods, then end the
    /// row with [`Output::end_row`] (or [`Output::end_result_row`]).
    pub rows: ColumnsBuilder,
    /// For each output row, the index of the input row it came from; empty when every row
    /// is made from state (window results).
    pub origins: Vec<u32>,
    /// Input rows the plugin could not handle: (index in the input batch, reason).
    pub failures: Vec<(u32, String)>,
}

impl Output {
    /// An empty output for rows of `schema`.
    pub fn new(schema: &[Field]) -> Self {
        Output::with_rows(ColumnsBuilder::new(schema))
    }

    /// An empty output writing rows with `rows` (to dictionary-encode columns:
    /// `ColumnsBuilder::new(schema).dictionary("station")`).
    pub fn with_rows(rows: ColumnsBuilder) -> Self {
        Output {
            rows,
            origins: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Ends a row made from input row `origin`.
    #[inline]
    pub fn end_row(&mut self, origin: u32) {
        self.rows.end_row();
        self.origins.push(origin);
    }

    /// Ends a row made from state rather than one input row (a window result). A call's
    /// rows are either all from input rows or all from state.
    #[inline]
    pub fn end_result_row(&mut self) {
        self.rows.end_row();
    }

    /// Starts a row made from input row `origin`: write one value per column in schema
    /// order; the row ends (with its origin) when the writer is dropped, so rows and origins
    /// cannot get out of step: `out.emit(i).str(station).i64(total);`
    #[inline]
    pub fn emit(&mut self, origin: u32) -> RowWriter<'_> {
        RowWriter {
            out: self,
            origin: Some(origin),
        }
    }

    /// Starts a row made from state (a window result); it ends when the writer is dropped.
    #[inline]
    pub fn emit_result(&mut self) -> RowWriter<'_> {
        RowWriter {
            out: self,
            origin: None,
        }
    }

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

    /// Checks that rows and origins are in step: an origin for every row, or none.
    pub fn check(&self) -> Result<(), String> {
        if self.origins.is_empty() || self.origins.len() == self.rows.len() {
            Ok(())
        } else {
            Err(format!(
                "the plugin mixed {} row(s) from input rows with {} from state",
                self.origins.len(),
                self.rows.len() - self.origins.len().min(self.rows.len())
            ))
        }
    }
}

/// One output row being written (see [`Output::emit`]): one value per column, in schema
/// order; the row ends when the writer goes out of scope. Too few or too many values, or a
/// value of the wrong type, panic with the reason (a plugin bug, found where it happens).
pub struct RowWriter<'a> {
    out: &'a mut Output,
    origin: Option<u32>,
}

impl RowWriter<'_> {
    /// A `str` value.
    #[inline]
    pub fn str(self, v: &str) -> Self {
        self.out.rows.push_str(v);
        self
    }

    /// A `bytes` value.
    #[inline]
    pub fn bytes(self, v: &[u8]) -> Self {
        self.out.rows.push_bytes(v);
        self
    }

    /// An `int64` value.
    #[inline]
    pub fn i64(self, v: i64) -> Self {
        self.out.rows.push_i64(v);
        self
    }

    /// A `timestamp` value (ms since the epoch, UTC).
    #[inline]
    pub fn timestamp(self, ms: i64) -> Self {
        self.out.rows.push_i64(ms);
        self
    }

    /// A `float64` value.
    #[inline]
    pub fn f64(self, v: f64) -> Self {
        self.out.rows.push_f64(v);
        self
    }

    /// A `boolean` value.
    #[inline]
    pub fn bool(self, v: bool) -> Self {
        self.out.rows.push_bool(v);
        self
    }

    /// A null (the column must be nullable).
    #[inline]
    pub fn null(self) -> Self {
        self.out.rows.push_null();
        self
    }

    /// A value, or null for `None`.
    #[inline]
    pub fn opt<T>(self, v: Option<T>, put: impl FnOnce(Self, T) -> Self) -> Self {
        match v {
            Some(v) => put(self, v),
            None => self.null(),
        }
    }
}

impl Drop for RowWriter<'_> {
    fn drop(&mut self) {
        match self.origin {
            Some(origin) => self.out.end_row(origin),
            None => self.out.end_result_row(),
        }
    }
}

/// A stateless plugin (the `transform` world).
pub trait Transform: Sized + 'static {
    /// Describes the plugin; use [`crate::metadata!`].
    fn metadata() -> Metadata;

    /// Reads the JSON `config` for rows of schema `input`; returns the plugin and the schema
    /// of the rows it will emit, or a message saying what is wrong with the config.
    fn init(config: &str, input: &[Field]) -> Result<(Self, Vec<Field>), String>;

    /// The output its calls write to, made once after `init`; override to choose
    /// dictionary-encoded columns.
    fn output(&self, schema: &[Field]) -> Output {
        Output::new(schema)
    }

    /// Processes one batch. Per-record problems go to `out.failures`; an `Err` fails the
    /// whole batch.
    fn process(&mut self, input: &Columns<'_>, out: &mut Output) -> Result<(), String>;
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

    /// The output its calls write to, made once after `init`; override to choose
    /// dictionary-encoded columns.
    fn output(&self, schema: &[Field]) -> Output {
        Output::new(schema)
    }

    /// Adds a batch of rows; `watermark` is the host's current watermark.
    fn process(
        &mut self,
        input: &Columns<'_>,
        watermark: i64,
        out: &mut Output,
    ) -> Result<(), String>;

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
