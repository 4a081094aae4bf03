//! The sluice plugin SDK.
//!
//! - [`rows`]: the row codec of `wit/README.md` (shared with the host, no dependencies).
//! - [`columns`]: the column layout of `sluice:plugin@0.2` (shared with the host, no
//!   dependencies), with conversions to and from rows.
//! - [`time`]: calendar arithmetic and timestamp parsing/formatting (no dependencies).
//! - [`json`]: a small JSON reader for plugin configs (no dependencies).
//! - [`Transform`] / [`Window`]: the plain-Rust plugin traits, and [`metadata!`].
//! - With the `guest` feature (default): `bindings`, the only guest-side `wit_bindgen`
//!   site, and the [`export_transform!`] / [`export_window!`] macros that turn a type
//!   implementing a trait into the component's exports. They expand to nothing off wasm32,
//!   so plugins build, test and link natively.
//!
//! A plugin is a few lines:
//! ```ignore
//! pub struct MyPlugin;
//! impl sluice_plugin_sdk::Transform for MyPlugin { /* ... */ }
//! sluice_plugin_sdk::export_transform!(MyPlugin);
//! ```

// Lets the generated bindings name this crate by its path from plugin crates too.
extern crate self as sluice_plugin_sdk;

pub mod columns;
pub mod json;
mod plugin;
pub mod rows;
pub mod time;

#[cfg(feature = "guest")]
pub mod bindings;

pub use plugin::{Metadata, Output, Transform, Window, WindowSpec};
pub use rows::{Batch, BatchBuilder, DecodeError, Field, FieldType, RowReader, Value};

/// Re-exports for the code the export macros generate; not part of the API.
#[cfg(feature = "guest")]
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}
