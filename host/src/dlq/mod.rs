//! `sluice dlq replay`: re-injects the dead letters of a pipeline after a fix. It reads them
//! from the pipeline's dead-letter destination (lake objects, see [`lake`], or a Kafka
//! topic, see [`kafka`]), keeps those matching the filters, produces their raw records back
//! to the pipeline's source topic with headers marking them as replays ([`send`]), and then
//! marks them replayed so that a second replay does not send them again.
//!
//! Rows a sink rejected (stage `sinks[i] ...`) are results, not source records: they are
//! never replayed. A replay that fails after producing and before marking sends those
//! records again the next time (at least once); the pipeline's idempotent sinks absorb that
//! for window results keyed by window.

mod kafka;
mod lake;
mod send;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::runtime::{DeadLetter, DeadLetterSink};

/// `sluice dlq replay` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplayArgs {
    /// The pipeline's spec file (its source topic and dead-letter destination are used).
    pub spec: PathBuf,
    /// Only dead letters of this stage (substring, e.g. `steps[0]` or `turnstile-parse`).
    #[arg(long)]
    pub stage: Option<String>,
    /// Only dead letters written since then: `2024-01-01T00:00:00Z`, `2024-01-01 00:00:00`
    /// (UTC), or a duration back from now such as `2h`.
    #[arg(long)]
    pub since: Option<String>,
    /// Only dead letters whose reason contains this text.
    #[arg(long)]
    pub reason_contains: Option<String>,
    /// List what would be replayed; send and mark nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Which dead letters to replay.
#[derive(Debug, Default)]
pub struct Filter {
    /// Pipeline name (a Kafka dead-letter topic may be shared).
    pub pipeline: String,
    /// Substring of the stage.
    pub stage: Option<String>,
    /// Dead-lettered at or after (ms since epoch).
    pub since_ms: Option<i64>,
    /// Substring of the reason.
    pub reason_contains: Option<String>,
}

impl Filter {
    /// Whether `letter` is replayed: a source record of the pipeline, matching every filter.
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        letter.pipeline == self.pipeline
            && letter.offset >= 0
            && !letter.stage.starts_with("sinks[")
            && self.stage.as_ref().is_none_or(|s| letter.stage.contains(s))
            && self.since_ms.is_none_or(|t| letter.time_ms >= t)
            && self
                .reason_contains
                .as_ref()
                .is_none_or(|r| letter.reason.contains(r))
    }
}

/// Parses `--since`: an RFC 3339 time, `YYYY-MM-DD HH:MM:SS` (UTC), or a duration ago.
pub fn parse_since(text: &str) -> Result<i64, String> {
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    };
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        return Ok(ms(time));
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(ms(std::time::SystemTime::now()) - ago.as_millis() as i64);
    }
    Err(format!(
        "--since `{text}`: write a time (`2024-01-01T00:00:00Z`, `2024-01-01 00:00:00`) or a \
         duration back from now (`2h`, `30m`)"
    ))
}

/// What a replay did (or would do, with `--dry-run`).
#[derive(Debug, Default)]
pub struct Report {
    /// The topic records were (or would be) sent to.
    pub topic: String,
    /// Where the dead letters were read.
    pub from: String,
    /// Dead letters replayed (or to replay).
    pub replayed: Vec<DeadLetter>,
    /// Dead letters read that did not match.
    pub skipped: usize,
    /// Nothing was sent or marked.
    pub dry_run: bool,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would replay"
        } else {
            "replayed"
        };
        writeln!(
            f,
            "{verb} {} dead letters from the {} to topic `{}` ({} not matching were left \
             as they are)",
            self.replayed.len(),
            self.from,
            self.topic,
            self.skipped
        )?;
        if self.dry_run {
            for l in &self.replayed {
                let reason: String = l.reason.chars().take(100).collect();
                writeln!(
                    f,
                    "  {}/{}/{}  {}  {reason}",
                    l.topic, l.partition, l.offset, l.stage
                )?;
            }
        }
        Ok(())
    }
}

/// Replays the dead letters of the pipeline of `args.spec`. User mistakes (a spec without a
/// Kafka source, a bad `--since`) are `Err` with a message naming the fix.
pub async fn replay(args: &ReplayArgs, state_dir: &Path) -> anyhow::Result<Report> {
    let loaded = crate::spec::load_file(&args.spec)?;
    let spec = &loaded.spec;
    let Some(source) = spec.source.config().kafka() else {
        anyhow::bail!(
            "{}: pipeline `{}` does not read a Kafka topic, so there is nowhere to replay its \
             dead letters to; replay needs a `source: kafka` pipeline",
            loaded.file,
            spec.name
        );
    };
    let since_ms = match &args.since {
        Some(text) => Some(parse_since(text).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let filter = Filter {
        pipeline: spec.name.clone(),
        stage: args.stage.clone(),
        since_ms,
        reason_contains: args.reason_contains.clone(),
    };
    let brokers = crate::broker::resolve(&source.brokers, state_dir)?;
    let destination = crate::runtime::dead_letter_sink(&loaded, Some(&brokers), state_dir)?;
    let mut report = Report {
        topic: source.topic.clone(),
        from: destination.describe(),
        dry_run: args.dry_run,
        ..Default::default()
    };
    let target = send::Target {
        brokers: &brokers,
        topic: &source.topic,
    };
    match &destination {
        DeadLetterSink::Lake {
            location, prefix, ..
        } => lake::replay(location, prefix, &filter, &target, &mut report).await,
        DeadLetterSink::Kafka { topic, .. } => {
            let brokers = match &loaded.spec.errors.dlq {
                Some(crate::spec::DlqSpec::Kafka(k)) if k.brokers.is_some() => {
                    crate::broker::resolve(k.brokers.as_deref().unwrap_or_default(), state_dir)?
                }
                _ => brokers.clone(),
            };
            kafka::replay(&brokers, topic, &filter, &target, &mut report).await
        }
    }
    .with_context(|| format!("Could not replay the dead letters of `{}`", spec.name))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(stage: &str, reason: &str, time_ms: i64) -> DeadLetter {
        DeadLetter {
            pipeline: "p".into(),
            stage: stage.into(),
            plugin: String::new(),
            plugin_hash: String::new(),
            topic: "t".into(),
            partition: 0,
            offset: 3,
            event_time: None,
            reason: reason.into(),
            record: "x".into(),
            time_ms,
        }
    }

    #[test]
    fn filters_select_letters() {
        let mut filter = Filter {
            pipeline: "p".into(),
            ..Default::default()
        };
        assert!(filter.matches(&letter("steps[0] transform a@1", "bad", 10)));
        assert!(!filter.matches(&letter("sinks[2] postgres", "check", 10)));
        filter.stage = Some("steps[1]".into());
        assert!(!filter.matches(&letter("steps[0] transform a@1", "bad", 10)));
        filter.stage = None;
        filter.since_ms = Some(11);
        assert!(!filter.matches(&letter("steps[0]", "bad", 10)));
        filter.since_ms = None;
        filter.reason_contains = Some("field".into());
        assert!(filter.matches(&letter("steps[0]", "expected 13 fields", 10)));
        assert!(!filter.matches(&letter("steps[0]", "bad", 10)));
    }

    #[test]
    fn since_takes_times_and_durations() {
        assert_eq!(parse_since("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(parse_since("1970-01-01 00:01:00"), Ok(60_000));
        assert!(parse_since("2h").unwrap() > 0);
        assert!(parse_since("yesterday").unwrap_err().contains("--since"));
    }
}
