//! Driving the `sluice` binary of this build: a tansu broker started through
//! `sluice broker start` in a private state folder, `sluice produce`, and timed child
//! processes (wall time, peak RSS from `/usr/bin/time`, the moment a log line appears).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `sluice` binary cargo built for this bench.
pub fn sluice_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sluice")
}

/// A free TCP port on 127.0.0.1 (for a host's API or webhook listener).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `sluice --state-dir <dir>` with the logs at `info`.
pub fn sluice(state_dir: &Path) -> Command {
    let mut cmd = Command::new(sluice_bin());
    cmd.arg("--state-dir")
        .arg(state_dir)
        .env("RUST_LOG", "info,rdkafka=warn")
        .env("SLUICE_PLUGIN_PATH", sluice_plugin_artifacts::PLUGIN_DIR)
        .current_dir(repo());
    cmd
}

/// A tansu broker (memory storage) started by `sluice broker start`; stopped on drop.
pub struct Broker {
    pub dir: tempfile::TempDir,
    pub address: String,
}

impl Broker {
    /// Starts the broker and waits until it answers.
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let out = sluice(dir.path())
            .args(["broker", "start"])
            .output()
            .expect("sluice runs");
        assert!(
            out.status.success(),
            "`sluice broker start` failed (is tansu installed? `make tools`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let address = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Broker { dir, address }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = sluice(self.dir.path())
            .args(["broker", "stop"])
            .stdout(Stdio::null())
            .status();
    }
}

/// `sluice produce` of `files` (in file order) into `topic`; returns its report line.
pub fn produce(broker: &Broker, topic: &str, files: &[PathBuf]) -> String {
    produce_into(broker, topic, files, 3)
}

/// `sluice produce` of `files` into a topic of `partitions` partitions, keyed by station.
pub fn produce_into(broker: &Broker, topic: &str, files: &[PathBuf], partitions: u32) -> String {
    let mut cmd = sluice(broker.dir.path());
    cmd.args([
        "produce",
        "--brokers",
        &broker.address,
        "--topic",
        topic,
        "--order",
        "file",
        "--partitions",
        &partitions.to_string(),
    ]);
    for f in files {
        cmd.arg("--file").arg(f);
    }
    let out = cmd.output().expect("sluice produce runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "sluice produce failed:\n{stderr}");
    stderr
        .lines()
        .rfind(|l| l.starts_with("Produced "))
        .unwrap_or_default()
        .to_owned()
}

/// What a timed child process did.
pub struct Timed {
    /// Launch to exit.
    pub wall: Duration,
    /// Peak resident memory (MB), from `/usr/bin/time`.
    pub peak_rss_mb: f64,
    /// Launch to the first stderr line containing the watched text.
    pub marked: Option<Duration>,
    /// Standard output.
    pub stdout: String,
}

/// Runs `cmd` under `/usr/bin/time` (for its peak RSS), timing it from launch to exit and
/// noting when a stderr line first contains `mark`. Panics when it fails.
pub fn timed(cmd: Command, mark: &str) -> Timed {
    let rss_file = tempfile::NamedTempFile::new().expect("a temporary file");
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(rss_file.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let start = Instant::now();
    let mut child = wrapped
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/time and sluice run");
    let stdout = child.stdout.take().expect("piped");
    let out_thread =
        std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let stderr = child.stderr.take().expect("piped");
    let marked = Arc::new(Mutex::new(None));
    let (m, mark) = (marked.clone(), mark.to_owned());
    let err_thread = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(&mark) {
                m.lock().unwrap().get_or_insert(start.elapsed());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let status = child.wait().expect("the child runs");
    let wall = start.elapsed();
    let stdout = out_thread.join().unwrap();
    let stderr = err_thread.join().unwrap();
    assert!(
        status.success(),
        "{:?} failed:\n{stderr}",
        cmd.get_program()
    );
    let kb: f64 = std::fs::read_to_string(rss_file.path())
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(f64::NAN);
    let marked = *marked.lock().unwrap();
    Timed {
        wall,
        peak_rss_mb: kb / 1024.0,
        marked,
        stdout,
    }
}
