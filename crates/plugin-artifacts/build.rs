//! Builds every plugin crate under `plugins/` (each folder with a `Cargo.toml`, except the SDKs)
//! for `wasm32-unknown-unknown` with the `release-wasm` profile, in its own target folder
//! (`target/wasm-build`), wraps each core module into a component with `sluice-componentize` (zero
//! imports: the plugins use no WASI), and writes `target/plugins/<crate>.wasm` atomically.
//! A crate whose manifest says `test-only = true` (under `[package.metadata.sluice]`, the
//! misbehaving plugins of the tests) goes to `target/plugins/test/`, which the host does
//! not search by default. A crate may also list `variants = ["<feature>", ...]` there: each
//! is built again with that cargo feature (in `target/wasm-build/variant-<feature>`) into
//! `target/plugins/test/<crate>-<feature>.wasm` (another version of the plugin, for tests).
//! Generates `plugins.rs` in `OUT_DIR` with the paths, for `src/lib.rs` to include.

use anyhow::{Context, Result, bail};
use sluice_componentize::Contracts;
use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "release-wasm";
/// The plugins' target features: 128-bit SIMD, which wasmtime runs natively (LLVM uses it
/// for byte scans and copies).
const WASM_RUSTFLAGS: &str = "-C target-feature=+simd128";

/// Variables the outer cargo sets that must not leak into the nested build.
const REMOVED_VARS: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "NUM_JOBS",
    "OPT_LEVEL",
    "DEBUG",
    "PROFILE",
    "RUSTC_LINKER",
];

/// Prefixes of variables removed for the same reason.
const REMOVED_PREFIXES: &[&str] = &["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "DEP_"];

/// One plugin crate.
struct Plugin {
    /// Package name (`turnstile-parse`).
    name: String,
    /// Built for the tests only (`test-only = true`).
    test_only: bool,
    /// The feature it is built with (a variant), if any.
    feature: Option<String>,
}

impl Plugin {
    /// Its variants: the same crate with one feature more, test-only.
    fn variants(&self, manifest: &str) -> Vec<Plugin> {
        let Some(line) = manifest
            .lines()
            .find(|l| l.trim_start().starts_with("variants"))
        else {
            return Vec::new();
        };
        let list = line.split_once('=').map_or("", |(_, v)| v);
        list.trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .filter(|f| !f.is_empty())
            .map(|f| Plugin {
                name: self.name.clone(),
                test_only: true,
                feature: Some(f.to_owned()),
            })
            .collect()
    }

    /// The name its component and constant are made of (`turnstile-window-v2`).
    fn artifact(&self) -> String {
        match &self.feature {
            Some(f) => format!("{}-{f}", self.name),
            None => self.name.clone(),
        }
    }

    /// File name of the core module cargo produces.
    fn module_file(&self) -> String {
        format!("{}.wasm", self.name.replace('-', "_"))
    }

    /// Where a variant is built (its own target folder: other features, same file names).
    fn build_dir(&self, main: &Path) -> PathBuf {
        main.join(format!("variant-{}", self.feature.as_deref().unwrap_or("")))
    }

    /// Name of the generated constant (`TURNSTILE_PARSE`).
    fn const_name(&self) -> String {
        self.artifact().replace('-', "_").to_uppercase()
    }

    /// Where its component goes under `out_dir`.
    fn component_path(&self, out_dir: &Path) -> PathBuf {
        let dir = if self.test_only {
            out_dir.join("test")
        } else {
            out_dir.to_owned()
        };
        dir.join(format!("{}.wasm", self.artifact()))
    }
}

fn main() {
    if let Err(e) = run() {
        // `{:#}` prints the whole chain, including the nested cargo's output.
        panic!("building the wasm plugins failed: {e:#}");
    }
}

fn run() -> Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .join("../..")
        .canonicalize()
        .context("finding the workspace root")?;
    // Relative to this package, so that a checkout elsewhere sharing the target folder (CI
    // clones, worktrees) sees its own files and rebuilds instead of reusing another's output.
    for watched in ["plugins", "wit", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed=../../{watched}");
    }
    let plugins = find_plugins(&workspace.join("plugins"))?;
    let build_dir = workspace.join("target/wasm-build");
    let out_dir = workspace.join("target/plugins");
    let (main, variants): (Vec<&Plugin>, Vec<&Plugin>) =
        plugins.iter().partition(|p| p.feature.is_none());
    build_modules(&workspace, &build_dir, &main)?;
    for variant in &variants {
        build_modules(&workspace, &variant.build_dir(&build_dir), &[variant])?;
    }
    let test_dir = out_dir.join("test");
    fs::create_dir_all(&test_dir).with_context(|| format!("creating {}", test_dir.display()))?;
    let modules = build_dir.join(TARGET).join(PROFILE);
    // The contract versions a plugin may be built against: wit/ (the current one) and the
    // earlier ones kept in wit/<major.minor>/, compiled into sluice-componentize.
    let contracts = Contracts::builtin()?;
    for plugin in &plugins {
        let module = match &plugin.feature {
            Some(_) => plugin.build_dir(&build_dir).join(TARGET).join(PROFILE),
            None => modules.clone(),
        }
        .join(plugin.module_file());
        let bytes = fs::read(&module).with_context(|| format!("reading {}", module.display()))?;
        let made = contracts
            .componentize(&bytes)
            .with_context(|| format!("making a component of plugin {}", plugin.name))?;
        write_atomically(&plugin.component_path(&out_dir), &made.bytes)?;
    }
    let generated = PathBuf::from(env::var("OUT_DIR")?).join("plugins.rs");
    fs::write(&generated, constants(&out_dir, &plugins)).context("writing plugins.rs")?;
    Ok(())
}

