//! The wasmtime engine shared by every plugin: its configuration (epoch interruption for
//! per-call deadlines, no concurrency support, bounded stack), the epoch ticker thread, and
//! the on-disk compile cache keyed by content hash and engine compatibility.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// How often the epoch advances; per-call deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The engine plus its compile cache and the epoch ticker that keeps deadlines moving.
pub struct PluginEngine {
    engine: Engine,
    cache_dir: Option<PathBuf>,
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
        Ok(Self {
            engine,
            cache_dir,
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
    /// Returns the component and the hex SHA-256 of `bytes`.
    pub fn compile(&self, bytes: &[u8]) -> anyhow::Result<(Component, String)> {
        let hash = sha256_hex(bytes);
        let Some(dir) = &self.cache_dir else {
            return Ok((Component::new(&self.engine, bytes)?, hash));
        };
        let path = dir.join(format!("{hash}-{}.cwasm", self.compat_tag()));
        if path.exists() {
            match load_cached(&self.engine, &path) {
                Ok(component) => return Ok((component, hash)),
                Err(error) => tracing::warn!(path = %path.display(), %error,
                    "Ignoring an unreadable compile cache entry."),
            }
        }
        let component = Component::new(&self.engine, bytes)?;
        if let Err(error) = store_cached(&component, dir, &path) {
            tracing::warn!(path = %path.display(), %error, "Could not write the compile cache.");
        }
        Ok((component, hash))
    }

    /// Whether the compiled artifact of the component with this hash is in the cache.
    pub fn is_cached(&self, hash: &str) -> bool {
        self.cache_dir.as_ref().is_some_and(|dir| {
            dir.join(format!("{hash}-{}.cwasm", self.compat_tag()))
                .exists()
        })
    }

    fn compat_tag(&self) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }
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

#[allow(
    unsafe_code,
    reason = "the cache directory is written only by this host"
)]
fn load_cached(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: the file was produced by `Component::serialize` of an engine with the same
    // compatibility hash (part of the file name) and lives in the host's private cache.
    unsafe { Component::deserialize_file(engine, path) }.map_err(anyhow::Error::from)
}

fn store_cached(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, component.serialize()?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
