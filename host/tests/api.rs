//! The HTTP API over a real TCP connection, on a real host whose pipeline manager ran a real
//! pipeline to its end (as `sluice run --once` does): pipeline status, Prometheus metrics with
//! the per-task series, health and readiness, JSON errors.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use sluice_host::manager::{Manager, State, reload};
use sluice_host::runtime::Host;

fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    request(addr, "GET", path, &["Host: 127.0.0.1"])
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
    let addr = sluice_host::api::server::serve("127.0.0.1:0".parse().unwrap(), state)
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

/// `method path` with `headers` (each `Name: value`); the status and the body.
fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n");
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    write!(stream, "{head}\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A host with an API token and a read token, whose pipeline writes windows to this
/// machine's PostgreSQL through a URL with a password (trust authentication ignores it):
/// reads need a token, the read token cannot change anything, a foreign Host name is
/// refused, and no answer shows the password.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_host_names_and_credentials_are_guarded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("records.csv");
    let lines = [
        "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,00:00:00,REGULAR,100,200",
        "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,04:00:00,REGULAR,150,260",
    ];
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let folder = dir.path().join("pipelines");
    std::fs::create_dir_all(&folder).unwrap();
    let table = format!("sluice_test_api_{}", std::process::id());
    let spec = format!(
        "version: 1\nname: warehouse\nsource: {{ file: {{ paths: [{:?}] }} }}\n\
         steps:\n  - transform: {{ plugin: turnstile-parse@^0.1, config: {{ format: weekly }} }}\n\
         \x20 - window: {{ plugin: turnstile-window@^0.1, event_time: timestamp, size: 4h, \
         config: {{ counters: incremental, group_by: [station] }} }}\n\
         sinks:\n  - postgres: {{ url: \"postgres://postgres:hunter2@127.0.0.1:5432/test\", \
         table: {table}, key: [station, window_start] }}\n",
        data.display().to_string(),
    );
    std::fs::write(folder.join("warehouse.yaml"), spec).unwrap();
    let plugins = PathBuf::from(sluice_plugin_artifacts::PLUGIN_DIR);
    let host = Host::new(&dir.path().join("state"), &[plugins]).unwrap();
    let manager = Manager::new(Arc::new(host), &folder, true);
    let mut state = sluice_host::api::ApiState::new(&manager);
    state.access.token = Some(Arc::from("admin-token"));
    state.access.read_token = Some(Arc::from("read-token"));
    let addr = sluice_host::api::server::serve("127.0.0.1:0".parse().unwrap(), state)
        .await
        .unwrap();
    reload::scan(&manager, &folder).await;
    manager.wait_for_ends().await;
    let outcome = manager.outcome("warehouse").unwrap();
    assert_eq!(outcome.state, State::Finished, "{outcome:?}");
    tokio::task::spawn_blocking(move || {
        let host = "Host: 127.0.0.1";
        let reader = "Authorization: Bearer read-token";
        let admin = "Authorization: Bearer admin-token";
        let detail = "/api/v1/pipelines/warehouse";
        assert_eq!(request(addr, "GET", detail, &[host]).0, 401);
        assert_eq!(request(addr, "GET", "/metrics", &[host]).0, 401);
        assert_eq!(request(addr, "GET", "/healthz", &[host]).0, 200);
        assert_eq!(request(addr, "GET", "/readyz", &[host]).0, 200);
        for path in [
            detail,
            "/api/v1/pipelines/warehouse/connectors",
            "/api/v1/pipelines",
        ] {
            let (code, body) = request(addr, "GET", path, &[host, reader]);
            assert_eq!(code, 200, "{path}: {body}");
            assert!(
                !body.contains("hunter2"),
                "{path} shows the password: {body}"
            );
        }
        let (_, body) = request(addr, "GET", detail, &[host, admin]);
        assert!(body.contains("postgres:***@127.0.0.1"), "{body}");
        let pause = "/api/v1/pipelines/warehouse/pause";
        assert_eq!(request(addr, "POST", pause, &[host, reader]).0, 401);
        let (code, body) = request(addr, "POST", pause, &[host, admin]);
        assert_ne!(code, 401, "{body}");
        let (code, body) = request(addr, "GET", detail, &["Host: rebound.example:80", admin]);
        assert_eq!(code, 403, "{body}");
        assert!(body.contains("host_not_allowed"), "{body}");
        assert_eq!(
            request(addr, "GET", detail, &["Host: localhost", admin]).0,
            200
        );
    })
    .await
    .unwrap();
    let (client, conn) = tokio_postgres::connect(
        "postgres://postgres@127.0.0.1:5432/test",
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let rows = client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap();
    assert_eq!(rows.get::<_, i64>(0), 2);
    client
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
