//! The on-disk compile cache: compiled components keyed by the component's SHA-256 and the
//! engine's compatibility hash. The folder is private to the host (0700, files 0600); an
//! entry is written only for a component that passed validation ([`CompileCache::store`]
//! is called after it), through a uniquely named temporary file renamed into place (so
//! concurrent writers, threads or hosts sharing a state folder, never expose a partial
//! file); and the folder is kept under [`MAX_BYTES`] by evicting the least recently used
//! entries (loading an entry marks it used).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use wasmtime::Engine;
use wasmtime::component::Component;

/// Bytes of compiled components kept at most.
pub const MAX_BYTES: u64 = 1 << 30;

/// Suffix of cache entries.
const EXTENSION: &str = "cwasm";

/// The cache folder of one engine.
pub struct CompileCache {
    dir: PathBuf,
    tag: String,
    max_bytes: u64,
}

impl CompileCache {
    /// The cache in `dir` for an engine whose compatibility tag is `tag`.
    pub fn new(dir: PathBuf, tag: String) -> Self {
        Self {
            dir,
            tag,
            max_bytes: MAX_BYTES,
        }
    }

    fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}-{}.{EXTENSION}", self.tag))
    }

    /// Whether the component with this hash is cached.
    pub fn contains(&self, hash: &str) -> bool {
        self.path(hash).exists()
    }

    /// The cached component of `hash`, if any (an unreadable entry is removed).
    pub fn load(&self, engine: &Engine, hash: &str) -> Option<Component> {
        let path = self.path(hash);
        if !path.exists() {
            return None;
        }
        match deserialize(engine, &path) {
            Ok(component) => {
                // Used now: the last to be evicted.
                if let Ok(file) = std::fs::File::options().append(true).open(&path) {
                    let _ = file.set_modified(SystemTime::now());
                }
                Some(component)
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error,
                    "Removing an unreadable compile cache entry.");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Writes the compiled `component` of `hash` (a component that passed validation), then
    /// evicts old entries over the size cap. Failures are logged: the cache is an
    /// optimisation.
    pub fn store(&self, component: &Component, hash: &str) {
        let path = self.path(hash);
        if path.exists() {
            return;
        }
        if let Err(error) = self.write(component, &path) {
            tracing::warn!(path = %path.display(), %error, "Could not write the compile cache.");
            return;
        }
        if let Err(error) = evict(&self.dir, self.max_bytes) {
            tracing::warn!(dir = %self.dir.display(), %error, "Could not trim the compile cache.");
        }
    }

    fn write(&self, component: &Component, path: &Path) -> anyhow::Result<()> {
        private_dir(&self.dir)?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let bytes = component.serialize()?;
        let result = write_private(&tmp, &bytes).and_then(|()| Ok(std::fs::rename(&tmp, path)?));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

#[allow(
    unsafe_code,
    reason = "the cache folder is private to this host and written only by it"
)]
fn deserialize(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: the file was produced by `Component::serialize` of an engine with the same
    // compatibility hash (part of the file name) and lives in the host's private (0700)
    // cache folder.
    unsafe { Component::deserialize_file(engine, path) }.map_err(anyhow::Error::from)
}

/// Creates `dir` as 0700, and narrows it to 0700 if it exists with wider permissions.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Writes `bytes` to a new file readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// Deletes the least recently used entries of `dir` until they take at most `max_bytes`.
fn evict(dir: &Path, max_bytes: u64) -> std::io::Result<()> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        let meta = entry.metadata()?;
        let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        entries.push((used, meta.len(), path));
    }
    let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
    entries.sort();
    for (_, len, path) in entries {
        if total <= max_bytes {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            tracing::info!(path = %path.display(), "Evicted a compile cache entry.");
            total -= len;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn eviction_keeps_the_most_recently_used_within_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        for (n, age) in [("a", 30), ("b", 20), ("c", 10)] {
            let path = dir.path().join(format!("{n}.{EXTENSION}"));
            std::fs::write(&path, vec![0u8; 100]).unwrap();
            let file = std::fs::File::options().append(true).open(&path).unwrap();
            file.set_modified(now - Duration::from_secs(age)).unwrap();
        }
        std::fs::write(dir.path().join("other.txt"), vec![0u8; 1000]).unwrap();
        evict(dir.path(), 250).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                format!("b.{EXTENSION}"),
                format!("c.{EXTENSION}"),
                "other.txt".into()
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_folder_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&cache).unwrap();
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
