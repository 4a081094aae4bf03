//! `sluice plugin build`: the component of a plugin folder, checked as the host checks an
//! upload, at `<dir>/target/plugin/<name>.wasm`.
//!
//! - Rust: `cargo build --release --target wasm32-unknown-unknown` (the target is added with
//!   rustup when missing), then the core module is made a component of its world with
//!   `sluice-componentize`, exactly as this repository's own plugins are.
//! - Python and JavaScript: the pinned componentize-py / componentize-js, installed into
//!   `~/.cache/sluice/plugin-tools` on first use (see [`super::tools`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::Lang;
use crate::wasm::PluginEngine;

/// A built and checked component.
#[derive(Debug)]
pub struct Built {
    /// Where it is.
    pub path: PathBuf,
    /// Name from its metadata.
    pub name: String,
    /// Version from its metadata.
    pub version: String,
    /// `transform` or `window`.
    pub world: &'static str,
    /// Contract version (`0.2`).
    pub contract: &'static str,
    /// The capabilities it imports (WASI interfaces), empty for none.
    pub capabilities: Vec<String>,
    /// Its size in bytes.
    pub size: u64,
}

impl fmt::Display for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.path.display())?;
        writeln!(f, "  name          {}", self.name)?;
        writeln!(f, "  version       {}", self.version)?;
        writeln!(
            f,
            "  world         {} (sluice:plugin@{})",
            self.world, self.contract
        )?;
        writeln!(f, "  size          {} KiB", self.size.div_ceil(1024))?;
        match self.capabilities.is_empty() {
            true => write!(f, "  capabilities  none"),
            false => write!(
                f,
                "  capabilities  {} (granted deny-all)",
                self.capabilities.join(", ")
            ),
        }
    }
}

/// What `plugin.yaml` says (absent: a Rust crate).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    lang: String,
    #[serde(default)]
    world: Option<String>,
}

/// The language of the plugin in `dir`, and its world where `plugin.yaml` names it.
pub fn detect(dir: &Path) -> anyhow::Result<(Lang, Option<String>)> {
    let manifest = dir.join("plugin.yaml");
    if manifest.is_file() {
        let text = std::fs::read_to_string(&manifest)?;
        let m: Manifest = serde_yaml::from_str(&text)
            .map_err(|e| user(format!("{}: {e}", manifest.display())))?;
        let lang = match m.lang.as_str() {
            "rust" => Lang::Rust,
            "python" => Lang::Python,
            "js" | "javascript" => Lang::Js,
            other => {
                return Err(user(format!(
                    "{}: lang `{other}` is not rust, python or js",
                    manifest.display()
                )));
            }
        };
        return Ok((lang, m.world));
    }
    if dir.join("Cargo.toml").is_file() {
        return Ok((Lang::Rust, None));
    }
    Err(user(format!(
        "`{}` is not a plugin folder: it has neither plugin.yaml nor Cargo.toml (make one with \
         `sluice plugin new NAME`)",
        dir.display()
    )))
}

/// Builds the plugin in `dir` and checks the component.
pub fn build(dir: &Path) -> anyhow::Result<Built> {
    let (lang, world) = detect(dir)?;
    let out = dir.join("target/plugin");
    std::fs::create_dir_all(&out)?;
    let bytes = match lang {
        Lang::Rust => rust(dir)?,
        Lang::Python | Lang::Js => super::tools::build(lang, dir, world.as_deref(), &out)?,
    };
    let plugin = check(
        dir,
        &bytes,
        &format!("the component built from `{}`", dir.display()),
    )?;
    let path = out.join(format!("{}.wasm", plugin.name));
    std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(described(path, &plugin, bytes.len()))
}

/// Checks the component at `path` as the host checks an upload.
pub fn inspect(dir: &Path, path: &Path) -> anyhow::Result<Built> {
    let bytes =
        std::fs::read(path).map_err(|e| user(format!("cannot read `{}`: {e}", path.display())))?;
    let plugin = check(dir, &bytes, &format!("`{}`", path.display()))?;
    Ok(described(path.to_owned(), &plugin, bytes.len()))
}

/// `bytes` checked as a plugin (compiled with the cache `sluice plugin test` uses too: a
/// large component, a Python or JavaScript runtime, is compiled once).
fn check(dir: &Path, bytes: &[u8], what: &str) -> anyhow::Result<crate::wasm::Plugin> {
    let engine = PluginEngine::new(Some(dir.join("target/plugin-test/cache")))?;
    crate::wasm::check_bytes(&engine, bytes, dir)
        .map_err(|e| user(format!("{what} is not a usable plugin: {e}")))
}

fn described(path: PathBuf, plugin: &crate::wasm::Plugin, size: usize) -> Built {
    Built {
        path,
        name: plugin.name.clone(),
        version: plugin.version.to_string(),
        world: plugin.kind.world(),
        contract: plugin.contract.version(),
        capabilities: plugin.capabilities.clone(),
        size: size as u64,
    }
}

/// The target Rust plugins are built for: no WASI, so no imports.
const TARGET: &str = "wasm32-unknown-unknown";

/// Builds the crate in `dir`; returns the component.
fn rust(dir: &Path) -> anyhow::Result<Vec<u8>> {
    ensure_target()?;
    let manifest = dir.join("Cargo.toml");
    eprintln!("Building {} for {TARGET}...", manifest.display());
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["build", "--release", "--target", TARGET])
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest)
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
            "-C target-feature=+simd128",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Flags meant for another build (a test harness's) must not leak into this one.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET"] {
        cmd.env_remove(var);
    }
    let output = cmd.output().context("running cargo (is Rust installed?)")?;
    if !output.status.success() {
        return Err(user(format!(
            "`cargo build` of {} failed ({}); its messages are above",
            manifest.display(),
            output.status
        )));
    }
    let module = cdylib(&output.stdout).ok_or_else(|| {
        user(format!(
            "{} built no wasm library: its Cargo.toml needs `[lib] crate-type = [\"cdylib\"]`",
            manifest.display()
        ))
    })?;
    let bytes = std::fs::read(&module).with_context(|| format!("reading {}", module.display()))?;
    let made = sluice_componentize::Contracts::builtin()?
        .componentize(&bytes)
        .map_err(|e| user(format!("{}: {e:#}", module.display())))?;
    Ok(made.bytes)
}

/// The `.wasm` file of the cdylib among cargo's JSON messages.
fn cdylib(messages: &[u8]) -> Option<PathBuf> {
    let text = String::from_utf8_lossy(messages);
    let mut found = None;
    for line in text.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_cdylib = message["reason"] == "compiler-artifact"
            && message["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"));
        if !is_cdylib {
            continue;
        }
        let files = message["filenames"].as_array()?;
        found = files
            .iter()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"))
            .map(PathBuf::from);
    }
    found
}

/// Adds the wasm target with rustup when the toolchain lacks it.
fn ensure_target() -> anyhow::Result<()> {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output();
    let has = sysroot.ok().is_some_and(|o| {
        let root = String::from_utf8_lossy(&o.stdout).trim().to_owned();
        Path::new(&root).join("lib/rustlib").join(TARGET).is_dir()
    });
    if has {
        return Ok(());
    }
    eprintln!("Adding the Rust target {TARGET} (once)...");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        _ => bail!("the Rust target {TARGET} is missing and `rustup target add {TARGET}` failed"),
    }
}

fn user(message: String) -> anyhow::Error {
    crate::cli::UserError(message).into()
}
