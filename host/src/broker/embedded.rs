//! The `brokers: embedded` broker: one detached tansu per state directory, shared by every
//! sluice process working there (`sluice produce --brokers embedded`, a later `sluice run`).
//!
//! `<state_dir>/embedded-broker.json` records its pid and port, `embedded-broker.log` gets its
//! output and `embedded-broker.lock` serialises concurrent starts. The broker runs in its own
//! process group, so it outlives the process that started it, until [`stop_embedded`].
//!
//! Storage is chosen by `$SLUICE_EMBEDDED_STORAGE` when the broker starts: `memory` (default;
//! ~500k records/s produce, topics are lost when the broker stops) or `sqlite`
//! (`<state_dir>/embedded-broker.db`; survives broker restarts and resumes correctly from any
//! committed offset, but produces ~35k records/s). A running broker is reused as it is.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::BrokerError;
use super::launch::{self, LaunchOptions};

/// The one-word broker setting that means "the local embedded broker".
pub const EMBEDDED: &str = "embedded";

/// What `embedded-broker.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    pid: u32,
    port: u16,
}

/// Returns the bootstrap address for `brokers`: the address of the embedded broker of
/// `state_dir` (started if it is not running and answering) when `brokers` is `embedded`,
/// otherwise `brokers` unchanged. Blocks for up to ~30 s when a broker has to be started.
pub fn resolve(brokers: &str, state_dir: &Path) -> anyhow::Result<String> {
    if brokers.trim() != EMBEDDED {
        return Ok(brokers.to_owned());
    }
    Ok(ensure_running(state_dir)?)
}

/// Stops the embedded broker of `state_dir` (SIGTERM, then SIGKILL after 3 s). Returns
/// whether one was running.
pub fn stop_embedded(state_dir: &Path) -> anyhow::Result<bool> {
    if !state_dir.is_dir() {
        return Ok(false);
    }
    let _lock = lock(state_dir)?;
    let Some(state) = read_state(state_dir) else {
        return Ok(false);
    };
    let running = is_our_broker(&state);
    if running {
        terminate(state.pid);
        tracing::info!("Stopped the embedded broker (pid {}).", state.pid);
    }
    let _ = std::fs::remove_file(state_file(state_dir));
    Ok(running)
}

fn ensure_running(state_dir: &Path) -> Result<String, BrokerError> {
    std::fs::create_dir_all(state_dir).map_err(|source| dir_error(state_dir, source))?;
    let _lock = lock(state_dir)?;
    if let Some(bootstrap) = reusable(state_dir) {
        return Ok(bootstrap);
    }
    let log = state_dir.join("embedded-broker.log");
    let storage = storage_url()?;
    let options = LaunchOptions {
        storage: &storage,
        log: &log,
        append: true,
        detached: true,
        port: None,
    };
    let launched = launch::launch(&options)?;
    let state = State {
        pid: launched.child.id(),
        port: launched.port,
    };
    write_state(state_dir, &state)?;
    tracing::info!(
        "Started the embedded broker on 127.0.0.1:{} (pid {}, storage {storage}, log {}).",
        state.port,
        state.pid,
        log.display()
    );
    let mut child = launched.child;
    // Reap the broker if it exits while this process still runs; detached otherwise.
    std::thread::spawn(move || child.wait());
    Ok(launch::bootstrap(state.port))
}

/// The address of the recorded broker if it is alive and answers; a recorded broker that is
/// alive but does not answer is stopped.
fn reusable(state_dir: &Path) -> Option<String> {
    let state = read_state(state_dir).filter(is_our_broker)?;
    match launch::answers(state.port, Duration::from_secs(5)) {
        Ok(()) => Some(launch::bootstrap(state.port)),
        Err(reason) => {
            tracing::warn!(
                "The embedded broker (pid {}) does not answer ({reason}); starting a new one.",
                state.pid
            );
            terminate(state.pid);
            None
        }
    }
}

/// The `--storage-engine` URL chosen by `$SLUICE_EMBEDDED_STORAGE`.
fn storage_url() -> Result<String, BrokerError> {
    let choice = std::env::var("SLUICE_EMBEDDED_STORAGE").unwrap_or_default();
    match choice.trim() {
        "" | "memory" => Ok(launch::MEMORY.to_owned()),
        // Relative to the broker's working directory, the state dir.
        "sqlite" => Ok("sqlite://embedded-broker.db".to_owned()),
        _ => Err(BrokerError::Storage { value: choice }),
    }
}

/// Whether the recorded process is alive and is a broker listening on the recorded port
/// (guards against pid reuse).
fn is_our_broker(state: &State) -> bool {
    if !process_exists(state.pid) {
        return false;
    }
    match std::fs::read(format!("/proc/{}/cmdline", state.pid)) {
        Ok(cmdline) => {
            let listener = format!("\0tcp://{}\0", launch::bootstrap(state.port));
            String::from_utf8_lossy(&cmdline).contains(&listener)
        }
        Err(_) => true, // no /proc: the metadata probe decides
    }
}

/// Whether the process exists and is not a zombie.
fn process_exists(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with(['Z', 'X'])),
        Err(_) if Path::new("/proc/self").exists() => false,
        Err(_) => signal(pid, "0"),
    }
}

/// SIGTERM, wait up to 3 s, then SIGKILL and wait up to 2 s more.
fn terminate(pid: u32) {
    let gone = |limit: Duration| {
        let started = Instant::now();
        while started.elapsed() < limit {
            if !process_exists(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    if signal(pid, "TERM") && gone(Duration::from_secs(3)) {
        return;
    }
    signal(pid, "KILL");
    gone(Duration::from_secs(2));
}

/// Sends a signal with the `kill` command (libc is not a dependency).
fn signal(pid: u32, name: &str) -> bool {
    Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn lock(state_dir: &Path) -> Result<File, BrokerError> {
    let path = state_dir.join("embedded-broker.lock");
    let file = File::create(&path).map_err(|source| dir_error(&path, source))?;
    file.lock().map_err(|source| dir_error(&path, source))?;
    Ok(file)
}

fn state_file(state_dir: &Path) -> PathBuf {
    state_dir.join("embedded-broker.json")
}

fn read_state(state_dir: &Path) -> Option<State> {
    let text = std::fs::read_to_string(state_file(state_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_state(state_dir: &Path, state: &State) -> Result<(), BrokerError> {
    let (path, tmp) = (
        state_file(state_dir),
        state_dir.join("embedded-broker.json.tmp"),
    );
    let json = serde_json::to_string_pretty(state).expect("the state serialises");
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| dir_error(&path, source))
}

fn dir_error(path: &Path, source: std::io::Error) -> BrokerError {
    BrokerError::StateDir {
        path: path.to_owned(),
        source,
    }
}
