//! The plugin kit: `sluice plugin new | build | test`. `new` scaffolds a plugin folder that
//! builds outside this repository (Rust, Python or JavaScript; see [`new`]), `build` makes
//! its component and checks it as the host would load it ([`build`]), and `test` runs the
//! golden fixtures of its `tests/` folder through the real engine ([`test`]).

pub mod build;
mod fixture;
mod golden;
pub mod new;
pub mod test;
mod tools;

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

/// `sluice plugin` subcommands.
#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Creates a plugin folder: source with a working example, README, and golden fixtures.
    New(new::NewArgs),
    /// Builds a plugin folder's component and prints its path, name, version and world.
    Build {
        /// The plugin folder (made by `sluice plugin new`).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Builds the plugin, runs each fixture of its `tests/` folder through the engine and
    /// compares the result with the golden `expected.jsonl` (exit 1 on a difference).
    Test(test::TestArgs),
}

/// The language of a plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust, with the sluice plugin SDK (built for wasm32-unknown-unknown: no WASI).
    Rust,
    /// Python, built with componentize-py (runs under the host's deny-all WASI).
    Python,
    /// JavaScript, built with componentize-js (runs under the host's deny-all WASI).
    Js,
}

impl Lang {
    /// `rust`, `python` or `js`.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }
}

/// The world a plugin implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PluginKind {
    /// Stateless: rows in, rows out.
    Transform,
    /// Stateful event-time windows.
    Window,
}

/// Runs a `sluice plugin` subcommand; returns the process exit code.
pub fn run(command: PluginCommand) -> anyhow::Result<i32> {
    match command {
        PluginCommand::New(args) => {
            let dir = new::scaffold(&args)?;
            println!(
                "Created {} ({} {} plugin). Next:\n  sluice plugin test {}",
                dir.display(),
                args.lang.name(),
                match args.kind {
                    PluginKind::Transform => "transform",
                    PluginKind::Window => "window",
                },
                dir.display()
            );
            Ok(0)
        }
        PluginCommand::Build { dir } => {
            let built = build::build(&dir)?;
            println!("{built}");
            Ok(0)
        }
        PluginCommand::Test(args) => test::run(&args),
    }
}
