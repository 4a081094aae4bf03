//! Installing an uploaded plugin: check the bytes ([`precheck`], compile through the engine's
//! compile cache, [`inspect`]), run `init` with the plugin's sample config in the sandbox,
//! store the file by content hash in the uploads folder (`<state>/plugins`) and register it;
//! and removing an uploaded plugin. Every face of the host (the REST API, the Kafka Connect
//! surface) maps [`InstallError`] to its own answers.
//!
//! Versions: a `name@version` is immutable. Installing the same bytes again is a no-op;
//! other bytes under an installed `name@version` are refused: publish a new version, which is
//! installed beside the old one; specs asking for `name@^x.y` resolve to the newest match when
//! their pipeline (re)starts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sluice_plugin_sdk::rows::{Field, FieldType};

use super::{
    Kind, Limits, LoadError, Plugin, PluginEngine, PluginError, Registry, TransformInstance,
    WindowInstance, WindowSpec, inspect::inspect, inspect::precheck,
};

/// Serialises installs and removals (check, write, register).
static INSTALLS: Mutex<()> = Mutex::new(());

/// Why a plugin was not installed or removed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The bytes are not an acceptable plugin (not a component, a denied import, bad metadata).
    #[error(transparent)]
    Refused(#[from] LoadError),
    /// Other bytes are installed under the same `name@version`.
    #[error(
        "{id} is already installed with other content (sha256 {installed_hash}); a version is \
         immutable: give the new build a higher version in its metadata and upload it again"
    )]
    VersionExists {
        id: String,
        installed_hash: String,
        uploaded_hash: String,
    },
    /// `init` with the sample config trapped or ran into a sandbox limit.
    #[error("`init` with the sample config failed: {error}")]
    InitTrapped { config: String, error: PluginError },
    /// The component does not fit the world it claims.
    #[error("{0}")]
    Incompatible(PluginError),
    /// The file could not be written or removed.
    #[error("cannot {action} the plugin at {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// The plugin ships with the host (a plugin folder) and cannot be removed.
    #[error(
        "{0} ships with the host (a plugin folder), it was not uploaded; only uploaded plugins \
         can be deleted"
    )]
    Builtin(String),
    /// Pipelines use the plugin.
    #[error("{id} is used by the pipeline(s) {}; change or delete them first", pipelines.join(", "))]
    InUse { id: String, pipelines: Vec<String> },
}

/// What `init` said to the sample config.
#[derive(Clone, Debug)]
pub struct InitCheck {
    /// The config (`{}` without a sample).
    pub config: String,
    /// The input schema made up for the check.
    pub input: Vec<Field>,
    /// Whether `init` accepted it; an `err` answer does not refuse the plugin, since `init`
    /// may also refuse the made-up input schema.
    pub accepted: bool,
    /// `init`'s message when it did not accept.
    pub message: Option<String>,
}

/// A plugin that was installed (or already was, with the same bytes).
#[derive(Clone)]
pub struct Installed {
    pub plugin: Arc<Plugin>,
    /// False when the same bytes were already installed.
    pub created: bool,
    /// Whether the compiled code came from the compile cache.
    pub cached: bool,
    /// Compile time, milliseconds.
    pub compile_ms: f64,
    /// From receiving the bytes to usable, milliseconds.
    pub usable_ms: f64,
    /// The init check (none when it was already installed).
    pub init: Option<InitCheck>,
}

/// Installs plugins into `dir` and `registry`, compiling with `engine`.
pub struct Installer<'a> {
    pub engine: &'a PluginEngine,
    pub registry: &'a Registry,
    /// The uploads folder (`<state>/plugins`).
    pub dir: PathBuf,
}

