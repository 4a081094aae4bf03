//! `file` source: replays files (plain or gzip text), one record per line, in file order.
//! Partition 0; the offset is the line's position over all files. Used for backfills and
//! for running example pipelines without a broker.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{Origin, SourceBatch, SourceConfig, SourceHandle, StartContext};

/// `source: { file: {...} }` — replays files, one record per line.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceSpec {
    /// `paths: [data/week.csv.gz]` (plain or gzip text, read in order)
    pub paths: Vec<String>,
}

impl SourceConfig for FileSourceSpec {
    fn start(&self, ctx: StartContext<'_>) -> anyhow::Result<(SourceHandle, Option<String>)> {
        let paths: Vec<PathBuf> = self.paths.iter().map(PathBuf::from).collect();
        let skip = ctx.resume.and_then(|r| r.get(&0).copied()).unwrap_or(0);
        Ok((start(&paths, ctx.batch.max_records, skip, ctx.stop)?, None))
    }

    fn identity(&self, _pipeline: &str) -> String {
        format!("file {}", self.paths.join(","))
    }

    fn status(&self, _pipeline: &str) -> serde_json::Value {
        serde_json::json!({ "paths": self.paths })
    }

    fn check_policy(
        &self,
        policy: &crate::policy::Policy,
        refuse: &mut dyn FnMut(&[&str], String),
    ) {
        for (i, p) in self.paths.iter().enumerate() {
            if let Err(m) = policy.file(p) {
                refuse(&["source", "file", "paths", &i.to_string()], m);
            }
        }
    }
}

/// Starts reading `paths`; batches of at most `max_records` lines, from line `skip` (a
/// checkpoint's offset) on.
pub fn start(
    paths: &[PathBuf],
    max_records: usize,
    skip: i64,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<SourceHandle> {
    for path in paths {
        anyhow::ensure!(
            path.is_file(),
            "the file source cannot read `{}`: no such file",
            path.display()
        );
    }
    let (tx, rx) = mpsc::channel(4);
    let (commit_tx, _commit_rx) = std::sync::mpsc::channel();
    let owned = paths.to_vec();
    let thread = std::thread::Builder::new()
        .name("source-file".into())
        .spawn(move || read_all(&owned, max_records, skip, &tx, &stop))?;
    Ok(SourceHandle {
        batches: rx,
        commits: commit_tx,
        origin: Origin {
            topic: display(paths),
        },
        partitions: vec![0],
        owned: vec![0],
        ends: Default::default(),
        rewind: None,
        thread,
    })
}

fn display(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Opens a file, transparently gunzipping it when it starts with the gzip magic bytes.
pub fn open_text(path: &std::path::Path) -> anyhow::Result<Box<dyn BufRead + Send>> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic)?;
    let file = std::fs::File::open(path)?;
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(file),
        )))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
    }
}

fn read_all(
    paths: &[PathBuf],
    max_records: usize,
    skip: i64,
    tx: &mpsc::Sender<SourceBatch>,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut batch = SourceBatch::default();
    let mut offset = 0i64;
    let mut line = Vec::new();
    for path in paths {
        let mut reader = open_text(path)?;
        loop {
            line.clear();
            if stop.load(Ordering::Relaxed) {
                return Ok(()); // stopped, not finished: no end-of-input flush
            }
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            if offset >= skip {
                batch.push(0, offset, &line);
            }
            offset += 1;
            if batch.len() >= max_records {
                let full = std::mem::take(&mut batch);
                if tx.blocking_send(full).is_err() {
                    return Ok(());
                }
            }
        }
    }
    batch.at_end.push(0);
    batch.end = true;
    let _ = tx.blocking_send(batch);
    Ok(())
}
