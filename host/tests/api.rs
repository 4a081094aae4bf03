//! The HTTP API over a real TCP connection: pipeline status, Prometheus metrics, health and
//! readiness, JSON errors.

use std::io::{Read, Write};

use serde_json::json;
use sluice_host::sinks::live::LiveHub;

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

fn hub() -> LiveHub {
    let hub = LiveHub::default();
    hub.publish("turnstile", &json!({ "type": "state", "state": "running" }));
    let stats = json!({ "type": "stats", "records_in": 250816, "rows_out": 15499, "dead_letters": 2,
        "late_dropped": 0, "watermark": "2024-01-05 20:00:00", "rate": 120000.0 });
    hub.publish("turnstile", &stats);
    let sinks =
        json!([{ "sink": "lake" }, { "sink": "postgres", "rows_written": 15499, "table": "t" }]);
    hub.publish(
        "turnstile",
        &json!({ "type": "connectors", "sinks": sinks }),
    );
    hub.publish(
        "other",
        &json!({ "type": "state", "state": "failed", "error": "plugin trapped" }),
    );
    hub
}

#[tokio::test(flavor = "multi_thread")]
async fn status_metrics_health_and_errors() {
    let addr = sluice_host::api::serve("127.0.0.1:0".parse().unwrap(), hub())
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || {
        let (code, body) = get(addr, "/api/v1/pipelines/turnstile");
        assert_eq!(code, 200, "{body}");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status["state"], "running");
        assert_eq!(status["records_in"], 250816);
        assert_eq!(status["watermark"], "2024-01-05 20:00:00");
        assert_eq!(status["sinks"][1]["rows_written"], 15499);

        let (_, body) = get(addr, "/api/v1/pipelines/other");
        let other: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (other["state"].as_str(), other["last_error"].as_str()),
            (Some("failed"), Some("plugin trapped"))
        );

        let (code, body) = get(addr, "/metrics");
        assert_eq!(code, 200);
        assert!(
            body.contains("sluice_records_in_total{pipeline=\"turnstile\"} 250816"),
            "{body}"
        );
        assert!(body.contains("sluice_up{pipeline=\"other\"} 0"), "{body}");
        assert!(
            body.contains(
                "sluice_sink_rows_written_total{pipeline=\"turnstile\",sink=\"postgres\"} 15499"
            ),
            "{body}"
        );

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
