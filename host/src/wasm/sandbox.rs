//! The sandbox boundary: what a plugin may import and the linker that satisfies it.
//!
//! - A component built from `wit/` imports the `types` interface, which holds only type
//!   definitions; such an import grants nothing, so it is allowed and satisfied by an empty
//!   instance.
//! - The WASI interfaces of [`super::wasi::GRANTED`] (what a Python or JavaScript runtime
//!   needs: clocks, randomness, stdio, the environment) are granted deny-all, see
//!   [`super::wasi`]. They are the plugin's *capabilities*, shown in its metadata.
//! - Anything else (the filesystem, sockets, HTTP, any other function) is refused at load and
//!   upload, naming the import and the capability it asks for.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};

use super::engine::PluginEngine;
use super::wasi;

/// What a component imports, once accepted.
#[derive(Clone, Debug, Default)]
pub struct Imports {
    /// Instances holding only type definitions (`sluice:plugin/types`).
    pub type_only: Vec<String>,
    /// Granted WASI interfaces.
    pub capabilities: Vec<String>,
}

/// The imports of `component`, or why it imports too much.
pub fn check_imports(engine: &PluginEngine, component: &Component) -> Result<Imports, String> {
    let ty = component.component_type();
    let mut imports = Imports::default();
    let mut refused = Vec::new();
    for (name, import) in ty.imports(engine.engine()) {
        match &import.ty {
            ComponentItem::ComponentInstance(instance)
                if instance
                    .exports(engine.engine())
                    .all(|(_, e)| matches!(e.ty, ComponentItem::Type(_))) =>
            {
                imports.type_only.push(name.to_owned());
            }
            ComponentItem::ComponentInstance(_) if wasi::granted(name) => {
                imports.capabilities.push(name.to_owned());
            }
            _ => refused.push(name.to_owned()),
        }
    }
    match refused.first() {
        None => Ok(imports),
        Some(first) => Err(format!(
            "it imports `{first}`{}: this plugin wants {}, which sluice does not grant. A plugin \
             may import only the contract's types and, for language runtimes, a deny-all WASI \
             (clocks, random numbers, stdout and stderr to the host log, an empty environment); \
             no filesystem, network or other host function is ever granted",
            if refused.len() > 1 {
                format!(" (and {}: {})", refused.len() - 1, refused[1..].join(", "))
            } else {
                String::new()
            },
            capability(first)
        )),
    }
}

/// The capability an import asks for, in words.
pub fn capability(import: &str) -> &'static str {
    let interface = import.split('@').next().unwrap_or(import);
    match interface.split('/').next().unwrap_or(interface) {
        "wasi:filesystem" => "filesystem access",
        "wasi:sockets" | "wasi:http" => "network access",
        "wasi:clocks" => "clocks",
        "wasi:random" => "random numbers",
        "wasi:cli" if interface.ends_with("/environment") => "environment variables",
        "wasi:cli" => "the command line (stdio, exit, environment)",
        "wasi:io" => "I/O streams",
        _ => "a host function",
    }
}

/// A linker that provides exactly the imports `check_imports` accepts for `component`.
pub fn linker<T: wasmtime_wasi::WasiView + 'static>(
    engine: &PluginEngine,
    component: &Component,
) -> wasmtime::Result<Linker<T>> {
    let mut linker = Linker::new(engine.engine());
    let imports = check_imports(engine, component).map_err(wasmtime::Error::msg)?;
    for name in imports.type_only {
        linker.instance(&name)?;
    }
    if !imports.capabilities.is_empty() {
        wasi::add_to_linker(&mut linker)?;
    }
    Ok(linker)
}
