//! A real S3-compatible server for the lake tests: moto's (`moto_server` from PyPI, in the
//! venv `make test-tools` fills), on a free port, with a bucket; and the readers of
//! `read_lake.py`, run by that venv's Python.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The test venv (`$SLUICE_TEST_VENV`, else `$HOME/.cache/sluice/venv`), when it holds the
/// lake tools.
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("SLUICE_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/sluice/venv")
        });
    assert!(
        venv.join("bin/moto_server").is_file(),
        "moto, deltalake and pyarrow are not installed: run `make test-tools` (it installs \
         host/tests/lake/requirements.txt into {}) or point $SLUICE_TEST_VENV at a venv \
         that has them",
        venv.display()
    );
    venv
}

/// A running moto S3 server; killed on drop.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
    venv: PathBuf,
}

impl S3Server {
    /// Starts the server and creates `bucket`. A port another process took between our
    /// probe and moto's bind makes moto exit; the start is then retried on another port.
    pub fn start(bucket: &str) -> Self {
        let venv = venv();
        let mut last = String::new();
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new(venv.join("bin/moto_server"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("moto_server starts");
            let mut server = Self {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
                venv: venv.clone(),
            };
            match server.wait_ready(port) {
                Ok(()) => {
                    server.create_bucket(bucket);
                    return server;
                }
                Err(why) => last = why,
            }
        }
        panic!("moto did not start: {last}")
    }

    /// Waits until the server answers HTTP on `port`. A bare TCP connect is not enough: a
    /// connect to a free port of the ephemeral range can connect to itself (TCP
    /// simultaneous open) before moto listens, which once sent the bucket's creation to
    /// nothing.
    fn wait_ready(&mut self, port: u16) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("moto_server on port {port} exited: {status}"));
            }
            if answers_http(port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("moto_server on port {port} did not answer in 30 s"))
    }

    fn create_bucket(&self, bucket: &str) {
        let create = format!(
            "import boto3; boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='test', aws_secret_access_key='test').create_bucket(Bucket='{bucket}')",
            self.endpoint
        );
        let out = Command::new(self.venv.join("bin/python"))
            .args(["-c", &create])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Points `cmd` at the server with the standard variables.
    pub fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
    }

    /// The rows of the lake at `url` as read by `read_lake.py` (`delta` or `parquet`),
    /// sorted, and what it said on stderr.
    pub fn read(&self, mode: &str, url: &str) -> (Vec<String>, String) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lake/read_lake.py");
        let out = self
            .env(&mut Command::new(self.venv.join("bin/python")))
            .args([script, mode, url])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "read_lake.py {mode} {url} failed:\n{stderr}"
        );
        let mut rows: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        rows.sort();
        (rows, stderr)
    }
}

/// Whether an HTTP server answers `GET /` on 127.0.0.1:`port` with a status line.
fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 8];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/")
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
