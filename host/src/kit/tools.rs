//! Python and JavaScript plugins: their templates, and their toolchains, pinned and
//! installed on first use into `$SLUICE_PLUGIN_TOOLS` (default `~/.cache/sluice/plugin-tools`):
//!
//! - Python: componentize-py from PyPI in a venv. Components are built with `--stub-wasi`,
//!   so they import nothing from the host (CPython's runtime would otherwise import the
//!   filesystem and sockets, which the host refuses).
//! - JavaScript: jco (with its componentize-js) from npm, installed from a committed lock
//!   file. Components are built without the `http`, `fetch-event` and `stdio` features, so
//!   they import only clocks, random numbers and stderr, which the host grants deny-all.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use super::{Lang, PluginKind};

/// The componentize-py release Python plugins are built with.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// The JavaScript toolchain's manifest and lock file.
const JS_PACKAGE: &str = include_str!("../../templates/tools/js/package.json");
const JS_LOCK: &str = include_str!("../../templates/tools/js/package-lock.json");

macro_rules! files {
    ($dir:literal: $($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../templates/", $dir, "/", $path)))),*]
    };
}

/// The Python SDK modules every Python plugin folder gets (one copy, here).
pub const PYTHON_SDK: &[(&str, &str)] =
    files!("sdk/python": "sluice_columns.py", "sluice_plugin.py");
/// The JavaScript SDK module every JavaScript plugin folder gets.
pub const JS_SDK: &[(&str, &str)] = files!("sdk/js": "sluice-columns.js");

const PYTHON_TRANSFORM: &[(&str, &str)] = files!("python-transform":
    "app.py", "README.md",
    "tests/basic/case.yaml", "tests/basic/input.txt", "tests/basic/expected.jsonl",
    "tests/filtered/case.yaml", "tests/filtered/input.txt", "tests/filtered/expected.jsonl",
);

const JS_TRANSFORM: &[(&str, &str)] = files!("js-transform":
    "app.js", "README.md",
    "tests/basic/case.yaml", "tests/basic/input.txt", "tests/basic/expected.jsonl",
    "tests/filtered/case.yaml", "tests/filtered/input.txt", "tests/filtered/expected.jsonl",
);

const PYTHON_WINDOW: &[(&str, &str)] = files!("python-window":
    "app.py", "README.md",
    "tests/hourly/case.yaml", "tests/hourly/input.jsonl", "tests/hourly/expected.jsonl",
);

const JS_WINDOW: &[(&str, &str)] = files!("js-window":
    "app.js", "README.md",
    "tests/hourly/case.yaml", "tests/hourly/input.jsonl", "tests/hourly/expected.jsonl",
);

/// The SDK modules a `lang` plugin folder gets beside its template.
pub fn sdk(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Python => PYTHON_SDK,
        Lang::Js => JS_SDK,
        Lang::Rust => &[],
    }
}

/// The template of a `lang` plugin of `kind`.
pub fn template(lang: Lang, kind: PluginKind) -> &'static [(&'static str, &'static str)] {
    match (lang, kind) {
        (Lang::Python, PluginKind::Transform) => PYTHON_TRANSFORM,
        (Lang::Js, PluginKind::Transform) => JS_TRANSFORM,
        (Lang::Python, PluginKind::Window) => PYTHON_WINDOW,
        (Lang::Js, PluginKind::Window) => JS_WINDOW,
        (Lang::Rust, _) => &[],
    }
}

/// Where the toolchains live.
fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLUICE_PLUGIN_TOOLS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/sluice/plugin-tools")
}

