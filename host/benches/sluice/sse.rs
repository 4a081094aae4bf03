//! Section 9, live readers: the host's memory with 100 live-stream readers that connect and
//! never read (a stalled or hostile dashboard), against none. A webhook pipeline whose rows
//! go to the `live` sink takes one week posted in chunks of 2,000 lines (each chunk answered
//! once written, so every rows event has been published); the figure is the host's peak
//! resident memory (VmHWM) at the end. Each reader may hold at most the live stream's queue
//! of events (shared with the hub), then it is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{free_port, sluice};
use crate::figures::{Figure, Report};

const SECTION: &str = "sse";
const READERS: usize = 100;
const CHUNK: usize = 2_000;

struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request on a new connection; the status.
fn request(port: u16, method: &str, path: &str, body: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.get(9..12)?.parse().ok()
}

/// Peak and current resident memory of `pid` (MB).
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmHWM:") / 1024.0, kb("VmRSS:") / 1024.0)
}

/// Runs the week through a fresh host with `readers` stalled readers; its peak RSS (MB).
fn once(work: &Path, lines: &[String], readers: usize) -> f64 {
    let (api, ingest) = (free_port(), free_port());
    let folder = work.join(format!("sse-{readers}"));
    std::fs::create_dir_all(&folder).unwrap();
    let spec = format!(
        "version: 1\nname: sse\nsource: {{ http: {{ listen: \"127.0.0.1:{ingest}\", path: /in }} }}\n\
         steps:\n  - transform: {{ plugin: turnstile-parse@^0.1, config: {{ format: weekly }} }}\n\
         sinks: [ {{ live: {{}} }} ]\n"
    );
    std::fs::write(folder.join("sse.yaml"), spec).unwrap();
    let child = sluice(&work.join(format!("state-{readers}")))
        .args(["run", "--pipelines"])
        .arg(&folder)
        .args(["--api", &format!("127.0.0.1:{api}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sluice run starts");
    let host = Host(child);
    let started = Instant::now();
    while request(ingest, "POST", "/in", "").is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "no webhook");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stalled: Vec<TcpStream> = (0..readers)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", api)).unwrap();
            write!(
                s,
                "GET /api/v1/pipelines/sse/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            )
            .unwrap();
            s
        })
        .collect();
    for chunk in lines.chunks(CHUNK) {
        let status = request(ingest, "POST", "/in", &chunk.join("\n"));
        assert_eq!(status, Some(200), "the webhook takes every chunk");
    }
    assert_eq!(
        request(api, "GET", "/healthz", ""),
        Some(200),
        "the API still answers"
    );
    let (peak, _) = memory(host.0.id());
    drop(stalled);
    peak
}

pub fn run(weeks: &[std::path::PathBuf], runs: usize, report: &mut Report) {
    let week = &weeks[0];
    let file = std::fs::File::open(week).expect("the week's file");
    let lines: Vec<String> = BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .skip(1)
        .map_while(Result::ok)
        .collect();
    let work = tempfile::tempdir().unwrap();
    for readers in [0, READERS] {
        let samples: Vec<f64> = (0..runs)
            .map(|_| once(work.path(), &lines, readers))
            .collect();
        report.add(Figure::new(
            SECTION,
            &format!("sse_peak_rss_{readers}_stalled_mb"),
            &format!("host peak RSS, one week through the live sink, {readers} stalled readers"),
            "MB",
            samples,
        ));
    }
}
