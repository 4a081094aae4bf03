//! The `sluice` command line: argument parsing and the subcommands, over the library.
//! A user's mistake (bad spec, missing plugin, unreachable broker) ends with one clear
//! paragraph and exit code 2; a pipeline paused by its dead-letter threshold with exit code
//! 3; anything else with exit code 1.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// The most linear memory a spec may grant a plugin (`limits.memory`); a spec over it is
    /// refused.
    #[arg(long, global = true, env = "SLUICE_MAX_PLUGIN_MEMORY", default_value = "1GiB",
          value_parser = crate::spec::parse_size_arg)]
    pub max_plugin_memory: u64,
    /// The longest call a spec may allow a plugin (`limits.call_timeout`).
    #[arg(long, global = true, env = "SLUICE_MAX_CALL_TIMEOUT", default_value = "60s",
          value_parser = humantime::parse_duration)]
    pub max_call_timeout: std::time::Duration,
    /// The most output a spec may allow one plugin call (`limits.max_output`).
    #[arg(long, global = true, env = "SLUICE_MAX_PLUGIN_OUTPUT", default_value = "1GiB",
          value_parser = crate::spec::parse_size_arg)]
    pub max_plugin_output: u64,
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
        /// Join a cluster: an object store URL shared by every host that runs these
        /// pipelines (file:///shared/cluster, s3://bucket/cluster). Pipelines created through
        /// the API of one host then run on all, and `GET /api/v1/cluster` lists the hosts.
        #[arg(long, env = "SLUICE_CLUSTER")]
        cluster: Option<String>,
        /// The HTTP API: address, token, body limits.
        #[command(flatten)]
        api: crate::api::ApiArgs,
    },
    /// Shows what applying a folder of specs to a running host would change (exit 0: no
    /// change, 2: changes, 1: error); applies nothing.
    Plan(crate::planner::PlanArgs),
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
        /// Fields each message is keyed by (`station`, `ca,unit,scp`, ...): records with equal
        /// values share a partition. A pipeline declaring the same `source.kafka.key` can run
        /// its windows as parallel tasks.
        #[arg(long, default_value = "station")]
        key: String,
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
    /// Writes, builds and tests plugins: `sluice plugin new | build | test`.
    Plugin {
        /// What to do.
        #[command(subcommand)]
        action: crate::kit::PluginCommand,
    },
    /// Works on the dead letters of a pipeline.
    Dlq {
        /// What to do.
        #[command(subcommand)]
        action: DlqCommand,
    },
}

/// `sluice dlq` subcommands.
#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// Sends dead letters back to the pipeline's source topic after a fix, and marks them
    /// replayed (exit 0; a spec without a Kafka source or a bad filter: exit 2).
    Replay(crate::dlq::ReplayArgs),
}

/// The exit code of `sluice run` when a pipeline was paused by its dead-letter threshold.
pub const PAUSED_EXIT: i32 = 3;

/// `sluice plugin test` found a case whose output differs from its golden file: exit code 1,
/// the differences already printed.
#[derive(Debug, thiserror::Error)]
#[error("a plugin test failed: its output differs from the golden file (diff above)")]
pub struct TestsFailed;

/// A failure caused by the user's input: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

/// Runs the command; returns the process exit code.
pub async fn main(cli: Cli) -> i32 {
    match dispatch(cli).await {
        Ok(()) => 0,
        Err(error)
            if error
                .downcast_ref::<crate::planner::PlanHasChanges>()
                .is_some() =>
        {
            2
        }
        Err(error) => {
            let user = error.downcast_ref::<UserError>().is_some()
                || error.downcast_ref::<SpecErrors>().is_some();
            eprintln!("error: {}", paragraph(&error));
            if error.downcast_ref::<runtime::Paused>().is_some() {
                return PAUSED_EXIT;
            }
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
            ref cluster,
        } => run(&cli, pipelines, once, api, cluster.as_deref()).await,
        Command::Produce {
            brokers,
            topic,
            files,
            order,
            rate,
            partitions,
            key,
        } => {
            let key = crate::produce::KeyFields::parse(&key).map_err(UserError)?;
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
                key,
            };
            let report = produce::run(&args).await.map_err(user)?;
            eprintln!("{report}");
            Ok(())
        }
        Command::Plan(ref args) => {
            let args = args.clone();
            tokio::task::spawn_blocking(move || crate::planner::run(&args)).await?
        }
        Command::Validate { ref paths } => validate(&cli, paths),
        Command::Broker { ref action } => broker(&cli.state_dir, action),
        Command::Plugin { action } => {
            let code = tokio::task::spawn_blocking(move || crate::kit::run(action)).await??;
            if code != 0 {
                return Err(TestsFailed.into());
            }
            Ok(())
        }
        Command::Dlq {
            action: DlqCommand::Replay(ref args),
        } => {
            let report = crate::dlq::replay(args, &cli.state_dir)
                .await
                .map_err(|e| match e.downcast_ref::<SpecErrors>() {
                    Some(_) => e,
                    None => user(e),
                })?;
            print!("{report}");
            Ok(())
        }
    }
}

fn user(error: anyhow::Error) -> anyhow::Error {
    UserError(format!("{error:#}")).into()
}

