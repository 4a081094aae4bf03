//! Trust levels of specs. A spec in the operator's pipelines folder is trusted: it may read
//! any file, reach any host and interpolate any environment variable. A spec sent through
//! the REST API gets only what the host's [`Policy`] grants (`sluice run --api-grant-…` options):
//!
//! - `file://` URLs (lake, dead letters, checkpoints) and `file` source paths inside the
//!   granted roots (default: the state folder), after resolving `..` and symbolic links;
//! - object stores (the bucket or host of `s3://`, `gs://`, `az://`, `http(s)://`),
//!   PostgreSQL hosts and Kafka brokers among the granted hosts (default: loopback; the
//!   embedded broker is always allowed);
//! - `http` sources listening on loopback only, unless public listeners are granted;
//! - Kafka `properties` keys from an allowlist (so a spec cannot repoint `bootstrap.servers`
//!   or take over commits);
//! - `${VAR}` only for the variables the policy names.
//!
//! [`Policy::check`] lists every refusal with its place in the spec and the option that
//! grants it; the API answers 403 with them.

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use crate::sinks::Endpoint;
use crate::spec::{DlqSpec, Loaded, SpecError};

/// Kafka properties an API spec may set by default: client tuning that changes neither
/// where the client connects, nor who it is, nor how offsets are committed.
pub const SAFE_KAFKA_PROPERTIES: [&str; 12] = [
    "fetch.min.bytes",
    "fetch.wait.max.ms",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "linger.ms",
    "batch.size",
    "batch.num.messages",
    "compression.type",
    "message.max.bytes",
    "statistics.interval.ms",
];

/// What a spec from the API may use.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Folders that `file://` URLs and `file` sources may use.
    pub file_roots: Vec<PathBuf>,
    /// Hosts that object stores, PostgreSQL and Kafka may be at (names or IP addresses).
    pub hosts: Vec<String>,
    /// Kafka `properties` keys that may be set.
    pub kafka_properties: Vec<String>,
    /// Environment variables that may be interpolated.
    pub env: Vec<String>,
    /// Whether `http` sources may listen on other than loopback addresses.
    pub public_listeners: bool,
}

