//! Pipeline status and Prometheus metrics of a host without a pipeline manager (`sluice run
//! --once`, or a bare [`LiveHub`]), read from the latest `state`, `stats` and `connectors`
//! events each pipeline publishes on its live channel.

use std::fmt::Write;

use serde_json::{Value as Json, json};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::sinks::live::LiveHub;

/// `GET /api/v1/pipelines` (names), `GET /api/v1/pipelines/{name}`, `/readyz`, `/metrics`.
pub fn routes(hub: LiveHub) -> BoxedFilter<(Response,)> {
    let with_hub = warp::any().map(move || hub.clone());
    let list = warp::path!("api" / "v1" / "pipelines")
        .and(warp::get())
        .and(with_hub.clone())
        .map(|hub: LiveHub| warp::reply::json(&hub.pipelines()).into_response());
    let ready = warp::path("readyz")
        .and(warp::path::end())
        .map(|| "ready".into_response());
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(with_hub.clone())
        .map(|hub: LiveHub| {
            let text = metrics(&hub);
            warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4")
                .into_response()
        });
    let get = warp::path!("api" / "v1" / "pipelines" / String)
        .and(warp::get())
        .and(with_hub)
        .map(|name: String, hub: LiveHub| match pipeline(&hub, &name) {
            Some(body) => warp::reply::json(&body).into_response(),
            None => super::unknown(&name).into_response(),
        });
    list.or(get)
        .unify()
        .or(ready)
        .unify()
        .or(metrics)
        .unify()
        .boxed()
}

/// `GET /api/v1/pipelines/{name}`: state, counters, watermark and sink statuses.
pub fn pipeline(hub: &LiveHub, name: &str) -> Option<Json> {
    if !hub.pipelines().iter().any(|p| p == name) {
        return None;
    }
    let state = hub
        .latest(name, "state")
        .unwrap_or_else(|| json!({ "state": "running" }));
    let stats = hub.latest(name, "stats").unwrap_or(Json::Null);
    let sinks = hub
        .latest(name, "connectors")
        .map_or(Json::Null, |c| c["sinks"].clone());
    Some(json!({
        "name": name,
        "state": state["state"],
        "last_error": state.get("error").cloned().unwrap_or(Json::Null),
        "records_in": stats["records_in"],
        "rows_out": stats["rows_out"],
        "dead_letters": stats["dead_letters"],
        "late_dropped": stats["late_dropped"],
        "window_conflicts": stats["window_conflicts"],
        "watermark": stats["watermark"],
        "records_per_s": stats["rate"],
        "sinks": sinks,
    }))
}

/// `GET /metrics`: Prometheus text format.
pub fn metrics(hub: &LiveHub) -> String {
    let counters = [
        (
            "records_in",
            "sluice_records_in_total",
            "Records read from the source.",
        ),
        (
            "rows_out",
            "sluice_rows_out_total",
            "Rows written to the sinks.",
        ),
        (
            "dead_letters",
            "sluice_dead_letters_total",
            "Records sent to the dead-letter destination.",
        ),
        (
            "late_dropped",
            "sluice_late_dropped_total",
            "Late records dropped.",
        ),
        (
            "window_conflicts",
            "sluice_window_conflicts_total",
            "Final windows emitted again with other values (always a bug).",
        ),
    ];
    let pipelines = hub.pipelines();
    let mut out = String::new();
    for (field, metric, help) in counters {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} counter");
        for name in &pipelines {
            let value = hub
                .latest(name, "stats")
                .and_then(|s| s[field].as_u64())
                .unwrap_or(0);
            let _ = writeln!(out, "{metric}{{pipeline=\"{}\"}} {value}", escape(name));
        }
    }
    let _ = writeln!(
        out,
        "# HELP sluice_up Whether the pipeline is running (1) or not (0).\n# TYPE sluice_up gauge"
    );
    for name in &pipelines {
        let running = hub
            .latest(name, "state")
            .is_none_or(|s| s["state"] == "running");
        let _ = writeln!(
            out,
            "sluice_up{{pipeline=\"{}\"}} {}",
            escape(name),
            u8::from(running)
        );
    }
    let _ = writeln!(
        out,
        "# HELP sluice_sink_rows_written_total Rows a sink reports written.\n# TYPE sluice_sink_rows_written_total counter"
    );
    for name in &pipelines {
        let sinks = hub
            .latest(name, "connectors")
            .map_or(Json::Null, |c| c["sinks"].clone());
        for sink in sinks.as_array().into_iter().flatten() {
            if let Some(rows) = sink["rows_written"].as_u64() {
                let kind = sink["sink"].as_str().unwrap_or("sink");
                let _ = writeln!(
                    out,
                    "sluice_sink_rows_written_total{{pipeline=\"{}\",sink=\"{kind}\"}} {rows}",
                    escape(name)
                );
            }
        }
    }
    out
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}
