//! `/metrics` of a managed host in the Prometheus text format: per pipeline and stage the
//! records in, out and failed, bytes, plugin call time; per pipeline the dead letters, late
//! records, consumer lag per partition, watermark delay, the longest consumption pause of a
//! switch and the state; per task the partitions it owns, those that failed, and its records
//! in, rows out, dead letters, late records and restarts; per sink the rows written.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value as Json;

use crate::manager::{Manager, State};

/// One metric family being written.
struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        Self { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The stage counters each family reads, with its help text.
const STAGE_COUNTERS: [(&str, &str); 5] = [
    (
        "sluice_records_in_total",
        "Records into a stage (stage=\"source\": read from the source).",
    ),
    (
        "sluice_records_out_total",
        "Records out of a stage (stage=\"sinks\": rows written to the sinks).",
    ),
    (
        "sluice_records_failed_total",
        "Records a stage rejected (dead-lettered).",
    ),
    (
        "sluice_bytes_in_total",
        "Bytes of the records into a stage.",
    ),
    (
        "sluice_bytes_out_total",
        "Bytes of the records out of a stage.",
    ),
];

/// The Prometheus text of every pipeline of `manager`.
pub async fn render(manager: &Manager) -> String {
    let mut snapshots = Vec::new();
    for name in manager.names() {
        if let Ok(detail) = manager.detail(&name).await {
            let stages = manager.stage_infos(&name);
            snapshots.push((name, detail, stages));
        }
    }
    let mut out = String::new();
    for (i, (metric, help)) in STAGE_COUNTERS.iter().enumerate() {
        let mut family = Family::new(&mut out, metric, "counter", help);
        for (name, detail, stages) in &snapshots {
            let name = name.as_str();
            let s = &detail.status;
            match i {
                0 => family.sample(
                    metric,
                    &[("pipeline", name), ("stage", "source")],
                    s.records_in,
                ),
                1 => family.sample(
                    metric,
                    &[("pipeline", name), ("stage", "sinks")],
                    s.rows_out,
                ),
                _ => {}
            }
            for info in stages {
                let c = &info.counters;
                let counter: &AtomicU64 = match i {
                    0 => &c.records_in,
                    1 => &c.records_out,
                    2 => &c.failed,
                    3 => &c.bytes_in,
                    _ => &c.bytes_out,
                };
                let labels = [("pipeline", name), ("stage", info.stage.as_str())];
                family.sample(metric, &labels, counter.load(Ordering::Relaxed));
            }
        }
    }
    plugin_metrics(&mut out, &snapshots);
    pipeline_metrics(&mut out, manager, &snapshots);
    out
}

type Snapshot = (
    String,
    crate::manager::Detail,
    Vec<crate::runtime::StageInfo>,
);

fn plugin_metrics(out: &mut String, snapshots: &[Snapshot]) {
    let metric = "sluice_plugin_call_seconds_total";
    let mut family = Family::new(out, metric, "counter", "Time spent in plugin calls.");
    for (name, _, stages) in snapshots {
        let name = name.as_str();
        for info in stages {
            let seconds = info.counters.call_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let labels = [
                ("pipeline", name),
                ("stage", info.stage.as_str()),
                ("plugin", info.plugin.as_str()),
            ];
            family.sample(metric, &labels, seconds);
        }
    }
    let metric = "sluice_plugin_calls_total";
    let mut family = Family::new(out, metric, "counter", "Plugin calls.");
    for (name, _, stages) in snapshots {
        let name = name.as_str();
        for info in stages {
            let labels = [
                ("pipeline", name),
                ("stage", info.stage.as_str()),
                ("plugin", info.plugin.as_str()),
            ];
            family.sample(metric, &labels, info.counters.calls.load(Ordering::Relaxed));
        }
    }
    let metric = "sluice_plugin_memory_bytes";
    let mut family = Family::new(
        out,
        metric,
        "gauge",
        "Linear memory of a stage's plugin instance.",
    );
    for (name, _, stages) in snapshots {
        let name = name.as_str();
        for info in stages {
            let labels = [
                ("pipeline", name),
                ("stage", info.stage.as_str()),
                ("plugin", info.plugin.as_str()),
            ];
            family.sample(
                metric,
                &labels,
                info.counters.memory_bytes.load(Ordering::Relaxed),
            );
        }
    }
}

/// A gauge family of 1 per `{pipeline, task, partition}` for the partitions `of` each task.
fn task_partitions(
    out: &mut String,
    snapshots: &[Snapshot],
    metric: &str,
    help: &str,
    of: fn(&crate::cluster::TaskRecord) -> Vec<i32>,
) {
    let mut family = Family::new(out, metric, "gauge", help);
    for (name, detail, _) in snapshots {
        for task in &detail.status.tasks {
            let number = task.task.to_string();
            for partition in of(task) {
                let partition = partition.to_string();
                let labels = [
                    ("pipeline", name.as_str()),
                    ("task", &number),
                    ("partition", &partition),
                ];
                family.sample(metric, &labels, 1);
            }
        }
    }
}

/// The counter families of each task: what its chains did since the run started.
fn task_counters(out: &mut String, snapshots: &[Snapshot]) {
    type Count = fn(&crate::runtime::TaskCounts) -> u64;
    let families: [(&str, &str, Count); 5] = [
        (
            "sluice_task_records_in_total",
            "Records into the chains of a task.",
            |c| c.records_in,
        ),
        (
            "sluice_task_rows_out_total",
            "Result rows the chains of a task emitted for the sinks.",
            |c| c.rows_out,
        ),
        (
            "sluice_task_dead_letters_total",
            "Records the chains of a task dead-lettered.",
            |c| c.dead_letters,
        ),
        (
            "sluice_task_late_dropped_total",
            "Late records the windows of a task dropped.",
            |c| c.late_dropped,
        ),
        (
            "sluice_task_restarts_total",
            "Restarts of a task's partition from its checkpoint (the other tasks go on).",
            |c| c.restarts,
        ),
    ];
    for (metric, help, count) in families {
        let mut family = Family::new(out, metric, "counter", help);
        for (name, detail, _) in snapshots {
            for task in &detail.status.tasks {
                let number = task.task.to_string();
                let labels = [("pipeline", name.as_str()), ("task", number.as_str())];
                family.sample(metric, &labels, count(&task.counts));
            }
        }
    }
}

/// Reads one gauge from a pipeline's status.
type Gauge = fn(&crate::manager::StatusView) -> f64;

fn pipeline_metrics(out: &mut String, manager: &Manager, snapshots: &[Snapshot]) {
    let simple: [(&str, &str, &str, Gauge); 4] = [
        (
            "sluice_dead_letters_total",
            "counter",
            "Records sent to the dead-letter destination.",
            |s| s.dead_letters as f64,
        ),
        (
            "sluice_late_dropped_total",
            "counter",
            "Late records dropped.",
            |s| s.late_dropped as f64,
        ),
        (
            "sluice_window_conflicts_total",
            "counter",
            "Final windows emitted again with other values (a window closed before its data \
             was complete; always a bug).",
            |s| s.window_conflicts as f64,
        ),
        (
            "sluice_switch_pause_seconds_max",
            "gauge",
            "Longest consumption pause of a switch between runs.",
            |s| s.longest_switch_pause_ms as f64 / 1000.0,
        ),
    ];
    for (metric, kind, help, value) in simple {
        let mut family = Family::new(out, metric, kind, help);
        for (name, detail, _) in snapshots {
            let name = name.as_str();
            family.sample(metric, &[("pipeline", name)], value(&detail.status));
        }
    }
    let metric = "sluice_watermark_delay_seconds";
    let mut family = Family::new(
        out,
        metric,
        "gauge",
        "Wall clock minus the pipeline's watermark.",
    );
    for (name, detail, _) in snapshots {
        let name = name.as_str();
        if let Some(delay) = detail.status.watermark_delay_seconds {
            family.sample(metric, &[("pipeline", name)], delay);
        }
    }
    let metric = "sluice_consumer_lag";
    let mut family = Family::new(
        out,
        metric,
        "gauge",
        "Records between the committed offset and the end of a partition.",
    );
    for (name, detail, _) in snapshots {
        let name = name.as_str();
        for lag in &detail.status.lag {
            let partition = lag.partition.to_string();
            family.sample(
                metric,
                &[("pipeline", name), ("partition", partition.as_str())],
                lag.lag,
            );
        }
    }
    task_partitions(
        out,
        snapshots,
        "sluice_task_partition",
        "1 for each source partition a task of the pipeline owns on this host.",
        |task| task.partitions.clone(),
    );
    task_partitions(
        out,
        snapshots,
        "sluice_task_failed",
        "1 for each source partition whose task failed for good (the pipeline's other tasks go on).",
        |task| task.failed.iter().map(|f| f.partition).collect(),
    );
    task_counters(out, snapshots);
    let metric = "sluice_pipeline_state";
    let mut family = Family::new(
        out,
        metric,
        "gauge",
        "1 for the pipeline's current state, 0 for the others.",
    );
    for (name, detail, _) in snapshots {
        let name = name.as_str();
        for state in State::ALL {
            let on = u8::from(detail.status.state == state);
            family.sample(metric, &[("pipeline", name), ("state", state.as_str())], on);
        }
    }
    let metric = "sluice_up";
    let mut family = Family::new(
        out,
        metric,
        "gauge",
        "Whether the pipeline is running (1) or not (0).",
    );
    for (name, detail, _) in snapshots {
        let name = name.as_str();
        family.sample(
            metric,
            &[("pipeline", name)],
            u8::from(detail.status.state == State::Running),
        );
    }
    let metric = "sluice_sink_rows_written_total";
    let mut family = Family::new(out, metric, "counter", "Rows a sink reports written.");
    for (name, _, _) in snapshots {
        let name = name.as_str();
        let sinks = manager
            .host()
            .live
            .connectors(name)
            .map(|c| Json::Array(c.sinks))
            .unwrap_or_default();
        for sink in sinks.as_array().into_iter().flatten() {
            if let Some(rows) = sink["rows_written"].as_u64() {
                let kind = sink["sink"].as_str().unwrap_or("sink");
                family.sample(metric, &[("pipeline", name), ("sink", kind)], rows);
            }
        }
    }
}
