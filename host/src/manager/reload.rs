//! The hot-reloaded pipelines folder: polls the spec files (`*.yaml`, `*.yml`) every
//! [`POLL`] and compares each file's content hash with the last text the manager saw. A new
//! file is validated and started, a changed one validated and put in place of the running
//! version (an invalid one leaves the running version untouched, with its errors in the log
//! and the API), a removed one is stopped and forgotten. Files the API wrote are already
//! known by their hash, so they are not applied twice. Polling is portable and cheap for a
//! folder of small specs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Manager;

/// How often the folder is read.
pub const POLL: Duration = Duration::from_millis(500);

/// Reads the folder (or single spec file) `path` once and applies what changed.
pub async fn scan(manager: &Manager, path: &Path) {
    let files = crate::runtime::spec_files(path).unwrap_or_default();
    for file in &files {
        match std::fs::read_to_string(file) {
            Ok(text) => {
                if !manager.seen(file, &text) {
                    manager.apply_file(file, &text).await;
                }
            }
            // Removed between the listing and the read: the next scan sees it gone.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(file = %file.display(), %error, "Cannot read a spec file.");
            }
        }
    }
    let gone: Vec<PathBuf> = manager
        .known_files()
        .into_iter()
        .filter(|known| !files.contains(known) && !known.exists())
        .collect();
    for file in gone {
        manager.remove_file(&file).await;
    }
}

/// Scans `path` every [`POLL`] until `stop` is set.
pub async fn watch(manager: Manager, path: PathBuf, stop: Arc<AtomicBool>) {
    tracing::info!(folder = %path.display(), "Watching the pipelines folder for changes.");
    while !stop.load(Ordering::Relaxed) {
        scan(&manager, &path).await;
        tokio::time::sleep(POLL).await;
    }
}

impl Manager {
    /// True when `text` is what the manager last saw in `path`.
    pub fn seen(&self, path: &Path, text: &str) -> bool {
        let hash = super::files::hash(text);
        self.inner.seen.lock().expect("seen lock").get(path) == Some(&hash)
    }
}
