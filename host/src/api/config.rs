//! The API options of `sluice run` (address, token, body limits) and starting the server
//! from them.

use std::net::SocketAddr;
use std::sync::Arc;

use super::guard::Access;
use super::server::Face;
use super::state::{ApiState, BodyLimits};
use crate::manager::Manager;

/// `sluice run` options of the HTTP API.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ApiArgs {
    /// Serve the dashboard and the API on this address (e.g. 127.0.0.1:8080).
    #[arg(long = "api", visible_alias = "listen", env = "SLUICE_LISTEN")]
    pub api: Option<SocketAddr>,
    /// Serve the Kafka Connect–compatible REST API on this address too (Connect's usual
    /// port is 8083): the same pipelines, token and limits as --api (docs/connect.md).
    #[arg(long = "connect-api", env = "SLUICE_CONNECT_API")]
    pub connect_api: Option<SocketAddr>,
    /// Bearer token required by every call that changes the host; without one the API
    /// listens on loopback addresses only.
    #[arg(long, env = "SLUICE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// A token that grants reads only (status, specs, live events, metrics); needs
    /// --api-token.
    #[arg(long, env = "SLUICE_API_READ_TOKEN", hide_env_values = true)]
    pub api_read_token: Option<String>,
    /// A host name the API answers to besides its IP address and localhost (the `Host`
    /// header; repeat for several). Other names are refused against DNS rebinding.
    #[arg(long = "api-host-name", value_name = "NAME")]
    pub api_host_names: Vec<String>,
    /// A folder that specs sent through the API may use (`file` sources, `file://` URLs);
    /// repeat for several. The state folder is always granted.
    #[arg(long = "api-grant-files", value_name = "DIR")]
    pub api_grant_files: Vec<std::path::PathBuf>,
    /// A host that specs sent through the API may reach (object store bucket or host,
    /// PostgreSQL, Kafka); repeat for several. Loopback is always granted.
    #[arg(long = "api-grant-host", value_name = "HOST")]
    pub api_grant_hosts: Vec<String>,
    /// A Kafka property that specs sent through the API may set, besides the client tuning
    /// keys granted by default; repeat for several.
    #[arg(long = "api-grant-kafka-property", value_name = "KEY")]
    pub api_grant_kafka_properties: Vec<String>,
    /// An environment variable that specs sent through the API may interpolate; repeat for
    /// several. None by default.
    #[arg(long = "api-grant-env", value_name = "VAR")]
    pub api_grant_env: Vec<String>,
    /// Lets specs sent through the API run `http` sources on non-loopback addresses.
    #[arg(long)]
    pub api_grant_public_listeners: bool,
    /// Most connections the API serves at once; more wait in the listen queue.
    #[arg(long, default_value_t = super::server::Limits::default().connections)]
    pub api_max_connections: usize,
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
        non_empty(self.api_token.as_deref())
    }

    /// What specs sent through the API may use, on a host whose state folder is `state_dir`.
    pub fn policy(&self, state_dir: &std::path::Path) -> crate::policy::Policy {
        let mut policy = crate::policy::Policy::new(state_dir);
        policy
            .file_roots
            .extend(self.api_grant_files.iter().cloned());
        policy.hosts.extend(self.api_grant_hosts.iter().cloned());
        policy
            .kafka_properties
            .extend(self.api_grant_kafka_properties.iter().cloned());
        policy.env.extend(self.api_grant_env.iter().cloned());
        policy.public_listeners = self.api_grant_public_listeners;
        policy
    }

    /// Who may call the API.
    pub fn access(&self) -> Access {
        Access {
            token: self.token(),
            read_token: non_empty(self.api_read_token.as_deref()),
            names: self
                .api_host_names
                .iter()
                .map(|n| n.trim().to_ascii_lowercase())
                .collect(),
            bound: None,
            connect: false,
        }
    }

    /// The API of `manager` under these options.
    pub fn state(&self, manager: &Manager) -> ApiState {
        ApiState {
            access: self.access(),
            server: super::server::Limits {
                connections: self.api_max_connections,
                ..Default::default()
            },
            limits: BodyLimits {
                spec_bytes: self.api_max_spec_bytes,
                plugin_bytes: self.api_max_plugin_bytes,
            },
            ..ApiState::new(manager)
        }
    }
}

fn non_empty(token: Option<&str>) -> Option<Arc<str>> {
    token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Arc::from)
}

/// Checks the address against the token rule and serves `state` on `addr`; returns the
/// bound address. A refused or busy address is a user error (`Err` with the reason).
pub async fn start(addr: SocketAddr, state: ApiState) -> anyhow::Result<SocketAddr> {
    start_face(addr, state, Face::Rest).await
}

/// [`start`] for either face of the host.
pub async fn start_face(
    addr: SocketAddr,
    state: ApiState,
    face: Face,
) -> anyhow::Result<SocketAddr> {
    let access = &state.access;
    if access.read_token.is_some() && access.token.is_none() {
        anyhow::bail!(
            "--api-read-token is set without --api-token: the calls that change the host \
             would need no token while reads need one. Set --api-token (or \
             SLUICE_API_TOKEN) too."
        );
    }
    super::auth::check_bind(addr, access.token.as_deref()).map_err(anyhow::Error::msg)?;
    super::server::serve_face(addr, state, face).await
}
