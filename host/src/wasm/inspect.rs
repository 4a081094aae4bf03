//! Checking bytes that claim to be a plugin, in order, each refusal typed so callers (the
//! upload endpoint) can answer precisely: is it wasm at all, a component rather than a core
//! module, does it compile, import only type definitions, build on a compatible version of
//! the `sluice:plugin` WIT package, export a known world, and describe itself.

use std::path::Path;

use semver::Version;
use wasmtime::component::Component;
use wasmtime::{Store, StoreLimitsBuilder};

use super::bindings::{Metadata, v0_1, v0_2};
use super::engine::PluginEngine;
use super::registry::{Kind, Plugin};

/// The WIT package every plugin is built from, and the version this host implements.
pub const WIT_PACKAGE: &str = "sluice:plugin";
/// The version of [`WIT_PACKAGE`] in `wit/plugin.wit`.
pub const WIT_VERSION: Version = Version::new(0, 2, 0);

/// The contract versions this host runs: its own, and the earlier one it adapts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Contract {
    /// `sluice:plugin@0.1.x` (`wit/0.1/plugin.wit`): packed rows, adapted by the host.
    #[serde(rename = "0.1")]
    V0_1,
    /// `sluice:plugin@0.2.x` (`wit/plugin.wit`): column batches.
    #[serde(rename = "0.2")]
    V0_2,
}

impl Contract {
    /// `0.1` or `0.2`.
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1",
            Contract::V0_2 => "0.2",
        }
    }
}

/// Why bytes are not a usable plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No `\0asm` magic.
    #[error("not a WebAssembly file (no `\\0asm` header)")]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "a core WebAssembly module, not a component; wrap it into a component built from \
         wit/plugin.wit (wit-component or `wasm-tools component new`)"
    )]
    CoreModule,
    /// wasmtime refused to compile it (truncated, corrupt, unsupported features).
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    /// It imports capabilities.
    #[error("{0}")]
    Denied(String),
    /// Built from another WIT package or an incompatible version of it.
    #[error("{0}")]
    Incompatible(String),
    /// Exports neither world.
    #[error("{0}")]
    UnknownWorld(String),
    /// `metadata` failed or returned something unusable.
    #[error("{0}")]
    Metadata(String),
}

/// Checks the header: wasm, and a component rather than a core module.
pub fn precheck(bytes: &[u8]) -> Result<(), LoadError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm);
    }
    // Bytes 4..8: version 1 and layer 0 for core modules, layer 1 for components.
    if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}

/// Checks a compiled component and reads its metadata into a [`Plugin`].
pub fn inspect(
    engine: &PluginEngine,
    component: Component,
    hash: String,
    size: u64,
    path: &Path,
) -> Result<Plugin, LoadError> {
    let imports = super::sandbox::check_imports(engine, &component).map_err(LoadError::Denied)?;
    let contract = contract(engine, &component)?;
    let kind = world(engine, &component)?;
    let meta = read_metadata(engine, &component, kind, contract)?;
    let version = Version::parse(&meta.version).map_err(|e| {
        LoadError::Metadata(format!(
            "its metadata version `{}` is not semver: {e}",
            meta.version
        ))
    })?;
    if meta.name.is_empty() || !meta.name.chars().all(is_name_char) {
        return Err(LoadError::Metadata(format!(
            "its metadata name `{}` is not kebab-case (letters, digits, `-`, `_`)",
            meta.name
        )));
    }
    Ok(Plugin {
        name: meta.name,
        version,
        kind,
        contract,
        description: meta.description,
        config_schema: meta.config_schema,
        sample_config: meta.sample_config,
        capabilities: imports.capabilities,
        hash,
        size,
        path: path.to_owned(),
        component,
    })
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// The contract a component is built for: every import and export named after the WIT
/// package must carry a version of one contract this host runs, and a plugin must use the
/// package at all (its `metadata` record lives there).
pub fn contract(engine: &PluginEngine, component: &Component) -> Result<Contract, LoadError> {
    let ty = component.component_type();
    let names = ty
        .imports(engine.engine())
        .map(|(n, _)| n)
        .chain(ty.exports(engine.engine()).map(|(n, _)| n));
    let prefix = format!("{WIT_PACKAGE}/");
    let mut found: Option<Contract> = None;
    for name in names.filter(|n| n.starts_with(&prefix)) {
        let version = name.split_once('@').map(|(_, v)| v).unwrap_or("");
        let contract = Version::parse(version).ok().and_then(|v| compatible(&v));
        match (contract, found) {
            (Some(c), None) => found = Some(c),
            (Some(c), Some(f)) if c == f => {}
            _ => {
                return Err(LoadError::Incompatible(format!(
                    "it is built for `{name}`, but this host implements {WIT_PACKAGE}@{WIT_VERSION} \
                     and accepts only {WIT_PACKAGE}@{}; rebuild it against this host's wit/",
                    accepted()
                )));
            }
        }
    }
    found.ok_or_else(|| {
        LoadError::Incompatible(format!(
            "it does not use the {WIT_PACKAGE} WIT package (no `{WIT_PACKAGE}/types` import); \
             build it from this host's wit/plugin.wit"
        ))
    })
}

/// The rule of `wit/README.md`: the host's own version under semver (the same major, and
/// for `0.x` the same minor; patch versions never matter), or `0.1.x`, which the host adapts.
fn compatible(built: &Version) -> Option<Contract> {
    let same = if WIT_VERSION.major == 0 {
        built.major == 0 && built.minor == WIT_VERSION.minor
    } else {
        built.major == WIT_VERSION.major
    };
    if same {
        Some(Contract::V0_2)
    } else if built.major == 0 && built.minor == 1 {
        Some(Contract::V0_1)
    } else {
        None
    }
}

/// The accepted versions, as `0.2.x or 0.1.x`.
fn accepted() -> String {
    let own = if WIT_VERSION.major == 0 {
        format!("0.{}.x", WIT_VERSION.minor)
    } else {
        format!("{}.x", WIT_VERSION.major)
    };
    format!("{own} or 0.1.x")
}

fn world(engine: &PluginEngine, component: &Component) -> Result<Kind, LoadError> {
    let ty = component.component_type();
    let exports: Vec<&str> = ty.exports(engine.engine()).map(|(name, _)| name).collect();
    if exports.contains(&"advance") && exports.contains(&"snapshot") {
        Ok(Kind::Window)
    } else if exports.contains(&"process") && exports.contains(&"init") {
        Ok(Kind::Transform)
    } else {
        Err(LoadError::UnknownWorld(format!(
            "it exports [{}], not the `transform` or `window` world of {WIT_PACKAGE}@{}",
            exports.join(", "),
            accepted()
        )))
    }
}

/// The store of the `metadata` call made when a plugin is checked.
struct MetadataState {
    limits: wasmtime::StoreLimits,
    wasi: super::wasi::WasiState,
}

impl wasmtime_wasi::WasiView for MetadataState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        self.wasi.view()
    }
}