impl Policy {
    /// The default: the state folder, loopback hosts, the safe Kafka properties, no
    /// variables, loopback listeners.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            file_roots: vec![state_dir.to_owned()],
            hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            kafka_properties: SAFE_KAFKA_PROPERTIES.map(String::from).to_vec(),
            env: Vec::new(),
            public_listeners: false,
        }
    }

    /// Whether `${name}` may be interpolated in an API spec.
    pub fn allows_env(&self, name: &str) -> bool {
        self.env.iter().any(|n| n == name)
    }

    /// Every use in `loaded` that this policy does not grant.
    pub fn check(&self, loaded: &Loaded) -> Vec<SpecError> {
        let mut refused = Vec::new();
        let mut refuse = |path: &[&str], message: String| refused.push(loaded.error(path, message));
        let spec = &loaded.spec;
        spec.source.config().check_policy(self, &mut refuse);
        for (i, sink) in spec.sinks.iter().enumerate() {
            let i = i.to_string();
            let kind = sink.key();
            let result = sink
                .config()
                .endpoints()
                .into_iter()
                .try_for_each(|e| match e {
                    Endpoint::ObjectStore { field, url } => self.url(url).map_err(|m| (field, m)),
                    Endpoint::Postgres { field, url } => self.postgres(url).map_err(|m| (field, m)),
                    Endpoint::Brokers { field, brokers } => {
                        self.brokers(brokers).map_err(|m| (field, m))
                    }
                });
            if let Err((field, m)) = result {
                refuse(&["sinks", &i, kind, field], m);
            }
        }
        match &spec.errors.dlq {
            Some(DlqSpec::Lake(lake)) => {
                if let Err(m) = self.url(&lake.url) {
                    refuse(&["errors", "dlq", "lake", "url"], m);
                }
            }
            Some(DlqSpec::Kafka(kafka)) => {
                if let Some(Err(m)) = kafka.brokers.as_deref().map(|b| self.brokers(b)) {
                    refuse(&["errors", "dlq", "kafka", "brokers"], m);
                }
            }
            None => {}
        }
        let checkpoint = spec
            .checkpoint
            .url
            .as_deref()
            .filter(|u| !u.trim().is_empty());
        if let Some(Err(m)) = checkpoint.map(|url| self.url(url)) {
            refuse(&["checkpoint", "url"], m);
        }
        refused
    }

    /// An object store URL.
    fn url(&self, url: &str) -> Result<(), String> {
        if let Some(path) = url.strip_prefix("file://") {
            return self.file(path);
        }
        if url.starts_with("memory://") {
            return Ok(());
        }
        let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
        let host = parsed.host_str().unwrap_or("");
        self.host(
            host,
            &format!("the object store `{}://{host}`", parsed.scheme()),
        )
    }

    /// A file path (relative to the working folder), resolved, inside a granted root.
    pub(crate) fn file(&self, path: &str) -> Result<(), String> {
        let wanted = resolve(Path::new(path));
        if self
            .file_roots
            .iter()
            .any(|root| wanted.starts_with(resolve(root)))
        {
            return Ok(());
        }
        let roots: Vec<String> = self
            .file_roots
            .iter()
            .map(|r| format!("`{}`", r.display()))
            .collect();
        Err(format!(
            "`{path}` ({}) is outside the folders granted to specs from the API ({}); the \
             operator grants a folder with --api-grant-files DIR",
            wanted.display(),
            roots.join(", ")
        ))
    }

    /// Kafka bootstrap servers (`host:port,...` or `embedded`).
    pub(crate) fn brokers(&self, brokers: &str) -> Result<(), String> {
        if brokers.trim() == "embedded" {
            return Ok(());
        }
        for server in brokers.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let server = server.split_once("://").map_or(server, |(_, rest)| rest);
            self.host(host_of(server), &format!("the Kafka broker `{server}`"))?;
        }
        Ok(())
    }

    /// A PostgreSQL URL or `key=value` string (empty: the sink is skipped).
    fn postgres(&self, url: &str) -> Result<(), String> {
        if url.trim().is_empty() {
            return Ok(());
        }
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| format!("the PostgreSQL URL is not valid ({e})"))?;
        for host in config.get_hosts() {
            match host {
                tokio_postgres::config::Host::Tcp(name) => {
                    self.host(name, &format!("the PostgreSQL host `{name}`"))?;
                }
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => {
                    return Err(format!(
                        "the PostgreSQL socket `{}` is refused for specs from the API; use a \
                         granted host",
                        path.display()
                    ));
                }
            }
        }
        Ok(())
    }

    fn host(&self, host: &str, what: &str) -> Result<(), String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let granted = self.hosts.iter().any(|h| h.eq_ignore_ascii_case(bare))
            || (bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
                && self.hosts.iter().any(|h| h == "127.0.0.1"));
        if granted {
            Ok(())
        } else {
            Err(format!(
                "{what} is refused for specs from the API: `{bare}` is not a granted host (the \
                 operator grants it with --api-grant-host {bare})"
            ))
        }
    }
}

/// The host of `host:port` (`[v6]:port` included).
fn host_of(server: &str) -> &str {
    if let Some(rest) = server.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    server.rsplit_once(':').map_or(server, |(host, _)| host)
}

/// `path` made absolute against the working folder, `.` and `..` removed, and the longest
/// existing ancestor's symbolic links resolved.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut clean = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    let mut existing = clean.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (
            existing.file_name().map(|n| n.to_owned()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_owned();
            }
            _ => return clean,
        }
    }
    let mut real = existing.canonicalize().unwrap_or(existing);
    for name in rest.into_iter().rev() {
        real.push(name);
    }
    real
}

#[cfg(test)]
mod tests;
