//! `make bench`: the performance figures of DESIGN §9 from one run on one machine, printed as
//! one table (median, min and max of several runs per figure) and one
//! `BENCH <name> <value> <unit>` line per figure. Benchmarks are not tests: nothing here
//! asserts a time (only that every record was read and that the engine's three ways emit the
//! same rows, those of the oracle in `expected/` where it has the weeks).
//!
//! Sections: 1 engine (WASM chain vs native vs a hand-written loop), 2 end to end
//! (`sluice run --once` on a real broker vs a consume-only loop; RSS, start-up), 3 Spark
//! (bench/spark, and sluice's file source over the same input files), 4 latency, 5 tasks
//! (1, 2 and `nproc` tasks on the largest replication), 6 restore (a partition's state taken
//! over, per MB), 7 hosts (1, 2 and 3 hosts in one group), 8 failover (kill -9 of one of
//! two hosts), 9 sse (host memory with 100 stalled live-stream readers).
//!
//! Environment: `SLUICE_BENCH_RUNS` (default 3) runs per figure; `SLUICE_BENCH_SECTIONS`
//! (default `engine,e2e,spark,latency,tasks,restore,hosts,failover,sse`);
//! `SLUICE_BENCH_REPLICAS` (default `1,10`);
//! `SLUICE_BENCH_WEEKS` (default `240106,240113,240120`);
//! `SLUICE_BENCH_ENGINE=wasm|native|hand` runs one side of the engine section alone (for a
//! profiler);
//! `SPARK=0` takes Spark's figures from docs/benchmarks-spark.md instead of running it;
//! `SLUICE_DATA_DIR` (default ../shared/data).

mod cli;
mod consume;
mod e2e;
mod engine;
mod figures;
mod hosts;
mod latency;
mod native_loop;
mod restore;
mod same_input;
mod spark;
mod sse;
mod tasks;

use std::path::PathBuf;

use figures::Report;

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

fn main() {
    // `cargo bench` passes `--bench`. Without it (`cargo test --all-targets` runs bench targets
    // too) this is a smoke test: the engine section once on one week, which still checks that
    // the WASM chain, the native chain and the hand-written loop emit the oracle's rows;
    // benchmarks are not tests.
    let benching = std::env::args().any(|a| a == "--bench");
    let smoke = |value: &'static str, full: &'static str| if benching { full } else { value };
    if !benching {
        eprintln!("test mode: the engine section once on week 240106 (`make bench` for figures)");
    }
    let runs: usize = env_or("SLUICE_BENCH_RUNS", smoke("1", "3"))
        .parse()
        .expect("SLUICE_BENCH_RUNS");
    let sections = env_or(
        "SLUICE_BENCH_SECTIONS",
        smoke(
            "engine",
            "engine,e2e,spark,latency,tasks,restore,hosts,failover,sse",
        ),
    );
    let on = |s: &str| sections.split(',').any(|x| x.trim() == s);
    let replicas: Vec<usize> = env_or("SLUICE_BENCH_REPLICAS", "1,10")
        .split(',')
        .map(|r| r.trim().parse().expect("SLUICE_BENCH_REPLICAS"))
        .collect();
    let data = std::env::var("SLUICE_DATA_DIR")
        .map_or_else(|_| cli::repo().join("../shared/data"), PathBuf::from);
    let weeks: Vec<PathBuf> = env_or(
        "SLUICE_BENCH_WEEKS",
        smoke("240106", "240106,240113,240120"),
    )
    .split(',')
    .map(|w| data.join(format!("mta-turnstile-{}.csv.gz", w.trim())))
    .collect();
    let mut report = Report::default();
    report.notes.push(machine());
    if on("engine") {
        engine::run(&weeks, runs, &mut report);
    }
    if on("restore") {
        restore::run(&weeks, runs, &mut report);
    }
    if on("sse") {
        sse::run(&weeks, runs, &mut report);
    }
    let broker = (on("e2e") || on("latency") || on("tasks") || on("hosts") || on("failover"))
        .then(cli::Broker::start);
    if let Some(broker) = &broker
        && on("e2e")
    {
        for &r in &replicas {
            e2e::run(broker, &weeks, r, runs, &mut report);
        }
    }
    if on("spark") {
        for &r in &replicas {
            same_input::run(&weeks, r, runs, &mut report);
        }
    }
    if on("spark") || on("e2e") {
        let enabled = on("spark") && env_or("SPARK", "1") != "0";
        spark::run(enabled, &replicas, runs, &mut report);
    }
    if let Some(broker) = &broker
        && on("latency")
    {
        latency::run(broker, runs, &mut report);
    }
    if let Some(broker) = &broker
        && on("tasks")
    {
        let largest = replicas.iter().copied().max().unwrap_or(1);
        tasks::run(broker, &weeks, largest, runs, &mut report);
    }
    if let Some(broker) = &broker
        && on("hosts")
    {
        let largest = replicas.iter().copied().max().unwrap_or(1);
        hosts::run(broker, &weeks, largest, runs, &mut report);
    }
    if let Some(broker) = &broker
        && on("failover")
    {
        hosts::run_failover(broker, &weeks, runs, &mut report);
    }
    drop(broker);
    println!("\n{}", report.render());
}

/// One line describing the machine and its load.
fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|m| m.trim().to_owned()))
        .unwrap_or_default();
    let load = read("/proc/loadavg");
    format!(
        "machine: {cpu}, {cores} cores, {mem} RAM; load average at the end {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}
