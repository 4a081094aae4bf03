//! Writes to an object store that survive an outage: each `put` is retried with exponential
//! backoff while the error is transient, for at most `retry: { max_elapsed }` (default 5
//! minutes), which blocks the writer and so gives backpressure to the source. A connector's
//! [`Health`] says `degraded` (with the last error and the retry count) while it retries,
//! and `failed` with the reason once it gives up or meets a permanent error.
//!
//! Transient: I/O errors of a local store (a folder missing, not writable or not a folder
//! for a while), network errors and HTTP 5xx/408/429 left after object_store's own retries,
//! denied permissions (they may be granted again). Permanent: invalid paths and
//! configuration, unsupported operations, HTTP 4xx other than 408 and 429.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use serde::Serialize;

/// How long a write keeps retrying unless the spec says otherwise.
pub const DEFAULT_MAX_ELAPSED: Duration = Duration::from_secs(300);
/// Wait after the first failed attempt; doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(200);
/// Longest wait between attempts.
const MAX_DELAY: Duration = Duration::from_secs(10);

/// Whether an error may go away by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Retry with backoff.
    Transient,
    /// Fail at once.
    Permanent,
}

/// Classifies an object_store error (see the module doc).
pub fn classify(error: &object_store::Error) -> Class {
    use object_store::Error as E;
    match error {
        E::NotSupported { .. }
        | E::NotImplemented
        | E::InvalidPath { .. }
        | E::UnknownConfigurationKey { .. }
        | E::Precondition { .. }
        | E::NotModified { .. }
        | E::AlreadyExists { .. } => Class::Permanent,
        E::Generic { source, .. } if client_error(source.as_ref()) => Class::Permanent,
        _ => Class::Transient,
    }
}

/// Whether the error chain holds an HTTP 4xx status other than 408 (timeout) and 429
/// (throttled). object_store does not export its HTTP error type, so the text is read.
fn client_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if let Some(pos) = text.find("status code: 4") {
            let code = &text[pos + "status code: ".len()..];
            return !(code.starts_with("408") || code.starts_with("429"));
        }
        next = e.source();
    }
    false
}

/// The state of a connector that writes with retries, as its status shows it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HealthStatus {
    /// `ok`, `degraded` (retrying) or `failed`.
    pub state: &'static str,
    /// Objects written.
    pub objects_written: u64,
    /// Attempts retried.
    pub retries: u64,
    /// The last error, retried or not.
    pub last_error: Option<String>,
    /// When it happened (RFC 3339, UTC).
    pub last_error_at: Option<String>,
}

/// Shared, updated health of one connector.
#[derive(Debug)]
pub struct Health {
    status: Mutex<HealthStatus>,
    max_elapsed: Duration,
}

impl Health {
    /// A healthy connector whose writes retry for up to `max_elapsed`.
    pub fn new(max_elapsed: Option<Duration>) -> Self {
        Self {
            status: Mutex::new(HealthStatus {
                state: "ok",
                ..Default::default()
            }),
            max_elapsed: max_elapsed.unwrap_or(DEFAULT_MAX_ELAPSED),
        }
    }

    /// The current status.
    pub fn status(&self) -> HealthStatus {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn error(&self, state: &'static str, error: String, retried: bool) {
        let mut status = self.lock();
        status.state = state;
        status.retries += u64::from(retried);
        status.last_error = Some(error);
        status.last_error_at =
            Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string());
    }

    /// Writes `body` at `path` of `store`, retrying transient errors with backoff. `what`
    /// names the connector in messages (`the lake sink of pipeline `x``).
    pub async fn put(
        &self,
        store: &dyn ObjectStore,
        path: &Path,
        body: PutPayload,
        what: &str,
    ) -> anyhow::Result<()> {
        self.put_mode(store, path, body, PutMode::Overwrite, what)
            .await
            .map(|_| ())
    }

