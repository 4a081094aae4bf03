//! The sluice plugin SDK.
//!
//! - [`rows`]: the row codec of `wit/README.md` (shared with the host, no dependencies).
//! - [`columns`]: the column layout of `sluice:plugin@0.2` (shared with the host, no
//!   dependencies), with conversions to and from rows.
//! - [`time`]: calendar arithmetic and timestamp parsing/formatting (no dependencies).
//! - [`json`]: a small JSON reader for plugin configs (no dependencies); [`config`]: a
//!   plugin's config keys declared in Rust, with the JSON Schema generated from them;
//!   [`typed`]: the config as a typed struct ([`config_struct!`]) and schemas written as
//!   `name: Type` pairs ([`schema!`]).
//! - [`Transform`] / [`Window`]: the plain-Rust plugin traits of `sluice:plugin@0.2`
//!   (column batches in, [`Output`] out), and [`metadata!`]; [`v0_1`]: the traits of
//!   `sluice:plugin@0.1` (packed rows), for plugins not yet moved (exported with the
//!   `sluice-plugin-sdk-v0_1` crate).
//! - With the `guest` feature (default): `bindings`, the only guest-side `wit_bindgen`
//!   site of 0.2, and the [`export_transform!`] / [`export_window!`] macros that turn a
//!   type implementing a trait into the component's exports. They expand
//!   to nothing off wasm32, so plugins build, test and link natively.
//!
//! A plugin is a few lines:
//! ```ignore
//! use sluice_plugin_sdk::{Columns, Output, Transform};
//! pub struct Upper;
//! impl Transform for Upper {
//!     // metadata, init ...
//!     fn process(&mut self, input: &Columns<'_>, out: &mut Output) -> Result<(), String> {
//!         let names = input.str("name").map_err(|e| e.to_string())?;
//!         for i in 0..input.len() {
//!             match names.str(i) {
//!                 // The row ends, with its origin, at the end of the statement.
//!                 Some(name) => {
//!                     out.emit(i as u32).str(&name.to_uppercase());
//!                 }
//!                 None => out.fail(i as u32, "no name"),
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//! sluice_plugin_sdk::export_transform!(Upper);
//! ```

// Lets the generated bindings name this crate by its path from plugin crates too.
extern crate self as sluice_plugin_sdk;

pub mod columns;
pub mod config;
pub mod json;
mod plugin;
pub mod rows;
pub mod time;
pub mod typed;
pub mod v0_1;

#[cfg(feature = "guest")]
pub mod bindings;

pub use columns::{Columns, ColumnsBuilder};
pub use plugin::{Metadata, Output, RowWriter, Transform, Window, WindowSpec};
pub use rows::{Batch, BatchBuilder, DecodeError, Field, FieldType, RowReader, Value};

/// Re-exports for the code the export macros generate; not part of the API.
#[cfg(feature = "guest")]
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}
