//! The API options of `sluice run` (address, token, body limits) and starting the server
//! from them.

use std::net::SocketAddr;
use std::sync::Arc;

use super::state::{ApiState, BodyLimits};
use crate::manager::Manager;

/// `sluice run` options of the HTTP API.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ApiArgs {
    /// Serve the dashboard and the API on this address (e.g. 127.0.0.1:8080).
    #[arg(long = "api", visible_alias = "listen", env = "SLUICE_LISTEN")]
    pub api: Option<SocketAddr>,
    /// Bearer token required by every call that changes the host; without one the API
    /// listens on loopback addresses only.
    #[arg(long, env = "SLUICE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Largest pipeline spec body accepted, in bytes.
    #[arg(long, default_value_t = BodyLimits::default().spec_bytes)]
    pub api_max_spec_bytes: u64,
    /// Largest plugin upload accepted, in bytes.
    #[arg(long, default_value_t = BodyLimits::default().plugin_bytes)]
    pub api_max_plugin_bytes: u64,
}

impl ApiArgs {
    /// The token, unless unset or empty.
    pub fn token(&self) -> Option<Arc<str>> {
        self.api_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Arc::from)
    }

    /// The API of `manager` under these options.
    pub fn state(&self, manager: &Manager) -> ApiState {
        ApiState {
            token: self.token(),
            limits: BodyLimits {
                spec_bytes: self.api_max_spec_bytes,
                plugin_bytes: self.api_max_plugin_bytes,
            },
            ..ApiState::new(manager)
        }
    }
}

/// Checks the address against the token rule and serves `state` on `addr`; returns the
/// bound address. A refused or busy address is a user error (`Err` with the reason).
pub async fn start(addr: SocketAddr, state: ApiState) -> anyhow::Result<SocketAddr> {
    super::auth::check_bind(addr, state.token.as_deref()).map_err(anyhow::Error::msg)?;
    super::serve(addr, state).await
}
