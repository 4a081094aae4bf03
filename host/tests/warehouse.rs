//! The warehouse end to end: a shared week replayed through a real broker into the real
//! PostgreSQL of this machine by `sluice run --once`, twice (the second run from the start of
//! the topic, as after an offset reset): the table equals the oracle exactly, no duplicates.

mod common;

use common::*;

const WAREHOUSE: &str = "postgres://postgres@127.0.0.1:5432/test";

fn run_once(dir: &std::path::Path, broker: &LocalBroker, group: &str, table: &str) -> String {
    let out = ok(sluice(dir)
        .args(["run", "--once", "--pipelines"])
        .arg(repo().join("pipelines/turnstile.yaml"))
        .env("KAFKA_BROKERS", broker.bootstrap())
        .env("TURNSTILE_TOPIC", "warehouse")
        .env("TURNSTILE_GROUP", group)
        .env("LAKE_URL", format!("file://{}", dir.join("lake").display()))
        .env("WAREHOUSE_URL", WAREHOUSE)
        .env("WAREHOUSE_TABLE", table));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_week_lands_in_postgres_exactly_once() {
    let broker = LocalBroker::start().expect("tansu starts");
    let dir = tempfile::tempdir().unwrap();
    let table = format!("turnstile_windows_test_{}", std::process::id());
    ok(sluice(dir.path())
        .args([
            "produce",
            "--brokers",
            &broker.bootstrap(),
            "--topic",
            "warehouse",
            "--file",
        ])
        .arg(week("240106")));
    let first = run_once(dir.path(), &broker, "warehouse-a", &table);
    assert!(first.contains("rows written:     15499"), "{first}");
    assert!(
        first.contains(&format!(
            "warehouse:        15499 rows upserted into {table}"
        )),
        "{first}"
    );
    let second = run_once(dir.path(), &broker, "warehouse-b", &table);
    assert!(
        second.contains("records read:     250816"),
        "the replay reads the week again: {second}"
    );
    let rows = window_table_rows(WAREHOUSE, &table).await;
    assert_same_rows(&rows, &expected_rows("mta-turnstile-240106.cumulative.csv"));
}
