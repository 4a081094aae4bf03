//! The webhook tests' harness: the source with a fake runtime (takes batches, notes what they
//! hold, commits each after a delay) and a hand-written HTTP/1.1 client.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_host::sources::http::{self, HttpSourceSettings};
use sluice_host::sources::{SourceBatch, SourceHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const PATH: &str = "/ingest/turnstile";

/// What the fake runtime saw.
#[derive(Default)]
pub struct Seen {
    /// (partition, offset, value) of every record, in order.
    pub records: Vec<(i32, i64, String)>,
    /// Records per batch, for batches holding records.
    pub sizes: Vec<usize>,
    /// Batches with no record that report partition 0 idle.
    pub idle_reports: usize,
    /// (next offset, when) of every commit sent.
    pub commits: Vec<(i64, Instant)>,
}

pub struct Source {
    pub addr: SocketAddr,
    pub stop: Arc<AtomicBool>,
    pub seen: Arc<Mutex<Seen>>,
    pub thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl Source {
    /// Starts the source and a fake runtime committing each batch after `delay` (never when
    /// `delay` is `None`).
    pub fn start(settings: HttpSourceSettings, delay: Option<Duration>) -> Source {
        let stop = Arc::new(AtomicBool::new(false));
        let (handle, addr) = http::start(settings, Arc::clone(&stop)).unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let SourceHandle {
            batches,
            commits,
            thread,
            ..
        } = handle;
        tokio::spawn(fake_runtime(batches, commits, delay, Arc::clone(&seen)));
        Source {
            addr,
            stop,
            seen,
            thread,
        }
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap().unwrap();
    }
}

/// Takes batches, notes what they hold, and commits each after `delay` (if any).
pub async fn fake_runtime(
    mut batches: tokio::sync::mpsc::Receiver<SourceBatch>,
    commits: std::sync::mpsc::Sender<Vec<(i32, i64)>>,
    delay: Option<Duration>,
    seen: Arc<Mutex<Seen>>,
) {
    while let Some(batch) = batches.recv().await {
        assert!(!batch.end, "the http source never ends");
        if batch.is_empty() {
            seen.lock().unwrap().idle_reports += usize::from(batch.at_end == [0]);
            continue;
        }
        {
            let mut seen = seen.lock().unwrap();
            seen.sizes.push(batch.len());
            for i in 0..batch.len() {
                let value = String::from_utf8(batch.values_row(i)[4..].to_vec()).unwrap();
                let record = (batch.partitions[i], batch.offsets[i], value);
                seen.records.push(record);
            }
        }
        let Some(delay) = delay else { continue };
        tokio::time::sleep(delay).await;
        let next = batch.next_offsets();
        assert_eq!(next.len(), 1);
        seen.lock()
            .unwrap()
            .commits
            .push((next[0].1, Instant::now()));
        let _ = commits.send(next);
    }
}

pub fn settings() -> HttpSourceSettings {
    HttpSourceSettings {
        path: PATH.into(),
        max_records: 1000,
        max_wait: Duration::from_millis(20),
        ..HttpSourceSettings::default()
    }
}

/// A parsed answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub json: serde_json::Value,
    pub at: Instant,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }

    /// Asserts a refusal with `status` and `code`.
    pub fn refused(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.json["code"].as_str()),
            (status, Some(code)),
            "{self:?}"
        );
        assert!(
            self.json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{self:?}"
        );
    }
}

/// Sends `head` (without the blank line) and `body` on a new connection; reads the answer.
pub async fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let at = Instant::now();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
    Answer {
        status,
        headers,
        json,
        at,
    }
}

pub async fn post(addr: SocketAddr, content_type: &str, body: &[u8]) -> Answer {
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nContent-Type: {content_type}\r\nContent-Length: {}",
        body.len()
    );
    exchange(addr, &head, body).await
}

/// Asserts a 200 for `count` records; returns the first offset.
pub fn accepted(answer: &Answer, count: u64) -> i64 {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json["accepted"], count, "{answer:?}");
    answer.json["first_offset"].as_i64().unwrap()
}

/// Asserts the answer came after the commit covering `last`.
pub fn after_commit(source: &Source, answer: &Answer, last: i64) {
    let seen = source.seen.lock().unwrap();
    let commit = seen.commits.iter().find(|(next, _)| *next > last);
    let (_, when) = commit.expect("a commit covering the request");
    assert!(answer.at >= *when, "answered before the commit");
}

pub fn records_from(source: &Source, first: i64) -> Vec<(i32, i64, String)> {
    let seen = source.seen.lock().unwrap();
    seen.records
        .iter()
        .filter(|r| r.1 >= first)
        .cloned()
        .collect()
}

pub fn expect_records(first: i64, values: &[&str]) -> Vec<(i32, i64, String)> {
    let offsets = first..;
    values
        .iter()
        .zip(offsets)
        .map(|(v, o)| (0, o, v.to_string()))
        .collect()
}
