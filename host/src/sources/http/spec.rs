//! `source: { http: {...} }`: the spec of the webhook source, its policy checks and how it
//! starts.

use serde::Deserialize;

use super::HttpSourceSettings;
use crate::sources::{SourceConfig, SourceHandle, StartContext};
use crate::spec::ByteSize;

/// `source: { http: { listen: 127.0.0.1:8090, path: /ingest/turnstile } }` — records POSTed
/// one per line or as a JSON array; answered only once processed and written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceSpec {
    /// `listen: 127.0.0.1:8090`
    #[serde(default = "default_http_listen")]
    pub listen: std::net::SocketAddr,
    /// `path: /ingest/turnstile`
    pub path: String,
    /// `max_body: 4MiB`
    #[serde(default)]
    pub max_body: Option<ByteSize>,
    /// `max_records_per_s: 50000` (over it: 429)
    #[serde(default)]
    pub max_records_per_s: Option<u64>,
}

fn default_http_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8090))
}

impl SourceConfig for HttpSourceSpec {
    fn start(&self, ctx: StartContext<'_>) -> anyhow::Result<(SourceHandle, Option<String>)> {
        let settings = HttpSourceSettings {
            listen: self.listen,
            path: self.path.clone(),
            max_body_bytes: self.max_body.map_or(4 << 20, |b| b.0),
            max_records_per_s: self.max_records_per_s,
            max_records: ctx.batch.max_records,
            max_wait: ctx.batch.max_wait.0,
            ack_timeout: std::time::Duration::from_secs(30),
        };
        let (handle, bound) = super::start(settings, ctx.stop)?;
        tracing::info!(pipeline = %ctx.pipeline, "Accepting records on http://{bound}{}.", self.path);
        Ok((handle, None))
    }

    fn identity(&self, _pipeline: &str) -> String {
        format!("http {}", self.path)
    }

    fn status(&self, _pipeline: &str) -> serde_json::Value {
        serde_json::json!({ "listen": self.listen, "path": self.path })
    }

    fn replayable(&self) -> bool {
        false
    }

    fn check_policy(
        &self,
        policy: &crate::policy::Policy,
        refuse: &mut dyn FnMut(&[&str], String),
    ) {
        if !self.listen.ip().is_loopback() && !policy.public_listeners {
            refuse(
                &["source", "http", "listen"],
                format!(
                    "listening on {} is refused for specs from the API: only loopback \
                     addresses are granted (the operator allows others with \
                     --api-grant-public-listeners)",
                    self.listen
                ),
            );
        }
    }
}