fn host(cli: &Cli) -> anyhow::Result<Host> {
    let mut dirs = cli.plugin_dirs.clone();
    dirs.extend(Host::default_plugin_dirs(&cli.state_dir));
    let mut host = Host::new(&cli.state_dir, &dirs)?;
    host.ceilings = crate::wasm::Limits {
        memory_bytes: usize::try_from(cli.max_plugin_memory).unwrap_or(usize::MAX),
        call_timeout: cli.max_call_timeout,
        max_output_bytes: usize::try_from(cli.max_plugin_output).unwrap_or(usize::MAX),
    };
    Ok(host)
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

/// `sluice run`: the pipeline manager runs the specs of `path` (a folder, or one file).
/// Without `--once` it follows changes to them until Ctrl-C or SIGTERM, and the API (with
/// `--api`) manages them; with `--once` each pipeline ends when its source has nothing more,
/// and the command reports how each ended.
async fn run(
    cli: &Cli,
    path: &Path,
    once: bool,
    api: &crate::api::ApiArgs,
    cluster: Option<&str>,
) -> anyhow::Result<()> {
    use crate::manager::{Manager, reload};
    if !path.exists() {
        return Err(UserError(format!(
            "`{}` is neither a spec file nor a folder of specs.",
            path.display()
        ))
        .into());
    }
    if once && runtime::spec_files(path).map_err(user)?.is_empty() {
        return Err(UserError(format!("`{}` holds no `*.yaml` spec.", path.display())).into());
    }
    let folder = if path.is_dir() {
        path.to_owned()
    } else {
        path.parent()
            .map_or_else(|| PathBuf::from("."), Path::to_owned)
    };
    let mut host = host(cli)?;
    host.api_policy = api.policy(&cli.state_dir);
    let host = Arc::new(host);
    let manager = Manager::new(host.clone(), &folder, once);
    match cluster {
        Some(_) if once => tracing::warn!(
            "`--once` runs this host's specs alone: the cluster (--cluster) is not joined."
        ),
        Some(url) => {
            let cluster = crate::cluster::Cluster::open(url, &host.state_dir).map_err(user)?;
            manager.join(Arc::new(cluster));
        }
        None => {}
    }
    if let Some(addr) = api.api {
        let bound = crate::api::start(addr, api.state(&manager))
            .await
            .map_err(user)?;
        println!("Dashboard: http://{bound}/");
        if let Some(cluster) = manager.cluster() {
            *cluster.address.lock().unwrap_or_else(|e| e.into_inner()) = Some(bound.to_string());
        }
    }
    if let Some(addr) = api.connect_api {
        let bound = crate::api::start_face(addr, api.state(&manager), crate::api::Face::Connect)
            .await
            .map_err(user)?;
        println!("Kafka Connect REST API: http://{bound}/");
    }
    if once {
        tokio::spawn(stop_on_signal(manager.clone()));
        reload::scan(&manager, path).await;
        manager.wait_for_ends().await;
        return report_once(&manager);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let member = tokio::spawn(crate::cluster::run(manager.clone(), stop.clone()));
    if let Some(cluster) = manager.cluster()
        && let Err(error) = cluster.mirror(&folder).await
    {
        tracing::warn!(error = %format!("{error:#}"), "Cannot read the specs shared through the cluster.");
    }
    reload::scan(&manager, path).await;
    let watcher = tokio::spawn(reload::watch(
        manager.clone(),
        path.to_owned(),
        stop.clone(),
    ));
    shutdown_signal().await;
    tracing::info!("Stopping: finishing the batches in flight.");
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.await;
    let _ = member.await;
    manager.shutdown().await;
    for item in manager.list() {
        println!("Pipeline `{}`: {}.", item.name, item.state.as_str());
    }
    Ok(())
}

/// `--once`, SIGINT or SIGTERM: stop consuming, write what was read, take a final checkpoint
/// and report. A second signal, or 30 seconds without finishing, ends the process at once
/// (the last checkpoint still holds).
async fn stop_on_signal(manager: crate::manager::Manager) {
    shutdown_signal().await;
    tracing::info!("Stopping: writing the batches in flight and a final checkpoint.");
    tokio::spawn(async move { manager.shutdown().await });
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {
            tracing::error!("The pipelines did not stop within 30 s; exiting. They continue from their last checkpoint.");
        },
    }
    std::process::exit(130);
}

/// Prints how each pipeline of a `--once` run ended; the error (and exit code) of the worst:
/// a spec refused or a pipeline that could not start (2), one that failed (1), one paused
/// by its dead-letter threshold (3).
fn report_once(manager: &crate::manager::Manager) -> anyhow::Result<()> {
    use crate::manager::State;
    let (mut refused, mut failures, mut paused) = (Vec::new(), Vec::new(), Vec::new());
    for name in manager.names() {
        let Some(outcome) = manager.outcome(&name) else {
            continue;
        };
        let error = outcome.error.clone().unwrap_or_default();
        match outcome.state {
            State::Paused => {
                println!("Pipeline `{name}` {error}.");
                paused.push(format!("pipeline `{name}` {error}"));
            }
            State::Failed if outcome.refused => {
                tracing::error!("A pipeline was not started: {error}");
                refused.push(error);
            }
            State::Failed => failures.push(format!("pipeline `{name}`: {error}")),
            state => {
                let summary = outcome.summary.unwrap_or_default();
                let target = manager
                    .loaded(&name)
                    .map(|l| results_in(&l))
                    .unwrap_or_default();
                let ended = if state == State::Finished {
                    "finished"
                } else {
                    state.as_str()
                };
                println!("Pipeline `{name}` {ended}.\n{summary}{target}");
            }
        }
    }
    if !refused.is_empty() {
        refused.extend(failures);
        return Err(UserError(refused.join("\n")).into());
    }
    anyhow::ensure!(failures.is_empty(), failures.join("\n"));
    if !paused.is_empty() {
        return Err(runtime::Paused {
            reason: paused.join("\n"),
        }
        .into());
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Where the results of `loaded` went, for the report of a `--once` run.
fn results_in(loaded: &crate::spec::Loaded) -> String {
    let mut text = String::new();
    for sink in &loaded.spec.sinks {
        if let Some(url) = sink.config().lake_url() {
            text.push_str(&format!("  results in:       {url}\n"));
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
