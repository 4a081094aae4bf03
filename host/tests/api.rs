//! The HTTP API over a real TCP connection, on a real host whose pipeline manager ran a real
//! pipeline to its end (as `sluice run --once` does): pipeline status, Prometheus metrics with
//! the per-task series, health and readiness, JSON errors.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use sluice_host::manager::{Manager, State, reload};
use sluice_host::runtime::Host;

fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A folder with `parse.yaml`: a file of three lines (one of them garbage) through the parse
/// plugin into a lake. It keeps no window state, so it runs as tasks over its partitions.
fn folder(dir: &std::path::Path) -> PathBuf {
    let data = dir.join("records.csv");
    let lines = [
        "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,00:00:00,REGULAR,100,200",
        "not a record",
        "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,04:00:00,REGULAR,150,260",
    ];
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let folder = dir.join("pipelines");
    std::fs::create_dir_all(&folder).unwrap();
    let spec = format!(
        "version: 1\nname: parse\nsource: {{ file: {{ paths: [{:?}] }} }}\n\
         steps:\n  - transform: {{ plugin: turnstile-parse@^0.1, config: {{ format: weekly }} }}\n\
         sinks:\n  - lake: {{ url: \"file://{}\", compression: none }}\n\
         errors:\n  dlq: {{ lake: {{ url: \"file://{}\" }} }}\n",
        data.display().to_string(),
        dir.join("lake").display(),
        dir.join("dlq").display(),
    );
    std::fs::write(folder.join("parse.yaml"), spec).unwrap();
    folder
}

#[tokio::test(flavor = "multi_thread")]
async fn status_metrics_health_and_errors_of_a_finished_run() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = PathBuf::from(sluice_plugin_artifacts::PLUGIN_DIR);
    let host = Host::new(&dir.path().join("state"), &[plugins]).unwrap();
    let folder = folder(dir.path());
    let manager = Manager::new(Arc::new(host), &folder, true);
    let state = sluice_host::api::ApiState::new(&manager);
    let addr = sluice_host::api::serve("127.0.0.1:0".parse().unwrap(), state)
        .await
        .unwrap();
    reload::scan(&manager, &folder).await;
    manager.wait_for_ends().await;
    let outcome = manager.outcome("parse").unwrap();
    assert_eq!(outcome.state, State::Finished, "{outcome:?}");
    assert!(
        outcome.summary.as_deref().unwrap_or("").contains("records"),
        "{outcome:?}"
    );
    tokio::task::spawn_blocking(move || {
        let (code, body) = get(addr, "/api/v1/pipelines/parse");
        assert_eq!(code, 200, "{body}");
        let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
        let status = &detail["status"];
        assert_eq!(status["state"], "finished", "{body}");
        assert_eq!(status["records_in"], 3, "{body}");
        assert_eq!(status["dead_letters"], 1, "{body}");
        let tasks = status["tasks"].as_array().expect("tasks");
        assert_eq!(tasks.len(), 1, "{body}");
        assert_eq!(tasks[0]["counts"]["records_in"], 3, "{body}");
        assert_eq!(tasks[0]["counts"]["rows_out"], 2, "{body}");
        assert_eq!(tasks[0]["counts"]["dead_letters"], 1, "{body}");

        let (code, body) = get(addr, "/metrics");
        assert_eq!(code, 200);
        for line in [
            r#"sluice_records_in_total{pipeline="parse",stage="source"} 3"#,
            r#"sluice_task_records_in_total{pipeline="parse",task="0"} 3"#,
            r#"sluice_task_rows_out_total{pipeline="parse",task="0"} 2"#,
            r#"sluice_task_dead_letters_total{pipeline="parse",task="0"} 1"#,
            r#"sluice_task_restarts_total{pipeline="parse",task="0"} 0"#,
            r#"sluice_pipeline_state{pipeline="parse",state="finished"} 1"#,
        ] {
            assert!(body.contains(line), "{line} missing from:\n{body}");
        }
        // One metrics set: no family is written twice.
        let families: Vec<&str> = body
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        let mut unique = families.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), families.len(), "{body}");

        assert_eq!(get(addr, "/healthz").0, 200);
        assert_eq!(get(addr, "/readyz").0, 200);
        let (code, body) = get(addr, "/api/v1/pipelines/nope");
        assert_eq!(code, 404);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["code"],
            "pipeline_not_found"
        );
        let (code, body) = get(addr, "/no/such/endpoint");
        assert_eq!(code, 404);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["code"],
            "not_found"
        );
    })
    .await
    .unwrap();
}
