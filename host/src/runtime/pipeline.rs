//! Running one pipeline: the source thread, the chain on a blocking thread, and the writer
//! loop that hands each result batch to every sink and the dead letters to their
//! destination, then commits the source offsets behind them. Bounded channels between the
//! three give backpressure from the slowest sink to the source.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;

use super::chain::{Chain, ChainOutput};
use super::deadletter::DeadLetterSink;
use super::summary::Summary;
use crate::sinks::Sink;
use crate::sinks::live::LiveHub;
use crate::sources::SourceHandle;

/// Live counters of a running pipeline.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records read from the source.
    pub records_in: AtomicU64,
    /// Rows written to the sinks.
    pub rows_out: AtomicU64,
    /// Records dead-lettered.
    pub dead_letters: AtomicU64,
    /// Late records dropped.
    pub late_dropped: AtomicU64,
    /// Current watermark (ms).
    pub watermark: AtomicI64,
}

impl Stats {
    /// Zero counters and no watermark yet.
    pub fn starting() -> Self {
        Self {
            watermark: AtomicI64::new(i64::MIN),
            ..Default::default()
        }
    }
}

/// A pipeline ready to run.
pub struct Running {
    /// Name.
    pub name: String,
    /// The chain.
    pub chain: Chain,
    /// The sinks.
    pub sinks: Vec<Sink>,
    /// Dead-letter destination.
    pub dlq: DeadLetterSink,
    /// The started source.
    pub source: SourceHandle,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Where statistics are published for the dashboard.
    pub live: LiveHub,
}

/// Runs until the source ends (`--once`) or `stop` is set; returns the summary.
pub async fn run(pipeline: Running, stop: Arc<AtomicBool>) -> anyhow::Result<Summary> {
    let Running {
        name,
        chain,
        sinks,
        dlq,
        source,
        stats,
        live,
    } = pipeline;
    let SourceHandle {
        batches,
        commits,
        thread,
        ..
    } = source;
    let (tx, rx) = mpsc::channel::<(ChainOutput, Vec<(i32, i64)>, bool)>(4);
    let processor = tokio::task::spawn_blocking(move || process_loop(chain, batches, tx));
    let progress = tokio::spawn(progress_loop(name.clone(), stats.clone(), stop.clone()));
    let publisher = tokio::spawn(publish_loop(name.clone(), stats.clone(), live.clone()));
    let written = write_loop(&name, &sinks, &dlq, rx, &commits, &stats, &live).await;
    progress.abort();
    publisher.abort();
    publish_stats(&name, &stats, &live, 0.0);
    stop.store(true, Ordering::Relaxed);
    let processed = processor.await.context("The processing thread panicked.")?;
    drop(commits);
    let summary = written?;
    processed?;
    match thread.join() {
        Ok(result) => result?,
        Err(_) => anyhow::bail!("The source thread panicked."),
    }
    Ok(summary)
}

type Output = (ChainOutput, Vec<(i32, i64)>, bool);

fn process_loop(
    mut chain: Chain,
    mut batches: mpsc::Receiver<crate::sources::SourceBatch>,
    tx: mpsc::Sender<Output>,
) -> anyhow::Result<()> {
    let mut first = true;
    while let Some(batch) = batches.blocking_recv() {
        let offsets = batch.next_offsets();
        let end = batch.end;
        let output = chain.process(batch).map_err(|e| {
            anyhow::anyhow!(
                "Pipeline `{}` stopped: {e}. Fix or replace the plugin, then restart it.",
                chain.pipeline
            )
        })?;
        if first && output.records_in > 0 {
            // Start-up is measured to this line (make bench).
            first = false;
            tracing::info!(pipeline = %chain.pipeline, records = output.records_in, "Processed the first batch.");
        }
        if tx.blocking_send((output, offsets, end)).is_err() || end {
            break;
        }
    }
    Ok(())
}

