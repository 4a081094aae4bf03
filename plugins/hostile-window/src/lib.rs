//! `hostile-window`: a `window` plugin that counts rows and misbehaves on purpose, for the
//! fault-tolerance tests of the window step. It emits nothing: its state is only the row
//! count, which `snapshot` and `restore` keep. It panics (a wasm trap) on a row whose bytes
//! contain `BOOM`. Config (every value a string):
//!
//! - `state_kib`: pads the snapshot with that much memory (a large window state).
//! - `leak_kib`: keeps that much memory per `process` call (not part of the state), so an
//!   instance runs out of memory after a few calls while a fresh one restored from a
//!   checkpoint goes on: a transient failure.
//! - `init`, `advance`, `snapshot`, `restore`: `trap` (panics), `loop` (never returns),
//!   `bomb` (allocates until the memory limit stops it) or `stack` (recurses until the
//!   stack overflows) in that call. `advance` and `snapshot` misbehave once the instance
//!   has counted `after_rows` rows (so checkpoints exist by then); `restore` whenever it is
//!   called, i.e. only when a pipeline continues from a checkpoint.
//! - `process`: the same four, or what a call may return wrong: `malformed` (a row that
//!   does not decode under the output schema), `many_failures` (a thousand failures per
//!   input row), `huge_failure` (a failure reason of 12 MiB), `stray_failure` (a failure
//!   naming an input row past the batch), `aliased_failures` (a thousand failures whose
//!   reasons share the same 1 MiB of memory, which the canonical ABI allows); from the
//!   first call after `after_rows` rows.
//! - `after_rows`: rows counted before `advance`, `snapshot` or `process` misbehave
//!   (default 0).

use sluice_plugin_sdk::v0_1::{Metadata, Output, Window, WindowSpec};
use sluice_plugin_sdk::{Batch, Field, FieldType};

/// What an entry point does instead of its job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Misbehaviour {
    Trap,
    Loop,
    Bomb,
    Stack,
    Malformed,
    ManyFailures,
    HugeFailure,
    StrayFailure,
    AliasedFailures,
}

impl Misbehaviour {
    /// Reads config key `key`; the output misbehaviours only where `output` is set.
    fn read(
        cfg: &mut sluice_plugin_sdk::json::Config,
        key: &str,
        output: bool,
    ) -> Result<Option<Self>, String> {
        let Some(value) = cfg.take_str(key)? else {
            return Ok(None);
        };
        let how = match value.as_str() {
            "trap" => Self::Trap,
            "loop" => Self::Loop,
            "bomb" => Self::Bomb,
            "stack" => Self::Stack,
            "malformed" if output => Self::Malformed,
            "many_failures" if output => Self::ManyFailures,
            "huge_failure" if output => Self::HugeFailure,
            "stray_failure" if output => Self::StrayFailure,
            "aliased_failures" if output => Self::AliasedFailures,
            other => return Err(format!("{key}: unknown misbehaviour `{other}`")),
        };
        Ok(Some(how))
    }

    /// Traps, loops, eats memory or overflows the stack in entry point `entry`.
    fn run(self, entry: &str) -> ! {
        match self {
            Self::Loop => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Self::Bomb => {
                let mut hoard = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            Self::Stack => {
                let depth = recurse(std::hint::black_box(0));
                panic!("{entry}: the recursion returned at depth {depth}")
            }
            _ => panic!("{entry} trap requested by the config"),
        }
    }

    /// Writes what `process` returns wrong into `out`, for an input of `rows` rows.
    fn spoil(self, rows: u32, out: &mut Output) {
        match self {
            Self::Malformed => {
                // Three bytes where the schema wants an 8-byte int64.
                out.rows.data.extend_from_slice(&[1, 2, 3]);
                out.rows.end_row();
            }
            Self::ManyFailures => {
                for i in 0..rows {
                    for n in 0..1000 {
                        out.fail(i, format!("failure {n} of row {i}"));
                    }
                }
            }
            Self::HugeFailure if rows > 0 => out.fail(0, "x".repeat(12 << 20)),
            Self::StrayFailure => out.fail(rows, "a row past the batch"),
            Self::AliasedFailures if rows > 0 => aliased_failures(out),
            Self::Trap | Self::Loop | Self::Bomb | Self::Stack => self.run("process"),
            _ => {}
        }
    }
}

/// Fails input row 0 a thousand times, every reason the same 1 MiB of guest memory: the
/// canonical ABI lets strings share bytes, so the host would copy 1 GiB out of 1 MiB.
/// (The aliased `String`s are never dropped in the guest: the host refuses the output.)
#[allow(unsafe_code, reason = "aliasing strings is the misbehaviour")]
fn aliased_failures(out: &mut Output) {
    let reason = std::mem::ManuallyDrop::new("x".repeat(1 << 20));
    let (ptr, len) = (reason.as_ptr().cast_mut(), reason.len());
    for _ in 0..1024 {
        // SAFETY: none, on purpose: each `String` claims the same allocation.
        let alias = unsafe { String::from_raw_parts(ptr, len, len) };
        out.fail(0, alias);
    }
}

/// Recurses without end, each call through a pointer the optimiser cannot see through (so
/// it stays a call) with a small frame, until wasmtime's wasm stack limit stops it.
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let next: fn(u64) -> u64 = std::hint::black_box(recurse);
    next(depth + 1).wrapping_mul(3) ^ depth
}

