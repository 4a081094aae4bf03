//! [`ApiState`]: what the routes share (the pipeline manager, the host's engine, plugin
//! registry, state folder and live hub, the API token and the body limits), cloned into
//! every handler.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use warp::Filter;

use super::guard::Access;
use crate::live::LiveHub;
use crate::manager::Manager;
use crate::wasm::{PluginEngine, Registry};

/// Request body limits, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// Pipeline specs (`--api-max-spec-bytes`).
    pub spec_bytes: u64,
    /// Plugin components (`--api-max-plugin-bytes`).
    pub plugin_bytes: u64,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            spec_bytes: 1 << 20,
            plugin_bytes: 64 << 20,
        }
    }
}

/// Everything a route handler may need. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    /// The wasm engine (with its compile cache).
    pub engine: Arc<PluginEngine>,
    /// The plugin registry, shared with the host (internally locked).
    pub registry: Registry,
    /// The host's state folder; uploaded plugins go to `<state>/plugins`.
    pub state_dir: Arc<Path>,
    /// Live events and latest status of each pipeline.
    pub live: LiveHub,
    /// Tokens and host names the API accepts (see [`super::guard`]).
    pub access: Access,
    /// Request body limits.
    pub limits: BodyLimits,
    /// Connection cap and timeouts of the server.
    pub server: super::server::Limits,
    /// Plugin uploads compiled at once (one).
    pub compiles: Arc<tokio::sync::Semaphore>,
    /// The pipeline manager: every pipeline of the host runs through it, `--once` too.
    pub manager: Manager,
}

impl ApiState {
    /// The state of `manager`'s API, with no token and default limits.
    pub fn new(manager: &Manager) -> Self {
        let host = manager.host();
        Self {
            engine: host.engine.clone(),
            registry: host.registry.clone(),
            state_dir: Arc::from(host.state_dir.as_path()),
            live: host.live.clone(),
            access: Access::default(),
            limits: BodyLimits::default(),
            server: Default::default(),
            compiles: Arc::new(tokio::sync::Semaphore::new(1)),
            manager: manager.clone(),
        }
    }

    /// A filter handing a clone of the state to a handler.
    pub fn with(
        &self,
    ) -> impl Filter<Extract = (ApiState,), Error = std::convert::Infallible> + Clone + use<> {
        let state = self.clone();
        warp::any().map(move || state.clone())
    }

    /// The folder of uploaded plugins.
    pub fn plugin_dir(&self) -> PathBuf {
        self.state_dir.join("plugins")
    }
}
