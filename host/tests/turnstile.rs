//! End to end on a real Kafka-protocol broker (tansu): `sluice produce` replays shared MTA
//! weeks in event-time order, `sluice run --once` runs pipelines/turnstile.yaml, and every
//! lake row must equal the independently computed oracle.

mod common;

use common::*;

fn replay_and_run(weeks: &[&str], counters: &str, expected: &str) {
    let broker = LocalBroker::start().expect("tansu starts");
    let dir = tempfile::tempdir().unwrap();
    produce_weeks(dir.path(), &broker.bootstrap(), "turnstile", weeks);
    let lake = dir.path().join("lake");
    let out = ok(sluice(dir.path())
        .args(["run", "--once", "--pipelines"])
        .arg(repo().join("pipelines/turnstile.yaml"))
        .env("KAFKA_BROKERS", broker.bootstrap())
        .env("TURNSTILE_TOPIC", "turnstile")
        .env("TURNSTILE_COUNTERS", counters)
        .env("LAKE_URL", format!("file://{}", lake.display())));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Pipeline `turnstile` finished."),
        "{stdout}"
    );
    assert_same_rows(&lake_rows(&lake), &expected_rows(expected));
    assert!(
        !lake.join("_dlq").exists(),
        "no record of the real weeks should be dead-lettered"
    );
}

#[test]
fn week_240106_cumulative_equals_the_oracle() {
    replay_and_run(
        &["240106"],
        "cumulative",
        "mta-turnstile-240106.cumulative.csv",
    );
}

#[test]
fn week_240106_incremental_equals_the_oracle() {
    replay_and_run(
        &["240106"],
        "incremental",
        "mta-turnstile-240106.incremental.csv",
    );
}

#[test]
fn three_weeks_cumulative_equal_the_oracle() {
    replay_and_run(
        &["240106", "240113", "240120"],
        "cumulative",
        "mta-turnstile-3weeks.cumulative.csv",
    );
}

#[test]
fn the_file_backfill_pipeline_equals_the_incremental_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("backfill");
    let out = ok(sluice(dir.path())
        .args(["run", "--once", "--pipelines"])
        .arg(repo().join("pipelines/turnstile-file.yaml"))
        .env("TURNSTILE_FILE", week("240106"))
        .env("LAKE_URL", format!("file://{}", lake.display())));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Pipeline `turnstile-backfill` finished."),
        "{stdout}"
    );
    assert_same_rows(
        &lake_rows(&lake),
        &expected_rows("mta-turnstile-240106.incremental.csv"),
    );
}
