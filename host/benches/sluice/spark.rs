//! Section 3, Spark Structured Streaming: `bench/spark/run.sh` (the reference aggregation
//! over the same message files, `spark-submit --master local[2]`) run from here, its per-run
//! results read back; then the ratios sluice / Spark. With `SPARK=0` the figures of an earlier
//! run (docs/benchmarks-spark.md) stand in, labelled as such. With the section on, sluice
//! first reads the same message files (`same_input`), so one ratio compares like with like.

use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::cli::repo;
use crate::figures::{Figure, Report};

const SECTION: &str = "Spark";

/// Figures of docs/benchmarks-spark.md (an earlier run of bench/spark/run.sh on this
/// machine): (replicas, records/s, first result s, peak RSS MB).
const EARLIER: [(usize, f64, f64, f64); 2] =
    [(1, 108_318.0, 11.3, 641.0), (10, 410_321.0, 21.4, 920.0)];

/// Runs Spark for `replicas` (or takes the earlier figures) and adds the comparison.
pub fn run(enabled: bool, replicas: &[usize], runs: usize, report: &mut Report) {
    let label_suffix = if enabled {
        String::new()
    } else {
        " [earlier run, docs/benchmarks-spark.md]".to_owned()
    };
    let results = if enabled {
        measure(replicas, runs)
    } else {
        Vec::new()
    };
    for &r in replicas {
        let mine: Vec<&serde_json::Value> = results
            .iter()
            .filter(|v| v["replicas"].as_u64() == Some(r as u64))
            .collect();
        let (rate, first, rss) = if enabled {
            (
                mine.iter()
                    .map(|v| num(v, "records") / num(&v["stats"], "query_s"))
                    .collect(),
                mine.iter()
                    .map(|v| num(&v["measure"], "first_result_s"))
                    .collect(),
                mine.iter()
                    .map(|v| num(&v["measure"], "peak_rss_mb"))
                    .collect(),
            )
        } else {
            let e = EARLIER
                .iter()
                .find(|e| e.0 == r)
                .copied()
                .unwrap_or_default();
            (vec![e.1], vec![e.2], vec![e.3])
        };
        let n = |what: &str| format!("spark_{r}x_{what}");
        let l = |what: &str| format!("{r}x: Spark {what}{label_suffix}");
        report.add(Figure::new(
            SECTION,
            &n("records_per_s"),
            &l("records/s (query time)"),
            "rec/s",
            rate,
        ));
        report.add(Figure::new(
            SECTION,
            &n("first_result_s"),
            &l("launch to first result"),
            "s",
            first,
        ));
        report.add(Figure::new(
            SECTION,
            &n("peak_rss_mb"),
            &l("peak RSS (process tree)"),
            "MB",
            rss,
        ));
        ratios(r, report);
    }
}

fn ratios(r: usize, report: &mut Report) {
    let (e, s) = (format!("e2e_{r}x_"), format!("spark_{r}x_"));
    report.ratio(
        SECTION,
        &format!("sluice_spark_{r}x_throughput_ratio"),
        &format!("{r}x: sluice / Spark records/s (goal >= 20)"),
        &format!("{e}sluice_records_per_s"),
        &format!("{s}records_per_s"),
    );
    report.ratio(
        SECTION,
        &format!("sluice_spark_{r}x_first_result_ratio"),
        &format!("{r}x: Spark / sluice time to first result (goal >= 20)"),
        &format!("{s}first_result_s"),
        &format!("{e}first_result_s"),
    );
    report.ratio(
        SECTION,
        &format!("sluice_spark_{r}x_memory_ratio"),
        &format!("{r}x: sluice / Spark peak RSS (goal <= 0.1)"),
        &format!("{e}peak_rss_mb"),
        &format!("{s}peak_rss_mb"),
    );
    let f = format!("sluice_files_{r}x_");
    report.ratio(
        SECTION,
        &format!("sluice_files_spark_{r}x_throughput_ratio"),
        &format!("{r}x: sluice (file source, Spark's input) / Spark records/s (goal >= 20)"),
        &format!("{f}records_per_s"),
        &format!("{s}records_per_s"),
    );
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

/// Runs bench/spark/run.sh (its output goes to stderr) and returns its per-run JSON lines.
fn measure(replicas: &[usize], runs: usize) -> Vec<serde_json::Value> {
    let work = tempfile::tempdir().expect("a temporary folder");
    let mut cmd = Command::new(repo().join("bench/spark/run.sh"));
    cmd.args(replicas.iter().map(|r| r.to_string()))
        .env("RUNS", runs.to_string())
        .env("BENCH_WORK_DIR", work.path())
        .current_dir(repo());
    for (key, default) in [("QUIET_WAIT", "60"), ("RETRIES", "1")] {
        if std::env::var_os(key).is_none() {
            cmd.env(key, default);
        }
    }
    let stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .expect("stderr");
    let status = cmd
        .stdout(Stdio::from(stderr))
        .status()
        .expect("bench/spark/run.sh runs");
    assert!(
        status.success(),
        "bench/spark/run.sh failed (SPARK=0 skips it)"
    );
    read_results(&work.path().join("results.jsonl"))
}

fn read_results(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
