//! The sandbox boundary: what a plugin may import (nothing that can be called) and the
//! linker that satisfies it. A component built from `wit/` imports the `types` interface,
//! which holds only type definitions; such an import grants nothing, so it is allowed and
//! satisfied by an empty instance. Any function, module or resource import is refused.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};

use super::engine::PluginEngine;

/// The names of the plugin's type-only instance imports, or why it imports too much.
pub fn check_imports(engine: &PluginEngine, component: &Component) -> Result<Vec<String>, String> {
    let ty = component.component_type();
    let mut type_only = Vec::new();
    let mut refused = Vec::new();
    for (name, import) in ty.imports(engine.engine()) {
        match &import.ty {
            ComponentItem::ComponentInstance(instance)
                if instance
                    .exports(engine.engine())
                    .all(|(_, e)| matches!(e.ty, ComponentItem::Type(_))) =>
            {
                type_only.push(name.to_owned());
            }
            _ => refused.push(name.to_owned()),
        }
    }
    match refused.first() {
        None => Ok(type_only),
        Some(first) => Err(format!(
            "it imports `{first}`{}: this plugin wants {}, which sluice does not grant. Plugins \
             get no host capabilities (capability grants are not supported yet), so a plugin may \
             import only type definitions: build it for wasm32-unknown-unknown without WASI",
            if refused.len() > 1 {
                format!(" (and {} more)", refused.len() - 1)
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

/// A linker that provides exactly the type-only imports of `component`.
pub fn linker<T: 'static>(
    engine: &PluginEngine,
    component: &Component,
) -> wasmtime::Result<Linker<T>> {
    let mut linker = Linker::new(engine.engine());
    let names = check_imports(engine, component).map_err(wasmtime::Error::msg)?;
    for name in names {
        linker.instance(&name)?;
    }
    Ok(linker)
}
