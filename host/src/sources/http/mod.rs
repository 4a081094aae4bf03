//! `http` source: a webhook. Clients POST records to one path, as text (`text/plain` or
//! `text/csv`: one record per non-empty line) or as a JSON array (`application/json`: each
//! string element is a record, each object element is a record holding its compact JSON).
//! Records go to partition 0 with consecutive offsets (starting at the microseconds since the
//! epoch at start, so that offsets keep growing across restarts unless more than a million
//! records a second arrived on average) and leave in batches of
//! `max_records`, or when the oldest has waited `max_wait`. After `max_wait` without records
//! an empty batch reports partition 0 idle. The source never ends on its own: it runs until
//! `stop`.
//!
//! A request is answered `200 {"accepted": n, "first_offset": o}` only once the runtime has
//! committed past its last record: its sinks wrote everything up to there, and, when the
//! pipeline has a window, a checkpoint holds the window state with those records (taken at
//! least every second for such a pipeline), since a webhook cannot replay them after a
//! crash. Without that
//! commit within `ack_timeout` the answer is 503: the records were accepted and may still be
//! processed, so a client that retries may send them twice. Refused requests get a JSON
//! `{code, message}`: 404 (wrong path), 405 (wrong method), 413 (body over `max_body_bytes`,
//! or more records than one second of the rate limit), 415 (content type), 400 (not UTF-8,
//! invalid JSON, no records), 429 with `Retry-After` (over `max_records_per_s`). When the
//! source stops, or the runtime stops taking batches, waiting requests get 503 at once.
//!
//! The server (warp) runs on the source's own thread, in a single-threaded tokio runtime.

mod handler;
mod ingest;
mod records;
mod spec;

pub use handler::RequestError;
pub use records::{BodyKind, RecordsError, parse as parse_body};
pub use spec::HttpSourceSpec;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::sync::mpsc;

use super::{Origin, SourceBatch, SourceHandle};
use handler::Route;
use ingest::Ingest;

/// How often the source looks at its stop flag and for commits.
const POLL: Duration = Duration::from_millis(50);

/// Settings resolved from the spec.
#[derive(Debug, Clone)]
pub struct HttpSourceSettings {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The path taking records, e.g. `/ingest/turnstile`.
    pub path: String,
    /// Largest accepted body (default 4 MiB).
    pub max_body_bytes: u64,
    /// Records per second over all requests; `None` for no limit.
    pub max_records_per_s: Option<u64>,
    /// Records per batch.
    pub max_records: usize,
    /// Time a batch may wait to fill.
    pub max_wait: Duration,
    /// How long a request waits for its records to be written before a 503 (default 30 s).
    pub ack_timeout: Duration,
}

impl Default for HttpSourceSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            path: "/ingest".into(),
            max_body_bytes: 4 << 20,
            max_records_per_s: None,
            max_records: 10_000,
            max_wait: Duration::from_millis(100),
            ack_timeout: Duration::from_secs(30),
        }
    }
}

/// Binds the listener and starts the source's thread; returns the runtime's handle and the
/// address actually bound.
pub fn start(
    settings: HttpSourceSettings,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(SourceHandle, SocketAddr)> {
    anyhow::ensure!(
        settings.path.starts_with('/'),
        "The http source's path `{}` must start with `/`.",
        settings.path
    );
    anyhow::ensure!(
        settings.max_records_per_s != Some(0),
        "The http source's rate limit must be at least 1 record per second."
    );
    let listener = std::net::TcpListener::bind(settings.listen)
        .with_context(|| format!("The http source cannot listen on {}.", settings.listen))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(4);
    let (commit_tx, commit_rx) = std::sync::mpsc::channel();
    let origin = Origin {
        topic: format!("http://{bound}{}", settings.path),
    };
    let thread = std::thread::Builder::new()
        .name("source-http".into())
        .spawn(move || serve(settings, listener, tx, commit_rx, stop))?;
    let handle = SourceHandle {
        batches: rx,
        commits: commit_tx,
        origin,
        partitions: vec![0],
        owned: vec![0],
        ends: Default::default(),
        rewind: None,
        thread,
    };
    Ok((handle, bound))
}

fn serve(
    settings: HttpSourceSettings,
    listener: std::net::TcpListener,
    tx: mpsc::Sender<SourceBatch>,
    commits: std::sync::mpsc::Receiver<Vec<(i32, i64)>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("The http source could not start its runtime.")?
        .block_on(run(settings, listener, tx, commits, stop))
}

async fn run(
    settings: HttpSourceSettings,
    listener: std::net::TcpListener,
    tx: mpsc::Sender<SourceBatch>,
    commits: std::sync::mpsc::Receiver<Vec<(i32, i64)>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let at = format!("http://{}{}", listener.local_addr()?, settings.path);
    let ingest = Arc::new(Ingest::new(tx, first_offset(), &settings));
    let forwarder = {
        let (ingest, stop) = (Arc::clone(&ingest), Arc::clone(&stop));
        crate::threads::spawn("sluice-http-acks", move || {
            forward_commits(&commits, &ingest, &stop)
        })
    };
    let timer = tokio::spawn(batch_timer(Arc::clone(&ingest)));
    let route = Arc::new(Route {
        path: settings.path,
        max_body_bytes: settings.max_body_bytes,
        ack_timeout: settings.ack_timeout,
        ingest: Arc::clone(&ingest),
    });
    tracing::info!("The http source takes records at {at}.");
    warp::serve(handler::routes(route))
        .incoming(listener)
        .graceful(stopped(stop, ingest))
        .run()
        .await;
    timer.abort();
    let _ = forwarder.await;
    tracing::info!("The http source at {at} stopped.");
    Ok(())
}

/// The first offset: microseconds since the epoch.
fn first_offset() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(0)
}

/// Resolves once `stop` is set, after stopping the ingest.
async fn stopped(stop: Arc<AtomicBool>, ingest: Arc<Ingest>) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(POLL).await;
    }
    ingest.stop().await;
}

/// Sends batches when they are old enough, and idle reports.
async fn batch_timer(ingest: Arc<Ingest>) {
    while let Some(next) = ingest.tick().await {
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = ingest.woken() => {}
        }
    }
}

/// Passes the runtime's commits to the waiting requests until `stop` or the runtime drops
/// its end.
fn forward_commits(
    commits: &std::sync::mpsc::Receiver<Vec<(i32, i64)>>,
    ingest: &Ingest,
    stop: &AtomicBool,
) {
    use std::sync::mpsc::RecvTimeoutError;
    while !stop.load(Ordering::Relaxed) {
        match commits.recv_timeout(POLL) {
            Ok(offsets) => ingest.commit(&offsets),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
}
