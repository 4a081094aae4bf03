//! Real local Kafka-protocol brokers: a [`LocalBroker`] child process for tests and tools,
//! and the `brokers: embedded` broker of the pipeline spec ([`resolve`], [`stop_embedded`]).
//!
//! Both run [tansu](https://crates.io/crates/tansu) (an Apache Kafka-compatible broker) on a
//! free 127.0.0.1 port with in-memory storage, because librdkafka's mock cluster stalls long
//! before the three shared MTA weeks are consumed (DESIGN §7). The binary is looked up in
//! `$SLUICE_TANSU`, then `tansu` on `PATH`, then `~/.cargo/bin/tansu`. The broker's own log
//! level is `$SLUICE_TANSU_LOG` (a `RUST_LOG` filter, default `warn`).
//!
//! tansu 0.6.0 quirks that clients must respect: topics are never auto-created (producing to
//! a missing topic waits until the message times out), and the memory storage serves a fetch
//! only from batch starts at or after the fetch offset, so resuming at an offset inside a
//! batch silently skips the rest of that batch; fetch from
//! [`crate::produce::MAX_BATCH_RECORDS`] earlier and drop what precedes the offset. The
//! sqlite storage has neither problem but produces ~10x slower.
//!
//! All functions here block (process start and readiness probes take up to a few seconds);
//! call them from `tokio::task::spawn_blocking` inside an async runtime if that matters.

mod embedded;
mod launch;
mod local;

use std::path::PathBuf;
use std::time::Duration;

pub use embedded::{EMBEDDED, resolve, stop_embedded};
pub use local::LocalBroker;

/// The pinned tansu version this module is tested with.
pub const TANSU_VERSION: &str = "0.6.0";

/// Why a local broker could not be started or reached.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "The tansu broker binary was not found ({searched}). sluice runs tansu as its local \
         Kafka broker for `brokers: embedded` and in tests. Install it with `make tools`, or \
         `cargo install tansu --version {TANSU_VERSION} --locked --features dynostore,libsql`, \
         or set SLUICE_TANSU to the path of a tansu binary."
    )]
    TansuMissing { searched: String },
    #[error(
        "Cannot start the tansu broker {binary}: {source}. Check that the file is an executable tansu binary."
    )]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "The tansu broker exited with {status} before it answered on {bootstrap}. Its log is \
         {log}; it ends with:\n{tail}"
    )]
    Exited {
        status: String,
        bootstrap: String,
        log: PathBuf,
        tail: String,
    },
    #[error(
        "The tansu broker on {bootstrap} did not answer a Kafka metadata request within \
         {waited:?} ({reason}). Its log is {log}; it ends with:\n{tail}"
    )]
    NotReady {
        bootstrap: String,
        waited: Duration,
        reason: String,
        log: PathBuf,
        tail: String,
    },
    #[error(
        "SLUICE_EMBEDDED_STORAGE={value} is not a storage the embedded broker knows. Use `memory` (the default) or `sqlite`."
    )]
    Storage { value: String },
    #[error(
        "Cannot use the broker state directory {path}: {source}. Check that it is a writable directory."
    )]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
}
