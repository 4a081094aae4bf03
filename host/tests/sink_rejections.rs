//! Rows a sink rejects become dead letters: the shared week backfilled from its file into a
//! lake and into the real PostgreSQL of this machine, whose table refuses one station (a
//! CHECK constraint). The other rows are written; each refused row is a dead letter of stage
//! `sinks[1] postgres` with the database's reason; the lake has everything.

#[allow(unused_imports, reason = "these tests need no broker")]
mod common;

use std::io::Read;

use common::*;

const WAREHOUSE: &str = "postgres://postgres@127.0.0.1:5432/test";
const REFUSED: &str = "BAY 50 ST";

async fn db() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(WAREHOUSE, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL is reachable at 127.0.0.1:5432");
    tokio::spawn(conn);
    client
}

fn dead_letters(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut letters = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(entry.path()).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        letters.extend(text.lines().map(|l| serde_json::from_str(l).unwrap()));
    }
    letters
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_the_warehouse_refuses_become_dead_letters_and_the_rest_is_written() {
    let table = format!("sluice_test_rejections_{}", std::process::id());
    let client = db().await;
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (station text NOT NULL, \
             window_start timestamp NOT NULL, window_end timestamp NOT NULL, entries bigint \
             NOT NULL, exits bigint NOT NULL, _sluice_pipeline text NOT NULL, \
             _sluice_loaded_at timestamptz NOT NULL DEFAULT now(), \
             PRIMARY KEY (station, window_start), \
             CONSTRAINT no_bay CHECK (station <> '{REFUSED}'))"
        ))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("pipelines/turnstile-file.yaml")).unwrap();
    let spec = dir.path().join("backfill.yaml");
    let sink = format!(
        "  - postgres: {{ url: \"{WAREHOUSE}\", table: {table}, key: [station, window_start] }}\n"
    );
    std::fs::write(&spec, text + &sink).unwrap();
    let lake = dir.path().join("lake");
    let out = ok(sluice(dir.path())
        .args(["run", "--once", "--pipelines"])
        .arg(&spec)
        .env("TURNSTILE_FILE", week("240106"))
        .env("LAKE_URL", format!("file://{}", lake.display())));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = expected_rows("mta-turnstile-240106.incremental.csv");
    let refused = expected
        .iter()
        .filter(|r| r.starts_with(&format!("{REFUSED},")))
        .count();
    assert_eq!(refused, 41);
    assert!(
        stdout.contains(&format!("dead letters:     {refused}\n")),
        "{stdout}"
    );
    assert_same_rows(&lake_rows(&lake), &expected);

    let rows = window_table_rows(WAREHOUSE, &table).await;
    let written: Vec<String> = expected
        .iter()
        .filter(|r| !r.starts_with(&format!("{REFUSED},")))
        .cloned()
        .collect();
    assert_same_rows(&rows, &written);

    let mut letters = dead_letters(&lake.join("_dlq/pipeline=turnstile-backfill"));
    assert_eq!(letters.len(), refused);
    letters.sort_by_key(|l| l["record"].as_str().unwrap().to_owned());
    for letter in &letters {
        assert_eq!(letter["stage"], "sinks[1] postgres", "{letter}");
        assert!(
            letter["reason"].as_str().unwrap().contains("no_bay"),
            "the reason is the database's: {letter}"
        );
    }
    let first: Vec<&String> = expected.iter().filter(|r| r.starts_with(REFUSED)).collect();
    assert_eq!(letters[0]["record"].as_str().unwrap(), first[0].as_str());
}