impl Installer<'_> {
    /// Checks, stores and registers `bytes`.
    pub fn install(&self, bytes: &[u8]) -> Result<Installed, InstallError> {
        let started = Instant::now();
        precheck(bytes)?;
        let hash = super::sha256_hex(bytes);
        let cached = self.engine.is_cached(&hash);
        let compile = Instant::now();
        let (component, hash) = self
            .engine
            .compile(bytes)
            .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        let compile_ms = compile.elapsed().as_secs_f64() * 1e3;
        let mut plugin = inspect(
            self.engine,
            component,
            hash,
            bytes.len() as u64,
            Path::new(""),
        )?;
        let _guard = INSTALLS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = self.registry.get(&plugin.name, &plugin.version) {
            if existing.hash != plugin.hash {
                return Err(InstallError::VersionExists {
                    id: existing.id(),
                    installed_hash: existing.hash.clone(),
                    uploaded_hash: plugin.hash,
                });
            }
            return Ok(Installed {
                plugin: existing,
                created: false,
                cached: true,
                compile_ms,
                usable_ms: started.elapsed().as_secs_f64() * 1e3,
                init: None,
            });
        }
        let init = init_check(self.engine, &plugin)?;
        self.engine.remember(&plugin.component, &plugin.hash);
        plugin.path = self.store(&plugin, bytes)?;
        let installed = self.registry.insert(plugin);
        tracing::info!(plugin = %installed.id(), hash = %installed.hash,
            compile_ms = (compile_ms * 1000.0).round() / 1000.0, cached,
            "A plugin was uploaded and installed.");
        Ok(Installed {
            plugin: installed,
            created: true,
            cached,
            compile_ms,
            usable_ms: started.elapsed().as_secs_f64() * 1e3,
            init: Some(init),
        })
    }

    /// Whether `plugin` was uploaded (it lives in the uploads folder), not shipped with the
    /// host.
    pub fn is_uploaded(&self, plugin: &Plugin) -> bool {
        plugin.path.parent() == Some(self.dir.as_path())
    }

    /// Removes an uploaded plugin that none of `users` (the pipelines using it) needs.
    pub fn uninstall(&self, plugin: &Arc<Plugin>, users: Vec<String>) -> Result<(), InstallError> {
        let _guard = INSTALLS.lock().unwrap_or_else(|e| e.into_inner());
        if !self.is_uploaded(plugin) {
            return Err(InstallError::Builtin(plugin.id()));
        }
        if !users.is_empty() {
            return Err(InstallError::InUse {
                id: plugin.id(),
                pipelines: users,
            });
        }
        if let Err(error) = std::fs::remove_file(&plugin.path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            return Err(InstallError::Io {
                action: "remove",
                path: plugin.path.clone(),
                error,
            });
        }
        self.registry.remove(&plugin.name, &plugin.version);
        tracing::info!(plugin = %plugin.id(), "An uploaded plugin was deleted.");
        Ok(())
    }

    /// Writes the component to `<dir>/<name>@<version>-<hash12>.wasm` atomically.
    fn store(&self, plugin: &Plugin, bytes: &[u8]) -> Result<PathBuf, InstallError> {
        let path = self
            .dir
            .join(format!("{}-{}.wasm", plugin.id(), &plugin.hash[..12]));
        let tmp = self.dir.join(format!(".{}.upload", plugin.hash));
        std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|error| InstallError::Io {
                action: "store",
                path: path.clone(),
                error,
            })?;
        Ok(path)
    }
}

/// Runs `init` with the sample config (`{}` without one). A trap or a sandbox limit refuses
/// the plugin; an `err` answer is reported but does not refuse it.
fn init_check(engine: &PluginEngine, plugin: &Plugin) -> Result<InitCheck, InstallError> {
    let config = match plugin.sample_config.trim() {
        "" => "{}",
        text => text,
    };
    let id = plugin.id();
    let limits = Limits::default();
    let (input, result) = match plugin.kind {
        Kind::Transform => {
            let input = vec![field("value", FieldType::Bytes)];
            let made =
                TransformInstance::new(engine, &plugin.component, &id, &limits, config, &input);
            (input, made.map(drop))
        }
        Kind::Window => {
            let input = vec![field("timestamp", FieldType::Timestamp)];
            let window = WindowSpec {
                event_time: "timestamp".into(),
                size: 3_600_000,
                slide: 3_600_000,
            };
            let made = WindowInstance::new(
                engine,
                &plugin.component,
                &id,
                &limits,
                config,
                &input,
                &window,
            );
            (input, made.map(drop))
        }
    };
    let check = |accepted, message| InitCheck {
        config: config.to_owned(),
        input: input.clone(),
        accepted,
        message,
    };
    match result {
        Ok(()) => Ok(check(true, None)),
        Err(PluginError::Init { message, .. }) => Ok(check(false, Some(message))),
        Err(error @ (PluginError::Trap { .. } | PluginError::Limit { .. })) => {
            Err(InstallError::InitTrapped {
                config: config.to_owned(),
                error,
            })
        }
        Err(error) => Err(InstallError::Incompatible(error)),
    }
}

fn field(name: &str, ty: FieldType) -> Field {
    Field {
        name: name.into(),
        ty,
        nullable: false,
    }
}
