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
    if refused.is_empty() {
        Ok(type_only)
    } else {
        Err(format!(
            "it imports {}; plugins get no host capabilities (no WASI, no host functions), so a \
             plugin may import only type definitions",
            refused.join(", ")
        ))
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
