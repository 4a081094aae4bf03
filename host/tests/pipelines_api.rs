//! The pipeline endpoints through warp's test client, on a real host (real plugins, real
//! webhook and file sources): create from YAML and JSON, replace, the error answers (400
//! with positions, 404, 409, 413, 415), pause, resume, restart, offsets, connectors,
//! delete, `/readyz` and `/metrics`. The folder is the source of truth: every create writes
//! `<name>.yaml`, every delete removes it.

#[allow(unused_imports, reason = "only the spec helper is used")]
mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_host::manager::Manager;
use sluice_host::runtime::Host;

use common::webhook_spec;

struct Api {
    manager: Manager,
    folder: PathBuf,
    _dir: tempfile::TempDir,
}

impl Api {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let plugins = [
            PathBuf::from(sluice_plugin_artifacts::PLUGIN_DIR),
            PathBuf::from(sluice_plugin_artifacts::TEST_PLUGIN_DIR),
        ];
        let mut host = Host::new(&dir.path().join("state"), &plugins).unwrap();
        // The specs these tests send read and write under the test's folder.
        host.api_policy.file_roots.push(dir.path().to_owned());
        let folder = dir.path().join("pipelines");
        std::fs::create_dir_all(&folder).unwrap();
        let manager = Manager::new(Arc::new(host), &folder, false);
        Self {
            manager,
            folder,
            _dir: dir,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<(&str, &str)>) -> (u16, Value) {
        // A program's call: the marker header of the API's cross-site rule (guard.rs).
        let mut request = warp::test::request()
            .method(method)
            .path(path)
            .header("x-sluice-request", "1");
        if let Some((content_type, text)) = body {
            request = request
                .header("content-type", content_type)
                .header("content-length", text.len())
                .body(text);
        }
        let state = sluice_host::api::ApiState::new(&self.manager);
        let routes = sluice_host::api::routes(state);
        let response = request.reply(&routes).await;
        let status = response.status().as_u16();
        let body = response.body();
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    /// Polls the pipeline until its state is `state` (60 s at most).
    async fn wait_state(&self, name: &str, state: &str) -> Value {
        let started = Instant::now();
        loop {
            let (code, body) = self.get(&format!("/api/v1/pipelines/{name}")).await;
            if code == 200 && body["status"]["state"] == state {
                return body;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "`{name}` never became {state}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.folder.join(format!("{name}.yaml"))
    }
}

fn is_error(body: &Value, code: &str) {
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body.get("details").is_some(), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn create_replace_and_delete_keep_the_folder_in_step() {
    let api = Api::new();
    assert_eq!(
        api.get("/api/v1/pipelines").await,
        (200, serde_json::json!([]))
    );
    let spec = webhook_spec("hook", "cumulative");
    let (code, body) = api
        .call(
            "POST",
            "/api/v1/pipelines",
            Some(("application/yaml", &spec)),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["name"], "hook");
    assert_eq!(std::fs::read_to_string(api.file("hook")).unwrap(), spec);
    let running = api.wait_state("hook", "running").await;
    assert_eq!(
        running["spec"]["steps"][1]["window"]["config"]["counters"],
        "cumulative"
    );
    let stages = running["status"]["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2, "{running}");
    assert_eq!(stages[0]["plugin"], "turnstile-parse@0.1.0");

    let (code, body) = api
        .call("POST", "/api/v1/pipelines", Some(("text/yaml", &spec)))
        .await;
    assert_eq!(code, 409, "{body}");
    is_error(&body, "pipeline_exists");

    let (code, list) = api.get("/api/v1/pipelines").await;
    assert_eq!(code, 200);
    assert_eq!(list[0]["name"], "hook");
    assert_eq!(list[0]["state"], "running");
    assert_eq!(list[0]["plugins"][1], "turnstile-window@0.1.0");
    assert!(
        list[0]["file"].as_str().unwrap().ends_with("hook.yaml"),
        "{list}"
    );

    let changed = webhook_spec("hook", "incremental");
    let (code, body) = api
        .call(
            "PUT",
            "/api/v1/pipelines/hook",
            Some(("application/x-yaml", &changed)),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let replaced = api.wait_state("hook", "running").await;
    assert_eq!(
        replaced["spec"]["steps"][1]["window"]["config"]["counters"],
        "incremental"
    );
    assert_eq!(std::fs::read_to_string(api.file("hook")).unwrap(), changed);

    let other = webhook_spec("other", "cumulative");
    let (code, body) = api
        .call(
            "PUT",
            "/api/v1/pipelines/hook",
            Some(("application/yaml", &other)),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    is_error(&body, "name_mismatch");
    let (code, body) = api
        .call(
            "PUT",
            "/api/v1/pipelines/other",
            Some(("application/yaml", &other)),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    api.wait_state("other", "running").await;

    let (code, body) = api.call("DELETE", "/api/v1/pipelines/hook", None).await;
    assert_eq!((code, body), (204, Value::Null));
    assert!(!api.file("hook").exists());
    let (code, body) = api.get("/api/v1/pipelines/hook").await;
    assert_eq!(code, 404);
    is_error(&body, "pipeline_not_found");
    let (code, body) = api.call("DELETE", "/api/v1/pipelines/hook", None).await;
    assert_eq!(code, 404, "{body}");
    api.manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_bodies_are_stored_as_yaml() {
    let api = Api::new();
    let spec: Value = serde_yaml::from_str(&webhook_spec("from-json", "cumulative")).unwrap();
    let (code, body) = api
        .call(
            "POST",
            "/api/v1/pipelines",
            Some(("application/json", &spec.to_string())),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let stored: Value =
        serde_yaml::from_str(&std::fs::read_to_string(api.file("from-json")).unwrap()).unwrap();
    assert_eq!(stored, spec);
    api.wait_state("from-json", "running").await;
    let (code, body) = api
        .call(
            "POST",
            "/api/v1/pipelines",
            Some(("application/json", "{not json")),
        )
        .await;
    assert_eq!(code, 400);
    is_error(&body, "invalid_json");
    api.manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_specs_and_bodies_are_4xx_with_the_place() {
    let api = Api::new();
    let bad = webhook_spec("bad", "cumulative").replace("size: 4h", "sise: 4h");
    let (code, body) = api
        .call(
            "POST",
            "/api/v1/pipelines",
            Some(("application/yaml", &bad)),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    is_error(&body, "invalid_spec");
    let error = &body["details"]["errors"][0];
    assert_eq!(
        (error["line"].as_u64(), error["column"].as_u64()),
        (Some(10), Some(7)),
        "{body}"
    );
    assert_eq!(error["path"], "steps[1].window", "{body}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `sise`"),
        "{body}"
    );

    let missing = webhook_spec("bad", "cumulative").replace("turnstile-parse@^0.1", "nope@^1");
    let (code, body) = api
        .call(
            "POST",
            "/api/v1/pipelines",
            Some(("application/yaml", &missing)),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    let error = &body["details"]["errors"][0];
    assert_eq!(error["line"], 6, "{body}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no plugin named `nope`"),
        "{body}"
    );
    assert!(!api.file("bad").exists(), "a refused spec is not written");

    for garbage in ["", ": : :", "\u{0}\u{1}"] {
        let (code, body) = api
            .call(
                "POST",
                "/api/v1/pipelines",
                Some(("application/yaml", garbage)),
            )
            .await;
        assert_eq!(code, 400, "{garbage:?}: {body}");
        is_error(&body, "invalid_spec");
    }
    let spec = webhook_spec("p", "cumulative");
    let (code, body) = api
        .call("POST", "/api/v1/pipelines", Some(("text/plain", &spec)))
        .await;
    assert_eq!(code, 415, "{body}");
    is_error(&body, "unsupported_media_type");
    let (code, body) = api
        .call("POST", "/api/v1/pipelines", Some(("", &spec)))
        .await;
    assert_eq!(code, 415, "{body}");
    let (code, body) = api.call("POST", "/api/v1/pipelines", None).await;
    assert_eq!(code, 411, "a body needs its length: {body}");
    let huge = "#".repeat(2 << 20);
    let (code, body) = api
        .call(
            "POST",
            "/api/v1/pipelines",
            Some(("application/yaml", &huge)),
        )
        .await;
    assert_eq!(code, 413, "{body}");
    is_error(&body, "payload_too_large");
    assert_eq!(api.get("/api/v1/pipelines").await.1, serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_resume_restart_offsets_and_connectors() {
    let api = Api::new();
    let spec = webhook_spec("hook", "cumulative");
    api.call(
        "POST",
        "/api/v1/pipelines",
        Some(("application/yaml", &spec)),
    )
    .await;
    api.wait_state("hook", "running").await;
    assert_eq!(api.get("/readyz").await.0, 200);

    let offsets = r#"{"reset":"earliest"}"#;
    let (code, body) = api
        .call(
            "PUT",
            "/api/v1/pipelines/hook/offsets",
            Some(("application/json", offsets)),
        )
        .await;
    assert_eq!(code, 409, "offsets are reset only while paused: {body}");
    is_error(&body, "conflict");

    let (code, status) = api.call("POST", "/api/v1/pipelines/hook/pause", None).await;
    assert_eq!(code, 202, "{status}");
    assert_eq!(status["state"], "paused");
    let (code, body) = api.get("/readyz").await;
    assert_eq!(code, 503, "{body}");
    is_error(&body, "not_ready");
    let (code, body) = api
        .call(
            "PUT",
            "/api/v1/pipelines/hook/offsets",
            Some(("application/json", offsets)),
        )
        .await;
    assert_eq!(code, 400, "an http source has no offsets: {body}");
    is_error(&body, "unsupported");
    for bad in [
        r#"{"reset":"middle"}"#,
        r#"{}"#,
        "[1]",
        r#"{"partitions":[{"partition":0,"offset":-4}]}"#,
    ] {
        let (code, body) = api
            .call(
                "PUT",
                "/api/v1/pipelines/hook/offsets",
                Some(("application/json", bad)),
            )
            .await;
        assert_eq!(code, 400, "{bad}: {body}");
        is_error(&body, "invalid_offsets");
    }
    assert_eq!(
        api.get("/api/v1/pipelines/hook/offsets").await,
        (200, serde_json::json!({ "partitions": [] }))
    );

    let (code, status) = api
        .call("POST", "/api/v1/pipelines/hook/resume", None)
        .await;
    assert_eq!(code, 202, "{status}");
    api.wait_state("hook", "running").await;
    let (code, status) = api
        .call("POST", "/api/v1/pipelines/hook/restart", None)
        .await;
    assert_eq!(code, 202, "{status}");
    api.wait_state("hook", "running").await;

    let (code, connectors) = api.get("/api/v1/pipelines/hook/connectors").await;
    assert_eq!(code, 200, "{connectors}");
    assert_eq!(connectors[0]["kind"], "source");
    assert_eq!(connectors[0]["type"], "http");
    assert_eq!(connectors[1]["name"], "live");
    assert_eq!(connectors[1]["kind"], "sink");
    assert_eq!(connectors[1]["state"], "running");
    let (code, body) = api
        .call(
            "POST",
            "/api/v1/pipelines/hook/connectors/live/restart",
            None,
        )
        .await;
    assert_eq!(code, 202, "{body}");
    let (code, body) = api
        .call(
            "POST",
            "/api/v1/pipelines/hook/connectors/nope/restart",
            None,
        )
        .await;
    assert_eq!(code, 404, "{body}");
    is_error(&body, "connector_not_found");
    for path in [
        "/api/v1/pipelines/nope/pause",
        "/api/v1/pipelines/nope/resume",
        "/api/v1/pipelines/nope/restart",
    ] {
        let (code, body) = api.call("POST", path, None).await;
        assert_eq!(code, 404, "{path}: {body}");
        is_error(&body, "pipeline_not_found");
    }
    for path in [
        "/api/v1/pipelines/nope/offsets",
        "/api/v1/pipelines/nope/connectors",
    ] {
        assert_eq!(api.get(path).await.0, 404, "{path}");
    }
    api.manager.shutdown().await;
}

/// A file source ends: its pipeline finishes, with its counters in the status and metrics.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_pipeline_finishes_with_its_counters_in_the_metrics() {
    let api = Api::new();
    let data = api.folder.join("../records.csv");
    let lines = [
        "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,00:00:00,REGULAR,100,200",
        "not a record",
        "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,04:00:00,REGULAR,150,260",
    ];
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let spec = webhook_spec("replay", "cumulative").replace(
        r#"http: { listen: "127.0.0.1:0", path: /ingest }"#,
        &format!("file: {{ paths: [{:?}] }}", data.display().to_string()),
    );
    let (code, body) = api
        .call(
            "POST",
            "/api/v1/pipelines",
            Some(("application/yaml", &spec)),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let done = api.wait_state("replay", "finished").await;
    let stages = &done["status"]["stages"];
    assert_eq!(stages[0]["records_in"], 3, "{done}");
    assert_eq!(stages[0]["records_out"], 2, "{done}");
    assert_eq!(stages[0]["failed"], 1, "{done}");
    assert_eq!(done["status"]["records_in"], 3, "{done}");
    assert_eq!(api.get("/readyz").await.0, 200);
    let (code, text) = api.get("/metrics").await;
    assert_eq!(code, 200);
    let text = text.as_str().unwrap().to_owned();
    for line in [
        r#"sluice_records_in_total{pipeline="replay",stage="source"} 3"#,
        r#"sluice_records_failed_total{pipeline="replay",stage="steps[0] transform turnstile-parse@0.1.0"} 1"#,
        r#"sluice_pipeline_state{pipeline="replay",state="finished"} 1"#,
        r#"sluice_pipeline_state{pipeline="replay",state="running"} 0"#,
        "# TYPE sluice_plugin_call_seconds_total counter",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

/// A spec whose plugin `init` loops is checked outside the operations lock: while its PUT
/// waits for the plugin's call deadline, another pipeline is created, and the PUT is then
/// refused naming the deadline.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_plugin_init_does_not_hold_the_other_operations() {
    let api = Api::new();
    let slow = "version: 1\nname: slow\nsource: { http: { listen: \"127.0.0.1:0\", path: /in } }\n\
                steps:\n  - transform: { plugin: hostile@^0.1, config: { init: loop }, \
                limits: { call_timeout: 5s } }\nsinks: [ { stdout: {} } ]\n";
    let put = async {
        let answer = api
            .call(
                "PUT",
                "/api/v1/pipelines/slow",
                Some(("application/yaml", slow)),
            )
            .await;
        (answer, Instant::now())
    };
    let create = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let spec = webhook_spec("quick", "cumulative");
        let answer = api
            .call(
                "POST",
                "/api/v1/pipelines",
                Some(("application/yaml", &spec)),
            )
            .await;
        (answer, Instant::now())
    };
    let (((slow_code, slow_body), slow_done), ((code, body), created)) = tokio::join!(put, create);
    assert_eq!(code, 201, "{body}");
    assert!(
        created < slow_done,
        "the create waited for the slow check to end ({:?} after it; {slow_body})",
        created - slow_done
    );
    assert_eq!(slow_code, 400, "{slow_body}");
    let text = slow_body.to_string();
    assert!(text.contains("hostile"), "{text}");
    assert_eq!(api.get("/api/v1/pipelines/slow").await.0, 404);
}

/// Specs sent through the API get only what the host grants: reading `/etc/passwd`, an
/// environment variable it does not name, a broker elsewhere are refused with 403 naming
/// the option that grants them, and no answer shows a variable's value.
#[tokio::test(flavor = "multi_thread")]
async fn api_specs_get_only_what_the_policy_grants() {
    let api = Api::new();
    let post = |spec: String| {
        let api = &api;
        async move {
            api.call(
                "POST",
                "/api/v1/pipelines",
                Some(("application/yaml", &spec)),
            )
            .await
        }
    };
    let spec = |source: &str| {
        format!("version: 1\nname: p\nsource: {{ {source} }}\nsinks: [ {{ stdout: {{}} }} ]\n")
    };
    let (code, body) = post(spec("file: { paths: [\"/etc/passwd\"] }")).await;
    assert_eq!(code, 403, "{body}");
    is_error(&body, "refused_by_policy");
    assert!(body.to_string().contains("--api-grant-files"), "{body}");

    let (code, body) = post(spec("kafka: { brokers: \"kafka.corp:9092\", topic: t }")).await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body.to_string().contains("--api-grant-host kafka.corp"),
        "{body}"
    );

    let home = std::env::var("HOME").unwrap();
    let text = spec("http: { path: /in }").replace("name: p", "name: \"${HOME}\"");
    let (code, body) = post(text).await;
    assert_eq!(code, 403, "{body}");
    assert!(body.to_string().contains("`${HOME}` is refused"), "{body}");
    assert!(!body.to_string().contains(&home), "{body}");
    assert!(!api.file("p").exists());
}
