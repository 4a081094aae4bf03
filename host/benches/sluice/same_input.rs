//! Spark's own input, read by sluice (part of section 3): the message files
//! `bench/spark/prepare.py` writes for the Spark job, replayed by `sluice run --once` with the
//! `file` source (no broker on either side), then parse, 4-hour windows per station with
//! `incremental` counters (the aggregation the Spark job runs) and the gzip CSV lake sink.
//! Records/s over the whole run (launch to exit, start-up included) and peak RSS; the ratio
//! to Spark's records/s is added by the Spark section.

use std::path::{Path, PathBuf};

use crate::cli::{sluice, timed};
use crate::e2e::{check_records, prepare, scratch, warm_cache};
use crate::figures::{Figure, Report};

const SECTION: &str = "Spark";

/// Pipeline `name`: pipelines/turnstile.yaml with the file source over `files`.
fn spec(name: &str, files: &[PathBuf], lake: &Path) -> String {
    let paths: Vec<String> = files
        .iter()
        .map(|f| serde_json::Value::from(f.display().to_string()).to_string())
        .collect();
    format!(
        r#"version: 1
name: {name}
source:
  file:
    paths: [{paths}]
steps:
  - transform: {{ plugin: turnstile-parse@^0.1, config: {{ format: auto }} }}
  - window:
      plugin: turnstile-window@^0.1
      event_time: timestamp
      size: 4h
      delay: 4h
      late: dlq
      config: {{ counters: incremental, group_by: [station] }}
sinks:
  - lake: {{ url: "file://{lake}", format: csv, compression: gzip, partition_by: [window_start] }}
errors:
  dlq:
    lake: {{ url: "file://{lake}", prefix: _dlq }}
"#,
        paths = paths.join(", "),
        name = name,
        lake = lake.display(),
    )
}

/// Runs replication `replicas` `runs` times over Spark's input files and adds the figures
/// `sluice_files_{r}x_records_per_s` and `sluice_files_{r}x_peak_rss_mb`.
pub fn run(weeks: &[PathBuf], replicas: usize, runs: usize, report: &mut Report) {
    let (work, lakes, state) = scratch();
    let (files, records) = prepare(work.path(), weeks, replicas);
    warm_cache(state.path());
    let (mut rate, mut rss) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let lake = lakes.path().join(format!("lake-{i}"));
        std::fs::create_dir_all(&lake).expect("the lake folder");
        let pipeline = work.path().join(format!("spark-input-{i}.yaml"));
        // A pipeline of its own per run: the state folder (the warm compile cache) keeps each
        // pipeline's checkpoint, from which a second run of the same name would resume.
        let name = format!("spark-input-{replicas}x-{i}");
        std::fs::write(&pipeline, spec(&name, &files, &lake)).expect("the pipeline file");
        let mut cmd = sluice(state.path());
        cmd.args(["run", "--once", "--pipelines"]).arg(&pipeline);
        let t = timed(cmd, "Processed the first batch");
        check_records(&t, records);
        eprintln!(
            "Spark's input {replicas}x run {}: sluice (file source) {:.2} s ({:.0} MB)",
            i + 1,
            t.wall.as_secs_f64(),
            t.peak_rss_mb
        );
        rate.push(records as f64 / t.wall.as_secs_f64());
        rss.push(t.peak_rss_mb);
        let _ = std::fs::remove_dir_all(&lake);
    }
    let n = |what: &str| format!("sluice_files_{replicas}x_{what}");
    let l = |what: &str| {
        format!("{replicas}x: sluice run --once, file source over Spark's input, {what}")
    };
    report.add(Figure::new(
        SECTION,
        &n("records_per_s"),
        &l("records/s"),
        "rec/s",
        rate,
    ));
    report.add(Figure::new(
        SECTION,
        &n("peak_rss_mb"),
        &l("peak RSS"),
        "MB",
        rss,
    ));
}
