//! [`LocalBroker`]: a tansu child process owned by this process, for tests and tools.

use std::path::{Path, PathBuf};
use std::process::Child;

use super::launch::{self, LaunchOptions, MEMORY};

/// A tansu broker running as a child of this process on a free 127.0.0.1 port, with
/// in-memory storage. It is killed on [`LocalBroker::stop`] and on drop; if this process is
/// killed outright the child outlives it.
pub struct LocalBroker {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
    /// tansu's storage URL (`memory://…`, or a `sqlite://` file next to the log).
    storage: String,
    /// Whether the log is ours to delete (it lives in the temp dir).
    temporary_log: bool,
}

impl LocalBroker {
    /// Starts a broker logging to a file in the system temp dir (deleted on stop) and waits
    /// until it answers a metadata request. Blocks for up to ~30 s.
    pub fn start() -> anyhow::Result<LocalBroker> {
        let name = format!("sluice-tansu-{}-{}.log", std::process::id(), unique());
        Self::start_logging_to(&std::env::temp_dir().join(name), true)
    }

    /// Like [`LocalBroker::start`], logging to `dir/tansu.log` (kept after stop).
    pub fn start_in(dir: &Path) -> anyhow::Result<LocalBroker> {
        std::fs::create_dir_all(dir).map_err(|source| super::BrokerError::StateDir {
            path: dir.to_owned(),
            source,
        })?;
        Self::start_logging_to(&dir.join("tansu.log"), false)
    }

    /// A broker whose topics survive [`LocalBroker::restart`]: sqlite storage in `dir`
    /// (with its log, `dir/tansu.log`).
    pub fn start_persistent(dir: &Path) -> anyhow::Result<LocalBroker> {
        std::fs::create_dir_all(dir).map_err(|source| super::BrokerError::StateDir {
            path: dir.to_owned(),
            source,
        })?;
        Self::launch(&dir.join("tansu.log"), false, "sqlite://tansu.db", None)
    }

    fn start_logging_to(log: &Path, temporary_log: bool) -> anyhow::Result<LocalBroker> {
        Self::launch(log, temporary_log, MEMORY, None)
    }

    fn launch(
        log: &Path,
        temporary_log: bool,
        storage: &str,
        port: Option<u16>,
    ) -> anyhow::Result<LocalBroker> {
        let options = LaunchOptions {
            storage,
            log,
            append: port.is_some(),
            detached: false,
            port,
        };
        let launched = launch::launch(&options)?;
        tracing::debug!("Started a local tansu broker on port {}.", launched.port);
        Ok(LocalBroker {
            child: Some(launched.child),
            port: launched.port,
            log: log.to_owned(),
            storage: storage.to_owned(),
            temporary_log,
        })
    }

    /// Kills the broker (as a crash would) and starts it again on the same port with the
    /// same storage; waits until it answers.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut again = Self::launch(&self.log, false, &self.storage, Some(self.port))?;
        self.child = again.child.take(); // `again` drops with nothing left to stop
        Ok(())
    }

    /// The bootstrap address, `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        launch::bootstrap(self.port)
    }

    /// The file receiving the broker's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of the broker's log (for test failure messages).
    pub fn log_tail(&self) -> String {
        launch::log_tail(&self.log)
    }

    /// Kills the broker and waits for it to exit. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if self.temporary_log {
                let _ = std::fs::remove_file(&self.log);
            }
        }
    }
}

impl Drop for LocalBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A per-process counter so that several brokers of one process get distinct log files.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
