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

/// Three weeks in a 6-partition topic keyed by station, run as one task and as four: each
/// lake equals the oracle, and both hold the same objects with the same bytes (an object's
/// name depends on its rows, never on which task wrote it).
#[test]
fn three_weeks_equal_the_oracle_and_one_task_or_four_write_the_same_lake() {
    let broker = LocalBroker::start().expect("tansu starts");
    let dir = tempfile::tempdir().unwrap();
    let weeks: Vec<_> = ["240106", "240113", "240120"].map(week).into();
    produce_into(dir.path(), &broker.bootstrap(), "turnstile", &weeks, 6);
    let expected = expected_rows("mta-turnstile-3weeks.cumulative.csv");
    let mut lakes = Vec::new();
    for tasks in ["1", "4"] {
        let state = dir.path().join(format!("tasks-{tasks}"));
        std::fs::create_dir_all(&state).unwrap();
        let lake = state.join("lake");
        let out = ok(sluice(&state)
            .args(["run", "--once", "--pipelines"])
            .arg(repo().join("pipelines/turnstile.yaml"))
            .env("KAFKA_BROKERS", broker.bootstrap())
            .env("TURNSTILE_TOPIC", "turnstile")
            .env("TURNSTILE_GROUP", format!("tasks-{tasks}"))
            .env("TURNSTILE_PARALLELISM", tasks)
            .env("LAKE_URL", format!("file://{}", lake.display())));
        let log = plain(&String::from_utf8_lossy(&out.stderr));
        assert!(log.contains(&format!("tasks={tasks} ")), "{log}");
        assert_same_rows(&lake_rows(&lake), &expected);
        lakes.push(lake_objects(&lake));
    }
    assert_eq!(lakes[0].len(), lakes[1].len());
    assert!(
        lakes[0] == lakes[1],
        "one task and four wrote other objects"
    );
}

/// Every object under `lake`: its path below the lake and its bytes, sorted by path.
fn lake_objects(lake: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    files_under(lake)
        .into_iter()
        .map(|path| {
            let name = path.strip_prefix(lake).unwrap().display().to_string();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
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
