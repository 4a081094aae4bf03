//! `sluice dlq replay` against a real broker (tansu): records a misconfigured pipeline
//! dead-lettered are replayed into the source topic once the spec is fixed, the next run
//! turns them into exactly the rows an uninterrupted correct run gives, and replaying again
//! sends nothing twice.

mod common;

use std::path::Path;

use common::*;

/// `sluice run --once` of `spec` over topic `t` of `broker` into `lake`, as consumer group
/// `group`; returns stdout.
fn run(dir: &Path, broker: &LocalBroker, spec: &Path, group: &str, lake: &Path) -> String {
    let out = ok(sluice(dir)
        .args(["run", "--once", "--pipelines"])
        .arg(spec)
        .env("KAFKA_BROKERS", broker.bootstrap())
        .env("TURNSTILE_TOPIC", "t")
        .env("TURNSTILE_GROUP", group)
        .env("LAKE_URL", format!("file://{}", lake.display())));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sluice dlq replay` of `spec` with `args`; returns stdout.
fn replay(dir: &Path, broker: &LocalBroker, spec: &Path, lake: &Path, args: &[&str]) -> String {
    let out = ok(sluice(dir)
        .args(["dlq", "replay"])
        .arg(spec)
        .args(args)
        .env("KAFKA_BROKERS", broker.bootstrap())
        .env("TURNSTILE_TOPIC", "t")
        .env("LAKE_URL", format!("file://{}", lake.display())));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn objects(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[test]
fn replayed_dead_letters_land_exactly_once_after_the_fix() {
    let broker = LocalBroker::start().expect("tansu starts");
    let dir = tempfile::tempdir().unwrap();
    let messages = dir.path().join("messages.txt");
    let lines = [
        "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,00:00:00,REGULAR,100,200",
        "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,04:00:00,REGULAR,120,230",
        "this is not a turnstile record",
        "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,08:00:00,REGULAR,150,260",
        "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,12:00:00,REGULAR,170,300",
    ];
    std::fs::write(&messages, lines.join("\n") + "\n").unwrap();
    ok(sluice(dir.path())
        .args(["produce", "--brokers", &broker.bootstrap(), "--topic", "t"])
        .args(["--order", "file", "--partitions", "1", "--file"])
        .arg(&messages));
    let fixed = repo().join("pipelines/turnstile.yaml");
    let text = std::fs::read_to_string(&fixed).unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, text.replace("format: auto", "format: message")).unwrap();
    let (lake, oracle_lake) = (dir.path().join("lake"), dir.path().join("oracle"));

    // The misconfigured parser dead-letters every record.
    let first = run(dir.path(), &broker, &broken, "g", &lake);
    assert!(first.contains("dead letters:     5\n"), "{first}");
    assert!(lake_rows(&lake).is_empty());
    // What the fixed pipeline gives over the topic from its start.
    run(dir.path(), &broker, &fixed, "oracle", &oracle_lake);
    let oracle = lake_rows(&oracle_lake);
    assert!(!oracle.is_empty());

    let only_readings = ["--reason-contains", "found 11"];
    let dry = replay(
        dir.path(),
        &broker,
        &fixed,
        &lake,
        &[&only_readings[..], &["--dry-run"]].concat(),
    );
    assert!(dry.contains("would replay 4 dead letters"), "{dry}");
    assert!(dry.contains("(1 not matching"), "{dry}");
    assert!(
        dry.contains("t/0/4"),
        "the dry run lists the letters: {dry}"
    );
    let replayed = replay(dir.path(), &broker, &fixed, &lake, &only_readings);
    assert!(replayed.contains("replayed 4 dead letters"), "{replayed}");
    let again = replay(dir.path(), &broker, &fixed, &lake, &only_readings);
    assert!(again.contains("replayed 0 dead letters"), "{again}");

    // The fixed pipeline resumes after its committed offsets: it reads the 4 replays only.
    let second = run(dir.path(), &broker, &fixed, "g", &lake);
    assert!(second.contains("records read:     4\n"), "{second}");
    assert_same_rows(&lake_rows(&lake), &oracle);
    let third = run(dir.path(), &broker, &fixed, "g", &lake);
    assert!(third.contains("records read:     0\n"), "{third}");
    assert_same_rows(&lake_rows(&lake), &oracle);

    // The garbage line stays a dead letter; the replayed ones are kept apart.
    assert_eq!(objects(&lake.join("_dlq/pipeline=turnstile")), 1);
    assert!(objects(&lake.join("_dlq_replayed/pipeline=turnstile")) >= 1);
}

#[test]
fn replay_needs_a_kafka_source() {
    let dir = tempfile::tempdir().unwrap();
    let out = sluice(dir.path())
        .args(["dlq", "replay"])
        .arg(repo().join("pipelines/turnstile-file.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not read a Kafka topic"), "{stderr}");
}
