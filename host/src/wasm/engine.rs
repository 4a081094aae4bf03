//! The wasmtime engine shared by every plugin: its configuration (epoch interruption for
//! per-call deadlines, no concurrency support, bounded stack), the epoch ticker thread, and
//! the on-disk compile cache ([`super::cache`]), used only for validated components.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use super::cache::CompileCache;

/// How often the epoch advances; per-call deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The engine plus its compile cache and the epoch ticker that keeps deadlines moving.
pub struct PluginEngine {
    engine: Engine,
    cache: Option<CompileCache>,
    stop: Arc<AtomicBool>,
    enforce_limits: bool,
}

impl PluginEngine {
    /// Builds the engine; `cache_dir` holds compiled components (`None`: compile every time).
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        Self::with_limits(cache_dir, true)
    }

    /// Builds the engine, with the sandbox limits enforced or (`false`, for benchmarks only:
    /// a plugin could then run forever or take all memory) not: no epoch deadline compiled
    /// into the code, no memory cap on stores.
    pub fn with_limits(cache_dir: Option<PathBuf>, enforce_limits: bool) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(enforce_limits)
            .concurrency_support(false)
            .max_wasm_stack(1 << 20)
            .parallel_compilation(true);
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("Could not configure the wasm engine.")?;
        let stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), stop.clone());
        let cache = cache_dir.map(|dir| CompileCache::new(dir, compat_tag(&engine)));
        Ok(Self {
            engine,
            cache,
            stop,
            enforce_limits,
        })
    }

    /// Whether plugin limits are enforced (always, except in benchmarks).
    pub fn enforces_limits(&self) -> bool {
        self.enforce_limits
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles `bytes` (a component), or loads the compiled artifact from the cache.
    /// Returns the component and the hex SHA-256 of `bytes`. A fresh compile is not cached:
    /// call [`PluginEngine::remember`] once the component passed validation.
    pub fn compile(&self, bytes: &[u8]) -> anyhow::Result<(Component, String)> {
        let hash = sha256_hex(bytes);
        if let Some(component) = self
            .cache
            .as_ref()
            .and_then(|c| c.load(&self.engine, &hash))
        {
            return Ok((component, hash));
        }
        Ok((Component::new(&self.engine, bytes)?, hash))
    }

    /// Caches the compiled `component` of `hash`, a component that passed validation.
    pub fn remember(&self, component: &Component, hash: &str) {
        if let Some(cache) = &self.cache {
            cache.store(component, hash);
        }
    }

    /// Whether the compiled artifact of the component with this hash is in the cache.
    pub fn is_cached(&self, hash: &str) -> bool {
        self.cache.as_ref().is_some_and(|c| c.contains(hash))
    }
}

/// The engine's compatibility hash, short: part of every cache entry's name.
fn compat_tag(engine: &Engine) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn spawn_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .expect("spawning a thread only fails when the OS is out of resources");
}

/// Hex SHA-256 of `bytes`: the identity of a plugin.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compile alone caches nothing; the entry appears once the component is remembered
    /// (after validation), and a second engine loads it.
    #[test]
    fn only_remembered_components_are_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let plugins = std::path::Path::new(sluice_plugin_artifacts::PLUGIN_DIR);
        let wasm = std::fs::read_dir(plugins)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "wasm"))
            .expect("a built plugin");
        let bytes = std::fs::read(wasm).unwrap();
        let engine = PluginEngine::new(Some(cache.clone())).unwrap();
        let (component, hash) = engine.compile(&bytes).unwrap();
        assert!(!engine.is_cached(&hash));
        engine.remember(&component, &hash);
        assert!(engine.is_cached(&hash));
        let names: Vec<String> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
        let again = PluginEngine::new(Some(cache)).unwrap();
        assert!(again.is_cached(&hash));
        again.compile(&bytes).unwrap();
    }
}