/// The plugin instance.
pub struct HostileWindow {
    rows: u64,
    leak_kib: usize,
    leaked: Vec<Vec<u8>>,
    state_kib: usize,
    after_rows: u64,
    process: Option<Misbehaviour>,
    advance: Option<Misbehaviour>,
    snapshot: Option<Misbehaviour>,
    restore: Option<Misbehaviour>,
}

const CONFIG_SCHEMA: &str = r#"{"type":"object","properties":{
"leak_kib":{"type":"string"},"state_kib":{"type":"string"},"group_by":{"type":"array"},"after_rows":{"type":"string"},
"init":{"enum":["trap","loop","bomb","stack"]},
"process":{"enum":["trap","loop","bomb","stack","malformed","many_failures","huge_failure",
"stray_failure","aliased_failures"]},
"advance":{"enum":["trap","loop","bomb","stack"]},
"snapshot":{"enum":["trap","loop","bomb","stack"]},
"restore":{"enum":["trap","loop","bomb","stack"]}}}"#;

/// Config keys `init` accepts.
const KEYS: &[&str] = &[
    "leak_kib",
    "state_kib",
    "group_by",
    "after_rows",
    "init",
    "process",
    "advance",
    "snapshot",
    "restore",
];

/// A number config value (`0` when absent).
fn number<T: std::str::FromStr<Err: std::fmt::Display> + Default>(
    cfg: &mut sluice_plugin_sdk::json::Config,
    key: &str,
) -> Result<T, String> {
    match cfg.take_str(key)? {
        Some(n) => n.parse().map_err(|e| format!("{key}: {e}")),
        None => Ok(T::default()),
    }
}

impl HostileWindow {
    /// Whether enough rows were counted for `advance`, `snapshot` and `process` to misbehave.
    fn due(&self) -> bool {
        self.rows >= self.after_rows
    }
}

impl Window for HostileWindow {
    fn metadata() -> Metadata {
        sluice_plugin_sdk::metadata!(
            "Counts rows; traps on a row containing BOOM and misbehaves in the calls its config names.",
            CONFIG_SCHEMA,
            "{}"
        )
    }

    fn init(
        config: &str,
        _input: &[Field],
        _window: &WindowSpec,
    ) -> Result<(Self, Vec<Field>), String> {
        let mut cfg = sluice_plugin_sdk::json::parse_config(config)?;
        if let Some(how) = Misbehaviour::read(&mut cfg, "init", false)? {
            how.run("init");
        }
        // `group_by` names the window's groups for the host's key check; this plugin counts
        // all rows together.
        let _ = cfg.take_str_list("group_by")?;
        let me = Self {
            rows: 0,
            leak_kib: number(&mut cfg, "leak_kib")?,
            leaked: Vec::new(),
            state_kib: number(&mut cfg, "state_kib")?,
            after_rows: number(&mut cfg, "after_rows")?,
            process: Misbehaviour::read(&mut cfg, "process", true)?,
            advance: Misbehaviour::read(&mut cfg, "advance", false)?,
            snapshot: Misbehaviour::read(&mut cfg, "snapshot", false)?,
            restore: Misbehaviour::read(&mut cfg, "restore", false)?,
        };
        cfg.finish(KEYS)?;
        Ok((me, vec![Field::new("rows", FieldType::Int64)]))
    }

    fn process(
        &mut self,
        input: Batch<'_>,
        _watermark: i64,
        out: &mut Output,
    ) -> Result<(), String> {
        if let Some(how) = self.process.filter(|_| self.due()) {
            how.spoil(input.len() as u32, out);
        }
        for row in input.rows() {
            if row.windows(4).any(|w| w == b"BOOM") {
                panic!("BOOM");
            }
            self.rows += 1;
        }
        if self.leak_kib > 0 {
            self.leaked.push(vec![1u8; self.leak_kib * 1024]);
        }
        Ok(())
    }

    fn advance(&mut self, _watermark: i64, _out: &mut Output) -> Result<(), String> {
        if let Some(how) = self.advance.filter(|_| self.due()) {
            how.run("advance");
        }
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        if let Some(how) = self.snapshot.filter(|_| self.due()) {
            how.run("snapshot");
        }
        let mut state = vec![0; 8 + (self.state_kib << 10)];
        state[..8].copy_from_slice(&self.rows.to_le_bytes());
        state
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        if let Some(how) = self.restore {
            how.run("restore");
        }
        let bytes: [u8; 8] = state
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or("state must have 8 bytes or more")?;
        self.rows = u64::from_le_bytes(bytes);
        Ok(())
    }
}

sluice_plugin_sdk_v0_1::export_window!(HostileWindow);