    /// Creates `path` with `body` unless it exists (an atomic put-if-absent, as a Delta
    /// commit needs), retrying transient errors with backoff; false when it existed (also
    /// when an attempt that timed out had in fact created it).
    pub async fn create(
        &self,
        store: &dyn ObjectStore,
        path: &Path,
        body: PutPayload,
        what: &str,
    ) -> anyhow::Result<bool> {
        self.put_mode(store, path, body, PutMode::Create, what)
            .await
    }

    async fn put_mode(
        &self,
        store: &dyn ObjectStore,
        path: &Path,
        body: PutPayload,
        mode: PutMode,
        what: &str,
    ) -> anyhow::Result<bool> {
        let started = Instant::now();
        let mut delay = FIRST_DELAY;
        let mut attempt = 1u32;
        loop {
            let options = PutOptions::from(mode.clone());
            let error = match store.put_opts(path, body.clone(), options).await {
                Ok(_) => {
                    let mut status = self.lock();
                    status.state = "ok";
                    status.objects_written += 1;
                    return Ok(true);
                }
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) if mode == PutMode::Create => return Ok(false),
                Err(e) => e,
            };
            let why = error.to_string();
            if classify(&error) == Class::Permanent {
                self.error("failed", why.clone(), false);
                anyhow::bail!(
                    "{what} could not write `{path}`, and does not retry as the error is \
                     permanent: {why}"
                );
            }
            if started.elapsed() + delay > self.max_elapsed {
                self.error("failed", why.clone(), false);
                anyhow::bail!(
                    "{what} could not write `{path}` in {attempt} attempts over {} s (the \
                     bound is retry.max_elapsed = {:?}): {why}",
                    started.elapsed().as_secs(),
                    self.max_elapsed
                );
            }
            tracing::warn!(
                "{what} could not write `{path}` ({why}); it retries in {delay:?} (attempt \
                 {attempt})."
            );
            self.error("degraded", why, true);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_DELAY);
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(text: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: text.to_owned().into(),
        }
    }

    #[test]
    fn classifies_errors() {
        assert_eq!(
            classify(&object_store::Error::NotImplemented),
            Class::Permanent
        );
        let forbidden = generic("Server returned non-2xx status code: 403 Forbidden: denied");
        assert_eq!(classify(&forbidden), Class::Permanent);
        let throttled = generic("Server returned non-2xx status code: 429 Too Many Requests");
        assert_eq!(classify(&throttled), Class::Transient);
        let io = generic("Unable to open file /lake/x: Not a directory (os error 20)");
        assert_eq!(classify(&io), Class::Transient);
    }

    #[tokio::test]
    async fn a_store_that_comes_back_is_written_and_a_bound_fails() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lake");
        std::fs::create_dir(&root).unwrap();
        let store = object_store::local::LocalFileSystem::new_with_prefix(&root).unwrap();
        // The folder is replaced by a file: every write fails until it is back.
        std::fs::remove_dir(&root).unwrap();
        std::fs::write(&root, b"not a folder").unwrap();
        let health = Health::new(Some(Duration::from_millis(500)));
        let path = Path::from("a/b.csv");
        let err = health
            .put(
                &store,
                &path,
                PutPayload::from_static(b"x"),
                "the test sink",
            )
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("attempts"), "{err:#}");
        assert_eq!(health.status().state, "failed");
        let health = Health::new(None);
        let restore = async {
            while health.status().retries == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(health.status().state, "degraded");
            std::fs::remove_file(&root).unwrap();
            std::fs::create_dir(&root).unwrap();
        };
        let put = health.put(
            &store,
            &path,
            PutPayload::from_static(b"x"),
            "the test sink",
        );
        let (written, ()) = tokio::join!(put, restore);
        written.unwrap();
        assert_eq!(std::fs::read(root.join("a/b.csv")).unwrap(), b"x");
        let status = health.status();
        assert_eq!((status.state, status.objects_written), ("ok", 1));
        assert!(status.last_error.is_some());
    }
}