fn read_metadata(
    engine: &PluginEngine,
    component: &Component,
    kind: Kind,
    contract: Contract,
) -> Result<Metadata, LoadError> {
    let limits = StoreLimitsBuilder::new()
        .memory_size(super::Limits::default().memory_bytes)
        .trap_on_grow_failure(true)
        .build();
    let state = MetadataState {
        limits,
        wasi: super::wasi::WasiState::new("(being checked)"),
    };
    let mut store = Store::new(engine.engine(), state);
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(1000);
    let linker = super::sandbox::linker(engine, component)
        .map_err(|e| LoadError::Denied(format!("{e:#}")))?;
    let world = kind.world();
    let incompatible = |e: wasmtime::Error| {
        LoadError::Incompatible(format!(
            "it does not match the `{world}` world of {WIT_PACKAGE}@{}: {e:#}",
            contract.version()
        ))
    };
    let failed =
        |e: wasmtime::Error| LoadError::Metadata(format!("its `metadata` call failed: {e:#}"));
    let s = &mut store;
    match (kind, contract) {
        (Kind::Transform, Contract::V0_1) => {
            v0_1::Transform::instantiate(&mut *s, component, &linker)
                .map_err(incompatible)?
                .call_metadata(s)
                .map_err(failed)
        }
        (Kind::Window, Contract::V0_1) => v0_1::Window::instantiate(&mut *s, component, &linker)
            .map_err(incompatible)?
            .call_metadata(s)
            .map_err(failed),
        (Kind::Transform, Contract::V0_2) => {
            v0_2::Transform::instantiate(&mut *s, component, &linker)
                .map_err(incompatible)?
                .call_metadata(s)
                .map(metadata_of)
                .map_err(failed)
        }
        (Kind::Window, Contract::V0_2) => v0_2::Window::instantiate(&mut *s, component, &linker)
            .map_err(incompatible)?
            .call_metadata(s)
            .map(metadata_of)
            .map_err(failed),
    }
}

/// The 0.2 metadata record as the host's (the records are the same).
fn metadata_of(m: v0_2::Metadata) -> Metadata {
    Metadata {
        name: m.name,
        version: m.version,
        description: m.description,
        config_schema: m.config_schema,
        sample_config: m.sample_config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wit_readme_rule_same_minor_for_0_x_any_patch_and_0_1_adapted() {
        assert_eq!(WIT_VERSION.major, 0, "update these cases for 1.0");
        let v = |s: &str| Version::parse(s).unwrap();
        let same = WIT_VERSION.minor;
        assert_eq!(compatible(&v(&format!("0.{same}.0"))), Some(Contract::V0_2));
        assert_eq!(compatible(&v(&format!("0.{same}.9"))), Some(Contract::V0_2));
        assert_eq!(compatible(&v("0.1.0")), Some(Contract::V0_1));
        assert_eq!(compatible(&v("0.1.4")), Some(Contract::V0_1));
        for other in [
            format!("0.{}.0", same + 1),
            format!("0.{}.3", same + 7),
            "0.0.1".to_owned(),
            "1.0.0".to_owned(),
            format!("1.{same}.0"),
        ] {
            assert_eq!(compatible(&v(&other)), None, "{other}");
        }
        assert_eq!(accepted(), format!("0.{same}.x or 0.1.x"));
    }
}
