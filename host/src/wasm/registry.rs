//! The plugin registry: finds components in the plugin folders, checks that each is a
//! sandboxable component exporting a known world, reads its metadata, and resolves the
//! `name@version-requirement` references of pipeline specs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use semver::{Version, VersionReq};
use wasmtime::Store;
use wasmtime::component::Component;

use super::PluginError;
use super::bindings::{Metadata, Transform, Window};
use super::engine::PluginEngine;

/// Which world a plugin implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `sluice:plugin/transform`.
    Transform,
    /// `sluice:plugin/window`.
    Window,
}

/// A loaded, compiled plugin.
#[derive(Clone)]
pub struct Plugin {
    /// Name from its metadata.
    pub name: String,
    /// Version from its metadata.
    pub version: Version,
    /// The world it exports.
    pub kind: Kind,
    /// One-line description.
    pub description: String,
    /// Sample config `init` accepts.
    pub sample_config: String,
    /// Hex SHA-256 of the component bytes.
    pub hash: String,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// The compiled component.
    pub component: Component,
}

impl Plugin {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// Every plugin found, by name then version.
#[derive(Default, Clone)]
pub struct Registry {
    plugins: BTreeMap<String, BTreeMap<Version, Arc<Plugin>>>,
    /// Files that were refused, by file stem: why (named when a spec asks for that name).
    refused: BTreeMap<String, String>,
}

impl Registry {
    /// Loads every `*.wasm` in `dirs` (missing folders are skipped). A file that is not a
    /// valid plugin is reported in the returned list and left out.
    pub fn load_dirs(engine: &PluginEngine, dirs: &[PathBuf]) -> (Self, Vec<PluginError>) {
        let mut registry = Self::default();
        let mut errors = Vec::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for path in paths
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            {
                match load_file(engine, &path) {
                    Ok(plugin) => registry.insert(plugin),
                    Err(error) => {
                        let stem = path.file_stem().unwrap_or_default();
                        let stem = stem.to_string_lossy().into_owned();
                        let why = match &error {
                            PluginError::Load { path, message } => {
                                format!("`{path}` was refused: {message}")
                            }
                            other => other.to_string(),
                        };
                        registry.refused.insert(stem, why);
                        errors.push(error);
                    }
                }
            }
        }
        (registry, errors)
    }

    /// Adds a plugin, replacing one of the same name and version.
    pub fn insert(&mut self, plugin: Plugin) {
        let versions = self.plugins.entry(plugin.name.clone()).or_default();
        versions.insert(plugin.version.clone(), Arc::new(plugin));
    }

    /// Every plugin, sorted by name and version.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values().flat_map(|v| v.values())
    }

    /// Resolves `name`, `name@1.2.3` or `name@^0.1` to the newest matching version.
    pub fn resolve(&self, reference: &str) -> Result<Arc<Plugin>, String> {
        let (name, req) = match reference.split_once('@') {
            Some((name, req)) => (name, req),
            None => (reference, "*"),
        };
        let req = VersionReq::parse(req)
            .map_err(|e| format!("`{req}` is not a version requirement ({e})"))?;
        let Some(versions) = self.plugins.get(name) else {
            if let Some(reason) = self.refused.get(name) {
                return Err(format!("no plugin named `{name}` is installed: {reason}"));
            }
            let known: Vec<&str> = self.plugins.keys().map(String::as_str).collect();
            return Err(format!(
                "no plugin named `{name}` is installed (known: {}); build it with `make build` \
                 or upload it to the API",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        };
        versions
            .values()
            .rev()
            .find(|p| req.matches(&p.version))
            .cloned()
            .ok_or_else(|| {
                let have: Vec<String> = versions.keys().map(Version::to_string).collect();
                format!(
                    "no version of `{name}` matches `{req}` (installed: {})",
                    have.join(", ")
                )
            })
    }
}

/// Loads and checks one component file.
pub fn load_file(engine: &PluginEngine, path: &Path) -> Result<Plugin, PluginError> {
    let bytes = std::fs::read(path).map_err(|e| PluginError::Load {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    load_bytes(engine, &bytes, path).map_err(|message| PluginError::Load {
        path: path.display().to_string(),
        message,
    })
}

/// Compiles `bytes`, checks the sandbox and world, and reads the metadata.
pub fn load_bytes(engine: &PluginEngine, bytes: &[u8], path: &Path) -> Result<Plugin, String> {
    if !bytes.starts_with(b"\0asm") {
        return Err("not a WebAssembly file (no `\\0asm` header)".into());
    }
    let (component, hash) = engine.compile(bytes).map_err(|e| {
        format!("not a valid WebAssembly component (core modules must be wrapped): {e:#}")
    })?;
    super::sandbox::check_imports(engine, &component)?;
    let ty = component.component_type();
    let exports: Vec<&str> = ty.exports(engine.engine()).map(|(name, _)| name).collect();
    let kind = if exports.contains(&"advance") && exports.contains(&"snapshot") {
        Kind::Window
    } else if exports.contains(&"process") && exports.contains(&"init") {
        Kind::Transform
    } else {
        return Err(format!(
            "it exports [{}], not the `transform` or `window` world of sluice:plugin@0.1",
            exports.join(", ")
        ));
    };
    let meta = read_metadata(engine, &component, kind)?;
    let version = Version::parse(&meta.version)
        .map_err(|e| format!("its metadata version `{}` is not semver: {e}", meta.version))?;
    Ok(Plugin {
        name: meta.name,
        version,
        kind,
        description: meta.description,
        sample_config: meta.sample_config,
        hash,
        path: path.to_owned(),
        component,
    })
}

fn read_metadata(
    engine: &PluginEngine,
    component: &Component,
    kind: Kind,
) -> Result<Metadata, String> {
    let mut store = Store::new(engine.engine(), ());
    store.set_epoch_deadline(1000);
    let linker = super::sandbox::linker(engine, component).map_err(|e| format!("{e:#}"))?;
    let incompatible = |e: wasmtime::Error| PluginError::incompatible("plugin", "", &e).to_string();
    let meta = match kind {
        Kind::Transform => Transform::instantiate(&mut store, component, &linker)
            .map_err(incompatible)?
            .call_metadata(&mut store),
        Kind::Window => Window::instantiate(&mut store, component, &linker)
            .map_err(incompatible)?
            .call_metadata(&mut store),
    };
    meta.map_err(|e| format!("its `metadata` call failed: {e:#}"))
}
