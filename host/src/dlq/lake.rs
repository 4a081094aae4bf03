//! Replaying dead letters kept in a lake: the objects `<prefix>/pipeline=<name>/*.jsonl.gz`
//! are read, the matching letters sent back (all objects at once, in source order), and then
//! every object that held one is marked: its matching letters are written to the same name
//! under `<prefix>_replayed/pipeline=<name>/`, the others (if any) to a new object under
//! `<prefix>/`, and the original is deleted. A second replay finds nothing left to send.

use std::io::{Read, Write};

use anyhow::Context;
use futures::TryStreamExt;
use object_store::path::Path;

use super::send::{self, Target};
use super::{Filter, Report};
use crate::objects::Location;
use crate::runtime::DeadLetter;

/// An object of dead letters, split by the filter.
struct Object {
    path: Path,
    name: String,
    matching: Vec<DeadLetter>,
    others: Vec<DeadLetter>,
}

/// Replays the matching dead letters under `prefix` (see the module doc).
pub async fn replay(
    location: &Location,
    prefix: &str,
    filter: &Filter,
    target: &Target<'_>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let folder = format!("{prefix}/pipeline={}", filter.pipeline);
    let objects = read_all(location, &folder, filter).await?;
    let mut letters: Vec<DeadLetter> = objects
        .iter()
        .flat_map(|o| o.matching.iter().cloned())
        .collect();
    letters
        .sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    report.skipped = objects.iter().map(|o| o.others.len()).sum();
    if !report.dry_run {
        send::send(target, &letters).await?;
        for object in objects.iter().filter(|o| !o.matching.is_empty()) {
            mark(location, prefix, &filter.pipeline, object).await?;
        }
    }
    report.replayed = letters;
    Ok(())
}

/// Every dead-letter object under `folder`, read and split by `filter`.
async fn read_all(
    location: &Location,
    folder: &str,
    filter: &Filter,
) -> anyhow::Result<Vec<Object>> {
    let root = location.path(folder)?;
    let mut metas: Vec<_> = location
        .store
        .list(Some(&root))
        .try_collect()
        .await
        .with_context(|| format!("Could not list the dead letters under `{folder}/`"))?;
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    let mut objects = Vec::new();
    for meta in metas {
        let Some(name) = meta.location.filename().map(str::to_owned) else {
            continue;
        };
        if !name.ends_with(".jsonl.gz") {
            continue;
        }
        let body = location.store.get(&meta.location).await?.bytes().await?;
        let letters = decode(&body).with_context(|| format!("`{}`", meta.location))?;
        let (matching, others) = letters.into_iter().partition(|l| filter.matches(l));
        objects.push(Object {
            path: meta.location,
            name,
            matching,
            others,
        });
    }
    Ok(objects)
}

/// The dead letters of one gzip JSON-lines object.
fn decode(body: &[u8]) -> anyhow::Result<Vec<DeadLetter>> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut text)
        .context("not gzip text")?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).context("a line is not a dead letter"))
        .collect()
}

/// One gzip JSON-lines object of `letters`.
fn encode(letters: &[DeadLetter]) -> anyhow::Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for letter in letters {
        serde_json::to_writer(&mut gz, letter)?;
        gz.write_all(b"\n")?;
    }
    Ok(gz.finish()?)
}

/// Moves the replayed letters of `object` under `<prefix>_replayed/`, keeps the others.
async fn mark(
    location: &Location,
    prefix: &str,
    pipeline: &str,
    object: &Object,
) -> anyhow::Result<()> {
    let store = &location.store;
    let done = location.path(&format!(
        "{prefix}_replayed/pipeline={pipeline}/{}",
        object.name
    ))?;
    if object.others.is_empty() {
        store.rename(&object.path, &done).await?;
        return Ok(());
    }
    store.put(&done, encode(&object.matching)?.into()).await?;
    let body = encode(&object.others)?;
    let stem = object.name.trim_end_matches(".jsonl.gz");
    let kept = location.path(&format!(
        "{prefix}/pipeline={pipeline}/{stem}-{:016x}.jsonl.gz",
        crate::sinks::lake::fnv1a(&body)
    ))?;
    store.put(&kept, body.into()).await?;
    store.delete(&object.path).await?;
    Ok(())
}
