//! The wasm runtime: the only host bindings of `wit/`, the engine and compile cache, the
//! plugin registry, and sandboxed instances with memory, time and output limits (and, for
//! plugins whose language runtime needs it, a deny-all WASI).

mod adapt;
mod bindings;
mod cache;
mod engine;
mod inspect;
mod install;
mod instance;
mod output;
mod registry;
mod rows;
mod sandbox;
mod schema;
mod wasi;

pub use bindings::{Batch, WindowSpec};
/// What a plugin call returns, and its check at the boundary (public for the fuzz targets).
pub use bindings::{Failure, Output, v0_2};
pub use engine::{PluginEngine, sha256_hex};
pub use inspect::{
    Contract, LoadError, WIT_PACKAGE, WIT_VERSION, inspect as inspect_component, precheck,
};
pub use install::{InitCheck, InstallError, Installed, Installer};
pub use instance::{Limits, PluginOutput, TransformInstance, WindowInstance};
pub use output::{MAX_REASON_BYTES, check as check_output, check_columns as check_column_output};
pub use registry::{Kind, Plugin, Registry, check_bytes, load_bytes, load_file};
pub use rows::{ColumnRows, Rows};
pub use schema::describe as describe_schema;
pub use wasi::{GRANTED as GRANTED_WASI, OUTPUT_CAP as WASI_OUTPUT_CAP};

/// What can go wrong with a plugin. `Trap` is a bug in the plugin; `Guest` is an error it
/// returned; `Limit` is a sandbox limit it ran into.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PluginError {
    /// The file could not be loaded as a plugin.
    #[error("{path}: {message}")]
    Load {
        /// The component file.
        path: String,
        /// Why.
        message: String,
    },
    /// The component does not match the world it claims.
    #[error("plugin {plugin} does not implement the `{world}` world of sluice:plugin: {message}")]
    Incompatible {
        /// Plugin id.
        plugin: String,
        /// Expected world.
        world: String,
        /// wasmtime's type-check message.
        message: String,
    },
    /// `init` refused the config.
    #[error("plugin {plugin} rejected its config: {message}")]
    Init {
        /// Plugin id.
        plugin: String,
        /// The plugin's message.
        message: String,
    },
    /// The plugin returned an error for a whole batch.
    #[error("plugin {plugin} failed: {message}")]
    Guest {
        /// Plugin id.
        plugin: String,
        /// The plugin's message.
        message: String,
    },
    /// The plugin trapped.
    #[error("plugin {plugin} trapped: {message}")]
    Trap {
        /// Plugin id.
        plugin: String,
        /// The trap.
        message: String,
    },
    /// The plugin hit a sandbox limit.
    #[error("plugin {plugin} {what}")]
    Limit {
        /// Plugin id.
        plugin: String,
        /// Which limit, with its value.
        what: String,
    },
}

impl PluginError {
    fn incompatible(plugin: &str, world: &str, error: &wasmtime::Error) -> Self {
        Self::Incompatible {
            plugin: plugin.to_owned(),
            world: world.to_owned(),
            message: format!("{error:#}"),
        }
    }
}
