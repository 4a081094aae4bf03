//! Opening an object store from a URL (`file://`, `s3://`, `gs://`, `az://`, `memory://`)
//! and turning keys into object paths. Shared by the lake sink and the lake dead-letter
//! destination.

use std::sync::Arc;

use anyhow::Context;
use object_store::ObjectStore;
use object_store::path::Path;

/// An object store with the prefix its URL names.
#[derive(Clone, Debug)]
pub struct Location {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// Prefix under which every key is written.
    pub prefix: Vec<String>,
}

/// Opens the store of `url`. Relative `file://` URLs (`file://./lake`) are resolved against
/// the current directory, which is created if missing. Cloud credentials come from the
/// usual environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
pub fn open(url: &str) -> anyhow::Result<Location> {
    if let Some(rest) = url.strip_prefix("file://") {
        let dir = std::env::current_dir()?.join(rest);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
            .with_context(|| format!("cannot open `{}` as a local object store", dir.display()))?;
        return Ok(Location {
            store: Arc::new(store),
            prefix: Vec::new(),
        });
    }
    if url.starts_with("memory://") {
        let store = object_store::memory::InMemory::new();
        return Ok(Location {
            store: Arc::new(store),
            prefix: Vec::new(),
        });
    }
    let parsed = url::Url::parse(url).with_context(|| format!("`{url}` is not a URL"))?;
    let mut options: Vec<(String, String)> = std::env::vars()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    // Put-if-absent (a Delta commit) with S3's native conditional writes (`If-None-Match`),
    // unless the environment chooses another mode (AWS_CONDITIONAL_PUT=dynamo:...).
    if parsed.scheme() == "s3" && !options.iter().any(|(k, _)| k == "aws_conditional_put") {
        options.push(("aws_conditional_put".into(), "etag".into()));
    }
    let (store, prefix) = object_store::parse_url_opts(&parsed, options).with_context(|| {
        format!(
            "`{url}` is not a supported object store URL (file://, s3://, gs://, az://, memory://)"
        )
    })?;
    let prefix = prefix.parts().map(|p| p.as_ref().to_owned()).collect();
    Ok(Location {
        store: Arc::from(store),
        prefix,
    })
}

impl Location {
    /// The object path of `key`: segments separated by `/`, each already percent-encoded
    /// where needed, used as they are (object and file names are exactly the key).
    pub fn path(&self, key: &str) -> anyhow::Result<Path> {
        let segments: Vec<&str> = self
            .prefix
            .iter()
            .map(String::as_str)
            .chain(key.split('/'))
            .collect();
        Ok(Path::parse(segments.join("/"))?)
    }
}
