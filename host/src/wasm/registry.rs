//! The plugin registry: finds components in the plugin folders, checks that each is a
//! sandboxable component exporting a known world, reads its metadata, and resolves the
//! `name@version-requirement` references of pipeline specs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use semver::{Version, VersionReq};
use wasmtime::component::Component;

use super::PluginError;
use super::engine::PluginEngine;
use super::inspect::{LoadError, inspect, precheck};

/// Which world a plugin implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `sluice:plugin/transform`.
    Transform,
    /// `sluice:plugin/window`.
    Window,
}

impl Kind {
    /// The world's name: `transform` or `window`.
    pub fn world(self) -> &'static str {
        match self {
            Kind::Transform => "transform",
            Kind::Window => "window",
        }
    }
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
    /// The contract version it is built for.
    pub contract: super::inspect::Contract,
    /// One-line description.
    pub description: String,
    /// JSON Schema of its config, as text.
    pub config_schema: String,
    /// Sample config `init` accepts.
    pub sample_config: String,
    /// The host capabilities it imports (WASI interfaces such as `wasi:clocks/wall-clock`),
    /// each granted deny-all; empty for a plugin that imports none.
    pub capabilities: Vec<String>,
    /// Hex SHA-256 of the component bytes.
    pub hash: String,
    /// Size of the component file, in bytes.
    pub size: u64,
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

type ByName = BTreeMap<String, BTreeMap<Version, Arc<Plugin>>>;

/// Every plugin found, by name then version. Clones share the same plugins (the API adds
/// uploaded ones while pipelines resolve theirs).
#[derive(Default, Clone)]
pub struct Registry {
    plugins: Arc<RwLock<ByName>>,
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
                    Ok(plugin) => {
                        registry.insert(plugin);
                    }
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

    /// Adds a plugin, replacing one of the same name and version; returns it as stored.
    pub fn insert(&self, plugin: Plugin) -> Arc<Plugin> {
        let plugin = Arc::new(plugin);
        let mut plugins = self.write();
        let versions = plugins.entry(plugin.name.clone()).or_default();
        versions.insert(plugin.version.clone(), plugin.clone());
        plugin
    }

    /// Removes `name@version`; returns the plugin removed.
    pub fn remove(&self, name: &str, version: &Version) -> Option<Arc<Plugin>> {
        let mut plugins = self.write();
        let versions = plugins.get_mut(name)?;
        let removed = versions.remove(version);
        if versions.is_empty() {
            plugins.remove(name);
        }
        removed
    }

    /// The plugin `name@version` exactly.
    pub fn get(&self, name: &str, version: &Version) -> Option<Arc<Plugin>> {
        self.read().get(name)?.get(version).cloned()
    }

    /// Every version of `name`, oldest first.
    pub fn versions(&self, name: &str) -> Vec<Arc<Plugin>> {
        self.read()
            .get(name)
            .map(|v| v.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every plugin, sorted by name and version.
    pub fn all(&self) -> std::vec::IntoIter<Arc<Plugin>> {
        let plugins = self.read();
        let all: Vec<_> = plugins.values().flat_map(|v| v.values().cloned()).collect();
        all.into_iter()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ByName> {
        self.plugins.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ByName> {
        self.plugins.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves `name`, `name@1.2.3` or `name@^0.1` to the newest matching version.
    pub fn resolve(&self, reference: &str) -> Result<Arc<Plugin>, String> {
        let (name, req) = match reference.split_once('@') {
            Some((name, req)) => (name, req),
            None => (reference, "*"),
        };
        let req = VersionReq::parse(req)
            .map_err(|e| format!("`{req}` is not a version requirement ({e})"))?;
        let plugins = self.read();
        let Some(versions) = plugins.get(name) else {
            if let Some(reason) = self.refused.get(name) {
                return Err(format!("no plugin named `{name}` is installed: {reason}"));
            }
            let known: Vec<&str> = plugins.keys().map(String::as_str).collect();
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
    check_bytes(engine, bytes, path).map_err(|e| e.to_string())
}

/// [`load_bytes`] with a typed refusal.
pub fn check_bytes(engine: &PluginEngine, bytes: &[u8], path: &Path) -> Result<Plugin, LoadError> {
    precheck(bytes)?;
    let (component, hash) = engine
        .compile(bytes)
        .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
    let plugin = inspect(engine, component, hash, bytes.len() as u64, path)?;
    engine.remember(&plugin.component, &plugin.hash);
    Ok(plugin)
}
