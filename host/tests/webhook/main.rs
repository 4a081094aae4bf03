//! Integration tests of the `http` (webhook) source over real sockets, with a hand-written
//! HTTP/1.1 client and a fake runtime that takes batches and commits them after a delay (both
//! in `harness.rs`): a request is answered only after the commit covering its records; records
//! and offsets reach the batches in order; every refusal has its status and JSON error; no
//! commit means 503 after the timeout; stopping answers waiting requests and ends the thread.

mod harness;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use harness::*;
use sluice_host::sources::http::HttpSourceSettings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_acknowledged_only_after_the_commit() {
    let source = Source::start(settings(), Some(Duration::from_millis(300)));
    let started = Instant::now();
    let text = post(source.addr, "text/plain", b"a,1\r\nb,2\n\n  \nc,3").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    let first = accepted(&text, 3);
    after_commit(&source, &text, first + 2);
    let strings = post(source.addr, "application/json", br#"["x", "y,z"]"#).await;
    assert_eq!(accepted(&strings, 2), first + 3);
    after_commit(&source, &strings, first + 4);
    let body = br#"[{"station": "59 ST", "n": [1, 2.50]}, {"a": "b c"}]"#;
    let objects = post(source.addr, "application/json; charset=utf-8", body).await;
    assert_eq!(accepted(&objects, 2), first + 5);
    let values = [
        "a,1",
        "b,2",
        "c,3",
        "x",
        "y,z",
        r#"{"station":"59 ST","n":[1,2.50]}"#,
        r#"{"a":"b c"}"#,
    ];
    assert_eq!(records_from(&source, first), expect_records(first, &values));
    assert!(
        source.seen.lock().unwrap().idle_reports >= 1,
        "no idle report"
    );
    source.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_requests_are_split_into_batches() {
    let source = Source::start(settings(), Some(Duration::from_millis(10)));
    let lines: Vec<String> = (0..2500).map(|i| format!("record {i}")).collect();
    let answer = post(source.addr, "text/csv", lines.join("\n").as_bytes()).await;
    let first = accepted(&answer, 2500);
    after_commit(&source, &answer, first + 2499);
    let values: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(records_from(&source, first), expect_records(first, &values));
    assert_eq!(source.seen.lock().unwrap().sizes, [1000, 1000, 500]);
    source.stop();
}

fn small_bodies() -> HttpSourceSettings {
    HttpSourceSettings {
        max_body_bytes: 1024,
        ..settings()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_path_method_size_or_type_is_refused() {
    let source = Source::start(small_bodies(), Some(Duration::from_millis(10)));
    let addr = source.addr;
    let text = "Content-Type: text/plain";
    let wrong_path = format!("POST /ingest/other HTTP/1.1\r\n{text}\r\nContent-Length: 1");
    exchange(addr, &wrong_path, b"a")
        .await
        .refused(404, "not_found");
    let get = exchange(addr, &format!("GET {PATH} HTTP/1.1"), b"").await;
    get.refused(405, "method_not_allowed");
    assert_eq!(get.header("allow"), Some("POST"));
    let declared = format!("POST {PATH} HTTP/1.1\r\n{text}\r\nContent-Length: 5000");
    exchange(addr, &declared, b"")
        .await
        .refused(413, "body_too_large");
    let chunked = format!("POST {PATH} HTTP/1.1\r\n{text}\r\nTransfer-Encoding: chunked");
    let chunk = format!("800\r\n{}\r\n", "a\n".repeat(1024));
    let over = exchange(addr, &chunked, chunk.as_bytes()).await;
    over.refused(413, "body_too_large");
    post(addr, "application/xml", b"<a/>")
        .await
        .refused(415, "unsupported_media_type");
    let untyped = format!("POST {PATH} HTTP/1.1\r\nContent-Length: 1");
    exchange(addr, &untyped, b"a")
        .await
        .refused(415, "unsupported_media_type");
    assert!(
        source.seen.lock().unwrap().records.is_empty(),
        "a refused record was handed on"
    );
    source.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_without_usable_records_are_refused() {
    let source = Source::start(small_bodies(), Some(Duration::from_millis(10)));
    let (addr, json) = (source.addr, "application/json");
    post(addr, json, b"[\"a\",")
        .await
        .refused(400, "invalid_json");
    post(addr, json, b"{\"a\": 1}")
        .await
        .refused(400, "invalid_json");
    post(addr, json, b"[\"a\", 1]")
        .await
        .refused(400, "invalid_json");
    post(addr, "text/plain", b"ok\n\xff\xfe")
        .await
        .refused(400, "not_utf8");
    post(addr, "text/plain", b"")
        .await
        .refused(400, "empty_body");
    post(addr, "text/plain", b"\n \r\n")
        .await
        .refused(400, "empty_body");
    post(addr, json, b"[]").await.refused(400, "empty_body");
    assert!(
        source.seen.lock().unwrap().records.is_empty(),
        "a refused record was handed on"
    );
    source.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_limit_is_429_with_retry_after() {
    let config = HttpSourceSettings {
        max_records_per_s: Some(5),
        ..settings()
    };
    let source = Source::start(config, Some(Duration::from_millis(10)));
    accepted(&post(source.addr, "text/plain", b"1\n2\n3\n4\n5").await, 5);
    let limited = post(source.addr, "text/plain", b"6\n7\n8").await;
    limited.refused(429, "rate_limited");
    assert_eq!(limited.header("retry-after"), Some("1"));
    let six = post(source.addr, "text/plain", b"1\n2\n3\n4\n5\n6").await;
    six.refused(413, "too_many_records");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    accepted(&post(source.addr, "text/plain", b"6\n7\n8").await, 3);
    assert_eq!(source.seen.lock().unwrap().records.len(), 8);
    source.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_commit_the_request_times_out_with_503() {
    let config = HttpSourceSettings {
        ack_timeout: Duration::from_millis(400),
        ..settings()
    };
    let source = Source::start(config, None);
    let started = Instant::now();
    let answer = post(source.addr, "text/plain", b"lost?").await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    answer.refused(503, "not_acknowledged");
    assert!(
        answer.json["message"]
            .as_str()
            .unwrap()
            .contains("may still be processed")
    );
    let records = source.seen.lock().unwrap().records.clone();
    assert_eq!(records.len(), 1, "the records were still handed on");
    source.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_answers_waiting_requests_and_ends_the_thread() {
    let source = Source::start(settings(), None);
    let addr = source.addr;
    let waiting = tokio::spawn(async move { post(addr, "text/plain", b"a").await });
    while source.seen.lock().unwrap().records.is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped = Instant::now();
    source.stop.store(true, Ordering::Relaxed);
    let answer = waiting.await.unwrap();
    answer.refused(503, "unavailable");
    assert!(stopped.elapsed() < Duration::from_secs(2));
    tokio::task::spawn_blocking(move || source.thread.join().unwrap().unwrap())
        .await
        .unwrap();
}
