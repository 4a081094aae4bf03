//! The pipelines folder on disk: content hashes, atomic writes (temporary file + rename, so
//! the watcher never reads half a file the API wrote) and removal.

use std::path::Path;

use anyhow::Context;

/// Hex SHA-256 of a spec text.
pub fn hash(text: &str) -> String {
    crate::wasm::sha256_hex(text.as_bytes())
}

/// Writes `text` to `path` atomically: a hidden temporary file in the same folder, flushed,
/// then renamed over `path`.
pub fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let folder = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)
        .with_context(|| format!("Cannot create the pipelines folder `{}`.", folder.display()))?;
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let temp = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        anyhow::anyhow!("Cannot write the spec file `{}`: {e}.", path.display())
    })
}

/// Removes `path`; a file already gone is fine.
pub fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(anyhow::anyhow!(
            "Cannot remove the spec file `{}`: {e}.",
            path.display()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        super::write_atomic(&path, "a: 1\n").unwrap();
        super::write_atomic(&path, "a: 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a: 2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
        super::remove(&path).unwrap();
        super::remove(&path).unwrap();
        assert!(!path.exists());
    }
}