async fn write_loop(
    name: &str,
    sinks: &[Sink],
    dlq: &DeadLetterSink,
    mut rx: mpsc::Receiver<Output>,
    commits: &std::sync::mpsc::Sender<Vec<(i32, i64)>>,
    stats: &Stats,
    live: &LiveHub,
) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    let mut published = Instant::now();
    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    while let Some((output, offsets, end)) = rx.recv().await {
        if let Some(rows) = &output.early {
            for sink in sinks.iter().filter(|s| s.wants_early()) {
                sink.write_early(rows).await?;
            }
        }
        if let Some(rows) = &output.rows {
            let writes = sinks.iter().map(|sink| async move {
                sink.write(rows)
                    .await
                    .with_context(|| format!("The {} sink could not write.", sink.name()))
            });
            for result in futures::future::join_all(writes).await {
                result?;
            }
            summary.add_rows(rows);
            stats
                .rows_out
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
        }
        if !output.dead.is_empty() {
            dlq.write(&output.dead).await.with_context(|| {
                format!("Could not write dead letters to the {}.", dlq.describe())
            })?;
            tracing::warn!(pipeline = name, count = output.dead.len(), first = %output.dead[0].reason,
                "Records were dead-lettered.");
            summary.dead_letters += output.dead.len() as u64;
            stats
                .dead_letters
                .fetch_add(output.dead.len() as u64, Ordering::Relaxed);
        }
        for (p, o) in offsets {
            let entry = positions.entry(p).or_insert(o);
            *entry = (*entry).max(o);
        }
        if !positions.is_empty() {
            let _ = commits.send(positions.iter().map(|(&p, &o)| (p, o)).collect());
        }
        summary.records_in += output.records_in;
        summary.late_dropped += output.late_dropped;
        stats
            .records_in
            .fetch_add(output.records_in, Ordering::Relaxed);
        stats
            .late_dropped
            .fetch_add(output.late_dropped, Ordering::Relaxed);
        stats.watermark.store(output.watermark, Ordering::Relaxed);
        if published.elapsed() >= Duration::from_millis(500) || end {
            publish_connectors(name, sinks, live);
            published = Instant::now();
        }
        if end {
            break;
        }
    }
    summary.sinks = sinks.iter().map(Sink::status).collect();
    Ok(summary)
}

/// Publishes the status of every sink on the pipeline's live channel.
fn publish_connectors(name: &str, sinks: &[Sink], live: &LiveHub) {
    let statuses: Vec<serde_json::Value> = sinks.iter().map(Sink::status).collect();
    live.publish(
        name,
        &serde_json::json!({ "type": "connectors", "sinks": statuses }),
    );
}

/// Publishes the pipeline's counters on its live channel twice a second.
async fn publish_loop(name: String, stats: Arc<Stats>, live: LiveHub) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last = (Instant::now(), 0u64);
    loop {
        tick.tick().await;
        let records = stats.records_in.load(Ordering::Relaxed);
        let rate = (records - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
        last = (Instant::now(), records);
        publish_stats(&name, &stats, &live, rate);
    }
}

fn publish_stats(name: &str, stats: &Stats, live: &LiveHub, rate: f64) {
    let watermark = stats.watermark.load(Ordering::Relaxed);
    let watermark = (watermark != i64::MIN && watermark != i64::MAX)
        .then(|| sluice_plugin_sdk::time::format_timestamp(watermark));
    let event = serde_json::json!({
        "type": "stats",
        "records_in": stats.records_in.load(Ordering::Relaxed),
        "rows_out": stats.rows_out.load(Ordering::Relaxed),
        "dead_letters": stats.dead_letters.load(Ordering::Relaxed),
        "late_dropped": stats.late_dropped.load(Ordering::Relaxed),
        "watermark": watermark,
        "rate": rate,
    });
    live.publish(name, &event);
}

async fn progress_loop(name: String, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    let started = Instant::now();
    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.tick().await;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let records = stats.records_in.load(Ordering::Relaxed);
        let watermark = stats.watermark.load(Ordering::Relaxed);
        let wm = if watermark == i64::MIN {
            "none yet".to_owned()
        } else {
            sluice_plugin_sdk::time::format_timestamp(watermark)
        };
        tracing::info!(
            "Pipeline {name}: {records} records in ({}/s), {} rows out, {} dead letters, watermark {wm}, {:.0?} elapsed.",
            (records - last) / 2,
            stats.rows_out.load(Ordering::Relaxed),
            stats.dead_letters.load(Ordering::Relaxed),
            started.elapsed()
        );
        last = records;
    }
}
