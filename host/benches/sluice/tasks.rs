//! Section 5, tasks: `sluice run --once` over the replicated set in a 16-partition topic
//! keyed by station, run as 1, 2 and `nproc` tasks (`parallelism:`): records/s, and the
//! efficiency against linear scaling (rate with n tasks / (n × rate with one)). On a machine
//! with fewer cores than tasks this shows the overhead of the tasks, not a speed-up.

use std::path::PathBuf;

use crate::cli::{Broker, produce_into};
use crate::e2e::{check_records, prepare, run_tasks, scratch, warm_cache};
use crate::figures::{Figure, Report};

const SECTION: &str = "tasks";
/// Partitions of the topic: more than the tasks of any run here.
const PARTITIONS: u32 = 16;

/// Runs the task counts `runs` times each over `replicas` replicas of `weeks`.
pub fn run(broker: &Broker, weeks: &[PathBuf], replicas: usize, runs: usize, report: &mut Report) {
    let (work, lakes, state) = scratch();
    let (files, records) = prepare(work.path(), weeks, replicas);
    let topic = format!("bench-tasks-{replicas}x");
    let produced = produce_into(broker, &topic, &files, PARTITIONS);
    eprintln!("tasks {replicas}x: {produced}");
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    warm_cache(state.path());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts = vec![1, 2, cores];
    counts.dedup();
    let mut base = None;
    for &n in &counts {
        let mut rates = Vec::new();
        for i in 0..runs {
            let lake = lakes.path().join(format!("lake-{n}-{i}"));
            let run = format!("tasks-{n}-{i}");
            let (t, _) = run_tasks(broker, state.path(), &topic, &lake, &run, Some(n));
            check_records(&t, records);
            rates.push(records as f64 / t.wall.as_secs_f64());
            eprintln!(
                "tasks {replicas}x, {n} tasks, run {}: {:.2} s",
                i + 1,
                t.wall.as_secs_f64()
            );
            let _ = std::fs::remove_dir_all(&lake);
        }
        let name = format!("tasks_{replicas}x_{n}_records_per_s");
        let label = format!("{replicas}x ({records} records): {n} task(s)");
        let figure = Figure::new(SECTION, &name, &label, "rec/s", rates);
        let median = figure.median();
        report.add(figure);
        let one = *base.get_or_insert(median);
        if n > 1 {
            let efficiency = median / (n as f64 * one);
            report.add(Figure::new(
                SECTION,
                &format!("tasks_{replicas}x_{n}_efficiency"),
                &format!("{replicas}x: {n} tasks vs linear (goal >= 0.8 up to the cores)"),
                "ratio",
                vec![efficiency],
            ));
        }
    }
}
