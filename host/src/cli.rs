//! The `sluice` command line: argument parsing and the subcommands, over the library.
//! A user's mistake (bad spec, missing plugin, unreachable broker) ends with one clear
//! paragraph and exit code 2; anything else with exit code 1.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::produce::{self, Order, ProduceArgs};
use crate::runtime::{self, Host};
use crate::spec::SpecErrors;

/// sluice: streaming pipelines of Kafka sources, sandboxed WebAssembly plugins and sinks.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// Folder for the host's state: compile cache, embedded broker, uploaded plugins.
    #[arg(
        long,
        global = true,
        env = "SLUICE_STATE_DIR",
        default_value = ".sluice"
    )]
    pub state_dir: PathBuf,
    /// Extra folder of plugin components (repeatable); `target/plugins` is always searched.
    #[arg(long = "plugin-dir", global = true)]
    pub plugin_dirs: Vec<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs the pipelines of a spec file or folder.
    Run {
        /// A spec file, or a folder of `*.yaml` specs.
        #[arg(long, default_value = "pipelines")]
        pipelines: PathBuf,
        /// Process what is available at start, flush every window, and exit.
        #[arg(long)]
        once: bool,
        /// The HTTP API: address, token, body limits.
        #[command(flatten)]
        api: crate::api::ApiArgs,
    },
    /// Replays MTA weekly files (or message files) into a Kafka topic.
    Produce {
        /// Bootstrap servers, or `embedded`.
        #[arg(long, env = "KAFKA_BROKERS", default_value = "embedded")]
        brokers: String,
        /// Topic (created if missing).
        #[arg(long, env = "TURNSTILE_TOPIC", default_value = "turnstile-stream")]
        topic: String,
        /// Input files, `.csv` or `.csv.gz` (repeatable).
        #[arg(long = "file", required = true)]
        files: Vec<PathBuf>,
        /// `event-time`: stable sort by event time over all files; `file`: as written.
        #[arg(long, default_value = "event-time")]
        order: String,
        /// Cap in records per second.
        #[arg(long)]
        rate: Option<u64>,
        /// Partitions of a topic created here.
        #[arg(long, default_value_t = 3)]
        partitions: i32,
    },
    /// Checks specs and the plugins they name; exit 0 when all are valid, 2 otherwise.
    Validate {
        /// Spec files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Manages the embedded broker of this state folder.
    Broker {
        /// `start`, `stop` or `address`.
        action: String,
    },
}

/// A failure caused by the user's input: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

/// Runs the command; returns the process exit code.
pub async fn main(cli: Cli) -> i32 {
    match dispatch(cli).await {
        Ok(()) => 0,
        Err(error) => {
            let user = error.downcast_ref::<UserError>().is_some()
                || error.downcast_ref::<SpecErrors>().is_some();
            eprintln!("error: {}", paragraph(&error));
            if user { 2 } else { 1 }
        }
    }
}

fn paragraph(error: &anyhow::Error) -> String {
    if let Some(spec) = error.downcast_ref::<SpecErrors>() {
        return format!("the spec is not valid:\n{spec}");
    }
    format!("{error:#}")
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run {
            ref pipelines,
            once,
            ref api,
        } => run(&cli, pipelines, once, api).await,
        Command::Produce {
            brokers,
            topic,
            files,
            order,
            rate,
            partitions,
        } => {
            let order = match order.as_str() {
                "event-time" => Order::EventTime,
                "file" => Order::File,
                other => {
                    return Err(UserError(format!(
                        "--order `{other}`: use `event-time` or `file`"
                    ))
                    .into());
                }
            };
            let brokers = crate::broker::resolve(&brokers, &cli.state_dir).map_err(user)?;
            let args = ProduceArgs {
                brokers,
                topic,
                files,
                order,
                rate,
                partitions,
            };
            let report = produce::run(&args).await.map_err(user)?;
            eprintln!("{report}");
            Ok(())
        }
        Command::Validate { ref paths } => validate(&cli, paths),
        Command::Broker { ref action } => broker(&cli.state_dir, action),
    }
}

fn user(error: anyhow::Error) -> anyhow::Error {
    UserError(format!("{error:#}")).into()
}

fn host(cli: &Cli) -> anyhow::Result<Host> {
    let mut dirs = cli.plugin_dirs.clone();
    dirs.extend(Host::default_plugin_dirs(&cli.state_dir));
    Host::new(&cli.state_dir, &dirs)
}

fn validate(cli: &Cli, paths: &[PathBuf]) -> anyhow::Result<()> {
    let host = host(cli)?;
    let mut failed = Vec::new();
    for path in paths {
        for file in runtime::spec_files(path).map_err(user)? {
            match host.validate(&file) {
                Ok(loaded) => println!("{}: valid pipeline `{}`", file.display(), loaded.spec.name),
                Err(errors) => failed.push(errors.to_string()),
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(UserError(failed.join("\n")).into())
    }
}

async fn run(cli: &Cli, path: &Path, once: bool, api: &crate::api::ApiArgs) -> anyhow::Result<()> {
    let host = host(cli)?;
    let users = crate::api::StartedPlugins::default();
    if let Some(addr) = api.api {
        let state = api.state(&host, users.lookup());
        let bound = crate::api::start(addr, state).await.map_err(user)?;
        println!("Dashboard: http://{bound}/");
    }
    let files = runtime::spec_files(path).map_err(user)?;
    if files.is_empty() {
        return Err(UserError(format!("`{}` holds no `*.yaml` spec.", path.display())).into());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let signal_stop = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Stopping: finishing the batches in flight.");
            signal_stop.store(true, Ordering::Relaxed);
        }
    });
    let mut tasks = Vec::new();
    for file in &files {
        let loaded = crate::spec::load_file(file)?;
        let running = host.start(&loaded, once, stop.clone()).await.map_err(|e| {
            if e.downcast_ref::<SpecErrors>().is_some() {
                e
            } else {
                user(e)
            }
        })?;
        let name = loaded.spec.name.clone();
        users.started(&name, crate::api::plugins_of(&host.registry, &loaded.spec));
        let task = tokio::spawn(runtime::run(running, stop.clone()));
        tasks.push((name, task, started_summary(&loaded)));
    }
    let mut failures = Vec::new();
    for (name, task, target) in tasks {
        match task.await.context("A pipeline task panicked.")? {
            Ok(summary) => println!("Pipeline `{name}` finished.\n{summary}{target}"),
            Err(error) => failures.push(format!("pipeline `{name}`: {error:#}")),
        }
    }
    anyhow::ensure!(failures.is_empty(), failures.join("\n"));
    Ok(())
}

fn started_summary(loaded: &crate::spec::Loaded) -> String {
    let mut text = String::new();
    for sink in &loaded.spec.sinks {
        if let crate::spec::SinkSpec::Lake(lake) = sink {
            text.push_str(&format!("  results in:       {}\n", lake.url));
        }
    }
    text
}

fn broker(state_dir: &Path, action: &str) -> anyhow::Result<()> {
    match action {
        "start" | "address" => {
            let address = crate::broker::resolve("embedded", state_dir).map_err(user)?;
            println!("{address}");
            Ok(())
        }
        "stop" => {
            let stopped = crate::broker::stop_embedded(state_dir)?;
            println!(
                "{}",
                if stopped {
                    "Embedded broker stopped."
                } else {
                    "No embedded broker was running."
                }
            );
            Ok(())
        }
        other => Err(UserError(format!(
            "unknown broker action `{other}`: use start, stop or address"
        ))
        .into()),
    }
}