/// Builds the `lang` plugin in `dir` (its world: `world`, default `transform`); returns the
/// component. The contract's WIT is written to `<dir>/target/wit/` for the toolchain.
pub fn build(lang: Lang, dir: &Path, world: Option<&str>, out: &Path) -> anyhow::Result<Vec<u8>> {
    let world = world.unwrap_or("transform");
    let wit = dir.join("target/wit");
    std::fs::create_dir_all(&wit)?;
    std::fs::write(wit.join("plugin.wit"), sluice_componentize::WIT_CURRENT)?;
    let wit = std::fs::canonicalize(&wit)?;
    let component = std::fs::canonicalize(out)?.join(format!("build-{}.wasm", std::process::id()));
    let mut cmd = match lang {
        Lang::Python => {
            let venv = python_tools()?;
            let mut cmd = Command::new(venv.join("bin/componentize-py"));
            cmd.arg("-d")
                .arg(&wit)
                .args(["-w", world, "componentize", "app", "--stub-wasi", "-o"])
                .arg(&component)
                // Only the plugin folder is on the Python path, not a venv of the caller's.
                .env_remove("VIRTUAL_ENV")
                .env_remove("PYTHONPATH");
            cmd
        }
        Lang::Js => {
            let tools = js_tools()?;
            let mut cmd = Command::new(tools.join("node_modules/.bin/jco"));
            cmd.args(["componentize", "app.js", "--bundle"])
                .args(["--disable", "http", "fetch-event", "stdio"])
                .arg("--wit")
                .arg(wit.join("plugin.wit"))
                .args(["--world-name", world, "-o"])
                .arg(&component);
            cmd
        }
        Lang::Rust => bail!("Rust plugins are built with cargo"),
    };
    eprintln!("Building {} ({} {world})...", dir.display(), lang.name());
    let status = cmd
        .current_dir(dir)
        .status()
        .with_context(|| format!("running the {} toolchain", lang.name()))?;
    if !status.success() {
        bail!(crate::cli::UserError(format!(
            "the {} build of `{}` failed ({status}); its messages are above",
            lang.name(),
            dir.display()
        )));
    }
    let bytes = std::fs::read(&component)?;
    std::fs::remove_file(&component)?;
    Ok(bytes)
}

/// Holds the toolchains' install lock (several builds may start at once: the first installs,
/// the others wait for it).
fn install_lock() -> anyhow::Result<std::fs::File> {
    let dir = tools_dir();
    std::fs::create_dir_all(&dir)?;
    let file = std::fs::File::create(dir.join(".install-lock"))?;
    file.lock()
        .with_context(|| format!("locking {}", dir.display()))?;
    Ok(file)
}

/// The venv holding the pinned componentize-py, installed when missing.
fn python_tools() -> anyhow::Result<PathBuf> {
    let _lock = install_lock()?;
    let venv = tools_dir().join(format!("componentize-py-{COMPONENTIZE_PY}"));
    if venv.join("bin/componentize-py").is_file() {
        return Ok(venv);
    }
    eprintln!(
        "Installing componentize-py {COMPONENTIZE_PY} into {} (once, ~20 MB from PyPI)...",
        venv.display()
    );
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    run(
        Command::new(python).arg("-m").arg("venv").arg(&venv),
        "python3 -m venv",
    )?;
    run(
        Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--disable-pip-version-check",
                "--progress-bar",
                "on",
            ])
            .arg(format!("componentize-py=={COMPONENTIZE_PY}")),
        "pip install componentize-py",
    )?;
    Ok(venv)
}

/// The folder holding the pinned jco, installed from the committed lock file when missing
/// or when the lock changed.
fn js_tools() -> anyhow::Result<PathBuf> {
    let _lock = install_lock()?;
    let dir = tools_dir().join("js");
    let lock = dir.join("package-lock.json");
    let current = std::fs::read_to_string(&lock).is_ok_and(|l| l == JS_LOCK);
    if current && dir.join("node_modules/.bin/jco").is_file() {
        return Ok(dir);
    }
    eprintln!(
        "Installing jco and componentize-js into {} (once, ~380 MB from npm)...",
        dir.display()
    );
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("package.json"), JS_PACKAGE)?;
    std::fs::write(&lock, JS_LOCK)?;
    run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir),
        "npm ci (Node.js and npm must be installed)",
    )?;
    Ok(dir)
}

fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}
