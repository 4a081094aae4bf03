//! The built plugin components. The build script compiles every plugin crate of `plugins/`
//! to a wasm component with zero imports and writes it to `target/plugins/<crate>.wasm`;
//! this crate exposes those absolute paths ([`PLUGIN_DIR`], one constant per plugin such as
//! [`TURNSTILE_PARSE`], and [`ALL`]). Depend on it (even as a dev-dependency) to have the
//! components built and up to date before your code runs.

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

#[cfg(test)]
mod tests;
