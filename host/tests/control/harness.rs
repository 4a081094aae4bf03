//! The harness of host/tests/control.rs: `sluice run --pipelines <folder> --api <addr>` as a
//! child process (killed when dropped), a plain HTTP/1.1 client over TCP, and polling the
//! API until a condition holds (with a timeout; never a timing assertion).

#![allow(dead_code, reason = "each test uses a part of the helpers")]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

/// One HTTP request; returns the status and the body as JSON (`Null` when empty, a string
/// when not JSON).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
) -> std::io::Result<(u16, Value)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let (content_type, text) = body.unwrap_or(("application/json", ""));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let status = raw.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
    };
    Ok((status, value))
}

/// A running `sluice run` with its API.
pub struct Sluice {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Sluice {
    /// Starts `cmd` (a `sluice` command already holding `run --pipelines ...`) with
    /// `--api 127.0.0.1:<free port>`, logging to `<dir>/<log>`; waits for `/healthz`.
    pub fn start(mut cmd: Command, dir: &Path, log: &str) -> Self {
        let port = free_port();
        let log = dir.join(log);
        let file = std::fs::File::create(&log).unwrap();
        // The specs these tests send through the API write under the test's folder.
        cmd.args(["--api", &format!("127.0.0.1:{port}")])
            .arg("--api-grant-files")
            .arg(dir)
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let child = cmd.spawn().expect("sluice run starts");
        let mut host = Self { child, port, log };
        let started = Instant::now();
        loop {
            if let Ok((200, _)) = host.call("GET", "/healthz", None) {
                return host;
            }
            if let Ok(Some(status)) = host.child.try_wait() {
                panic!("`sluice run` exited with {status}:\n{}", host.log_text());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no /healthz:\n{}",
                host.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One request to the API.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
    ) -> std::io::Result<(u16, Value)> {
        http(self.port, method, path, body)
    }

    /// `GET path`, failing the test on a connection error.
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).expect("the API answers")
    }

    /// Polls `GET path` until `done(status, body)` holds; returns the last body. Fails the
    /// test after `timeout`, showing `what`, the last answer and the host's log.
    pub fn wait_for(
        &self,
        path: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(u16, &Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let (code, body) = self.get(path);
            if done(code, &body) {
                return body;
            }
            assert!(
                started.elapsed() < timeout,
                "{what}: not reached after {timeout:?}; last answer {code} {body}\nlog:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The host's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for the exit (killed after 60 s); returns whether it exited 0.
    pub fn terminate(mut self) -> bool {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