/// Every folder of `plugins/` with a `Cargo.toml`, except the SDKs, sorted by name.
fn find_plugins(dir: &Path) -> Result<Vec<Plugin>> {
    let mut plugins = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let manifest = entry?.path().join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let name = package_name(&manifest)?;
        // The SDK crates (`sluice-plugin-sdk`, `sluice-plugin-sdk-v0_1`) are libraries.
        if !name.starts_with("sluice-plugin-sdk") {
            let text = fs::read_to_string(&manifest)?;
            let test_only = text.lines().any(|l| {
                let l: String = l.split_whitespace().collect();
                l == "test-only=true"
            });
            let plugin = Plugin {
                name,
                test_only,
                feature: None,
            };
            plugins.extend(plugin.variants(&text));
            plugins.push(plugin);
        }
    }
    plugins.sort_by_key(Plugin::artifact);
    if plugins.is_empty() {
        bail!("no plugin crates found in {}", dir.display());
    }
    Ok(plugins)
}

/// The `name` of the `[package]` table of a manifest.
fn package_name(manifest: &Path) -> Result<String> {
    let text =
        fs::read_to_string(manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let mut in_package = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if let Some(value) = line.strip_prefix("name").map(str::trim_start)
            && in_package
            && let Some(value) = value.strip_prefix('=')
        {
            return Ok(value.trim().trim_matches('"').to_string());
        }
    }
    bail!("{} has no [package] name", manifest.display())
}

/// The code generation flags of the plugins: `SLUICE_WASM_RUSTFLAGS` when set (to compare
/// builds), else [`WASM_RUSTFLAGS`].
fn wasm_rustflags() -> String {
    println!("cargo:rerun-if-env-changed=SLUICE_WASM_RUSTFLAGS");
    env::var("SLUICE_WASM_RUSTFLAGS").unwrap_or_else(|_| WASM_RUSTFLAGS.to_owned())
}

/// Runs the nested `cargo build` of every plugin, with a clean environment.
fn build_modules(workspace: &Path, build_dir: &Path, plugins: &[&Plugin]) -> Result<()> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--profile",
            PROFILE,
            "--target",
            TARGET,
            "--locked",
        ])
        .args(plugins.iter().flat_map(|p| ["-p", p.name.as_str()]))
        .args(
            plugins
                .iter()
                .filter_map(|p| p.feature.as_deref())
                .flat_map(|f| ["--features", f]),
        );
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if REMOVED_VARS.contains(&key.as_ref())
            || REMOVED_PREFIXES.iter().any(|p| key.starts_with(p))
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("CARGO_TARGET_DIR", build_dir);
    cmd.env(
        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
        wasm_rustflags(),
    );
    let output = cmd.output().context("running cargo for the wasm plugins")?;
    if !output.status.success() {
        bail!(
            "`cargo build --profile {PROFILE} --target {TARGET}` of the plugins failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("wasm.tmp-{}", std::process::id()));
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", tmp.display()))
}

/// The Rust source of the path constants.
fn constants(out_dir: &Path, plugins: &[Plugin]) -> String {
    let mut src = format!(
        "/// Absolute path of the folder holding the built plugin components.\n\
         pub const PLUGIN_DIR: &str = {:?};\n",
        out_dir.display().to_string()
    );
    src += &format!(
        "/// Absolute path of the folder holding the test-only plugin components.\n\
         pub const TEST_PLUGIN_DIR: &str = {:?};\n",
        out_dir.join("test").display().to_string()
    );
    for p in plugins {
        let path = p.component_path(out_dir).display().to_string();
        src += &format!(
            "/// Absolute path of the `{}` component.\npub const {}: &str = {path:?};\n",
            p.artifact(),
            p.const_name()
        );
    }
    src += "/// Every plugin: (crate name, component path).\npub const ALL: &[(&str, &str)] = &[\n";
    for p in plugins.iter().filter(|p| !p.test_only) {
        src += &format!("    ({:?}, {}),\n", p.artifact(), p.const_name());
    }
    src += "];\n/// Every test-only plugin: (crate name, component path).\npub const TEST_ONLY: &[(&str, &str)] = &[\n";
    for p in plugins.iter().filter(|p| p.test_only) {
        src += &format!("    ({:?}, {}),\n", p.artifact(), p.const_name());
    }
    src + "];\n"
}
