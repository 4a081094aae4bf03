//! The host side of host/tests/dashboard.rs: a broker, `sluice run --listen` of the live
//! spec (pipelines/turnstile.yaml with a `live` sink and `emit: { early: 1s }`), its live
//! stream, `sluice produce` replays, and every child process killed when the test ends.

#![allow(dead_code, reason = "each test uses a part of the helpers")]

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{LocalBroker, ok, repo, sluice};
use crate::live::{SseReader, http_get};

/// Child processes, killed (and reaped) when dropped, last started first.
#[derive(Default)]
pub struct Children(Vec<Child>);

impl Children {
    /// Keeps `child` until the end of the test; returns its index.
    pub fn keep(&mut self, child: Child) -> usize {
        self.0.push(child);
        self.0.len() - 1
    }

    /// Child `i`.
    pub fn get(&mut self, i: usize) -> &mut Child {
        &mut self.0[i]
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in self.0.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

/// Writes pipelines/turnstile.yaml with a `live` sink and `emit: { early: 1s }` on the window
/// step (each added only when missing) into `dir`; returns its path.
pub fn live_spec(repo: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo.join("pipelines/turnstile.yaml")).unwrap();
    let mut spec: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let steps = spec["steps"].as_sequence_mut().expect("spec steps");
    let window = steps
        .iter_mut()
        .find_map(|s| s.get_mut("window"))
        .and_then(|w| w.as_mapping_mut())
        .expect("a window step");
    if !window.contains_key("emit") {
        window.insert(
            "emit".into(),
            serde_yaml::from_str("{ early: 1s }").unwrap(),
        );
    }
    let sinks = spec["sinks"].as_sequence_mut().expect("spec sinks");
    if !sinks.iter().any(|s| s.get("live").is_some()) {
        sinks.push(serde_yaml::from_str("live: {}").unwrap());
    }
    let path = dir.join("turnstile-live.yaml");
    std::fs::write(&path, serde_yaml::to_string(&spec).unwrap()).unwrap();
    path
}

/// Waits until `GET /healthz` answers 200, or `child` exits, or `timeout` passes.
pub fn wait_healthy(port: u16, child: &mut Child, timeout: Duration) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Ok((200, _, _)) = http_get(port, "/healthz") {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("`sluice run` exited with {status}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("no answer on /healthz after {timeout:?}"))
}

/// The lines `from` writes, as they come (on a thread).
pub fn lines_of(from: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(from).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// A running `sluice run --listen` of the live spec, its live stream already connected.
pub struct Host {
    pub dir: tempfile::TempDir,
    pub broker: LocalBroker,
    pub children: Children,
    pub port: u16,
    pub topic: String,
    pub sse: SseReader,
}

/// `sluice run --listen` of the live spec in `dir` on `topic` with `counters`, healthy.
fn spawn_run(dir: &Path, broker: &LocalBroker, topic: &str, counters: &str, port: u16) -> Child {
    let spec = live_spec(&repo(), dir);
    let log = |name: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(name))
            .unwrap()
    };
    let mut run = sluice(dir)
        .args(["run", "--pipelines"])
        .arg(&spec)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("KAFKA_BROKERS", broker.bootstrap())
        .env("TURNSTILE_TOPIC", topic)
        .env("TURNSTILE_COUNTERS", counters)
        .env("TURNSTILE_EARLY", "1s")
        .env_remove("WAREHOUSE_URL")
        .env("LAKE_URL", format!("file://{}", dir.join("lake").display()))
        .stdout(log("run.out"))
        .stderr(log("run.err"))
        .spawn()
        .expect("sluice run starts");
    if let Err(e) = wait_healthy(port, &mut run, Duration::from_secs(60)) {
        let _ = run.kill();
        let err = std::fs::read_to_string(dir.join("run.err")).unwrap_or_default();
        panic!("{e}\nsluice run stderr:\n{err}");
    }
    run
}

/// Starts a broker, creates `topic` (empty), runs the live spec on it with `counters`.
pub fn start_host(topic: &str, counters: &str) -> Host {
    let broker = LocalBroker::start().expect("tansu starts");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    ok(sluice(dir.path())
        .args([
            "produce",
            "--brokers",
            &broker.bootstrap(),
            "--topic",
            topic,
            "--file",
        ])
        .arg(&empty));
    let port = free_port();
    let mut children = Children::default();
    children.keep(spawn_run(dir.path(), &broker, topic, counters, port));
    // The server answers before the pipeline has registered its live channel: retry.
    let started = Instant::now();
    let sse = loop {
        match SseReader::connect(port, "/api/v1/pipelines/turnstile/live") {
            Ok(sse) => break sse,
            Err(e) if started.elapsed() > Duration::from_secs(60) => panic!("{e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    Host {
        dir,
        broker,
        children,
        port,
        topic: topic.to_owned(),
        sse,
    }
}

impl Host {
    /// Kills `sluice run` (as a crash would) and starts it again on the same state folder,
    /// port and topic.
    pub fn restart_run(&mut self, counters: &str) {
        let run = self.children.get(0);
        let _ = run.kill();
        let _ = run.wait();
        let again = spawn_run(
            self.dir.path(),
            &self.broker,
            &self.topic,
            counters,
            self.port,
        );
        self.children.0[0] = again;
    }

    /// Starts `sluice produce --rate rate` of `file`; returns when it starts sending, with
    /// that instant and the lines it writes on stderr (its report comes last).
    pub fn produce(
        &mut self,
        file: &Path,
        rate: u64,
    ) -> (Instant, std::sync::mpsc::Receiver<String>) {
        let mut child = sluice(self.dir.path())
            .args(["produce", "--brokers", &self.broker.bootstrap(), "--topic"])
            .arg(&self.topic)
            .arg("--file")
            .arg(file)
            .args(["--rate", &rate.to_string()])
            .stderr(Stdio::piped())
            .spawn()
            .expect("sluice produce starts");
        let rx = lines_of(child.stderr.take().unwrap());
        self.children.keep(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if line.contains("Producing ") {
                return (Instant::now(), rx);
            }
        }
        panic!("sluice produce did not start sending within 60 s");
    }

    /// Waits (at most `timeout`) until a stats event reports `records` records in.
    pub fn wait_records(&self, records: u64, timeout: Duration) {
        let started = Instant::now();
        let seen = || {
            self.sse.snapshot().iter().rev().find_map(|e| {
                (e.data["type"] == "stats").then(|| e.data["records_in"].as_u64().unwrap_or(0))
            })
        };
        while seen().unwrap_or(0) < records {
            assert!(
                started.elapsed() < timeout,
                "after {timeout:?} the live stats show {:?} of {records} records in",
                seen()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
