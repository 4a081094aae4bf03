//! The `postgres` sink against a real PostgreSQL (`SLUICE_TEST_POSTGRES_URL`, by default the
//! machine's `postgres://postgres@127.0.0.1:5432/test`): the turnstile oracle written twice
//! equals the oracle, the documented DDL, incompatible tables and bad settings, and writes
//! that survive a terminated connection. Each test uses its own table and drops it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sluice_host::sinks::RowBatch;
use sluice_host::sinks::postgres::{PostgresSettings, PostgresSink};
use sluice_plugin_sdk::rows::{BatchBuilder, Field, FieldType, Value};
use sluice_plugin_sdk::time::parse_datetime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const ORACLE: &str = "../../shared/data/expected/mta-turnstile-240106.cumulative.csv";

fn url() -> String {
    std::env::var("SLUICE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// A name no other test (or test run) uses.
fn unique(what: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("sluice_test_{what}_{}_{n}", std::process::id())
}

/// Shows the sink's log sentences in the test output.
fn logs() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
}

async fn admin() -> Client {
    let (client, connection) = tokio_postgres::connect(&url(), NoTls)
        .await
        .expect("PostgreSQL is reachable at SLUICE_TEST_POSTGRES_URL or 127.0.0.1:5432");
    tokio::spawn(connection);
    client
}

fn settings(table: &str, key: &[&str], pipeline: &str) -> PostgresSettings {
    PostgresSettings {
        url: url(),
        table: table.to_string(),
        key: key.iter().map(|k| k.to_string()).collect(),
        pipeline: pipeline.to_string(),
    }
}

fn windows_schema() -> Vec<Field> {
    vec![
        Field::new("station", FieldType::Str),
        Field::new("window_start", FieldType::Timestamp),
        Field::new("window_end", FieldType::Timestamp),
        Field::new("entries", FieldType::Int64),
        Field::new("exits", FieldType::Int64),
    ]
}

/// The oracle's lines without the header.
fn oracle() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(ORACLE);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the oracle file is missing at {}: {e}", path.display()));
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("station,window_start,window_end,entries,exits")
    );
    lines.map(str::to_string).collect()
}

/// Oracle lines as rows of [`windows_schema`].
fn encode(lines: &[String]) -> RowBatch {
    let mut b = BatchBuilder::new();
    for line in lines {
        let parts: Vec<&str> = line.split(',').collect();
        assert_eq!(parts.len(), 5, "{line}");
        b.put_str(parts[0]);
        for time in &parts[1..3] {
            b.put_timestamp(parse_datetime(time).expect("oracle time"));
        }
        for count in &parts[3..5] {
            b.put_i64(count.parse().expect("oracle count"));
        }
        b.end_row();
    }
    let (data, ends) = b.into_parts();
    let schema = Arc::new(windows_schema());
    RowBatch {
        schema,
        data,
        ends,
        positions: Vec::new(),
    }
}

async fn write_in_batches(sink: &PostgresSink, lines: &[String], batch: usize) {
    for chunk in lines.chunks(batch) {
        sink.write(&encode(chunk)).await.unwrap();
    }
}

/// The table as oracle lines, in the oracle's order (station bytes, window start).
async fn table_lines(client: &Client, table: &str) -> Vec<String> {
    let sql = format!(
        "SELECT station || ',' || to_char(window_start, 'YYYY-MM-DD HH24:MI:SS') || ',' || \
         to_char(window_end, 'YYYY-MM-DD HH24:MI:SS') || ',' || entries || ',' || exits \
         FROM {table} ORDER BY station COLLATE \"C\", window_start"
    );
    let rows = client.query(&sql, &[]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

async fn drop_table(client: &Client, table: &str) {
    let sql = format!("DROP TABLE IF EXISTS {table}");
    client.batch_execute(&sql).await.unwrap();
}

#[tokio::test]
async fn oracle_written_twice_equals_the_oracle() {
    let lines = oracle();
    assert_eq!(lines.len(), 15_499);
    let table = unique("windows");
    let settings = settings(&table, &["station", "window_start"], "turnstile");
    let sink = PostgresSink::connect(settings, &windows_schema())
        .await
        .unwrap();
    // Within a batch the last row of a key wins.
    let mut first = lines[0].split(',').collect::<Vec<_>>();
    first[3] = "999999";
    sink.write(&encode(&[first.join(","), lines[0].clone()]))
        .await
        .unwrap();
    write_in_batches(&sink, &lines, 2000).await;
    write_in_batches(&sink, &lines, 1500).await;
    let db = admin().await;
    let got = table_lines(&db, &table).await;
    assert_eq!(got.len(), 15_499, "no duplicates after a replay");
    assert!(got == lines, "the table differs from the oracle");
    let status = sink.status();
    assert_eq!(status.rows_written, 2 * 15_499 + 2);
    assert_eq!((status.rows_failed, status.retries), (0, 0));
    drop_table(&db, &table).await;
}

#[tokio::test]
async fn bench_rows_per_s() {
    let lines = oracle();
    let table = unique("bench");
    let settings = settings(&table, &["station", "window_start"], "bench");
    let sink = PostgresSink::connect(settings, &windows_schema())
        .await
        .unwrap();
    let batches: Vec<RowBatch> = lines.chunks(2000).map(encode).collect();
    for what in ["postgres_rows_per_s", "postgres_replay_rows_per_s"] {
        let started = Instant::now();
        for batch in &batches {
            sink.write(batch).await.unwrap();
        }
        let rate = lines.len() as f64 / started.elapsed().as_secs_f64();
        println!("BENCH {what} {rate:.0} rows/s");
    }
    drop_table(&admin().await, &table).await;
}

fn batch(schema: &[Field], rows: &[Vec<Value<'_>>]) -> RowBatch {
    let mut b = BatchBuilder::new();
    for row in rows {
        for (field, value) in schema.iter().zip(row) {
            b.put_value(field, *value);
        }
        b.end_row();
    }
    let (data, ends) = b.into_parts();
    let schema = Arc::new(schema.to_vec());
    RowBatch {
        schema,
        data,
        ends,
        positions: Vec::new(),
    }
}

/// The first column of every row of `sql`, as text.
async fn texts(db: &Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<String> {
    let rows = db.query(sql, params).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// [`windows_schema`] and a nullable field of each other type.
fn all_types_schema() -> Vec<Field> {
    let mut schema = windows_schema();
    schema.push(Field::nullable("ratio", FieldType::Float64));
    schema.push(Field::nullable("open", FieldType::Boolean));
    schema.push(Field::nullable("raw", FieldType::Bytes));
    schema
}

#[tokio::test]
async fn creates_the_documented_table() {
    let schema_name = unique("schema");
    let table = format!("{schema_name}.windows");
    let key = ["station", "window_start"];
    let schema = all_types_schema();
    PostgresSink::connect(settings(&table, &key, "ddl"), &schema)
        .await
        .unwrap();
    let db = admin().await;
    let columns = "SELECT concat_ws(' ', column_name, data_type, is_nullable, column_default) \
        FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'windows' \
        ORDER BY ordinal_position";
    let want = [
        "station text NO",
        "window_start timestamp without time zone NO",
        "window_end timestamp without time zone NO",
        "entries bigint NO",
        "exits bigint NO",
        "ratio double precision YES",
        "open boolean YES",
        "raw bytea YES",
        "_sluice_pipeline text NO",
        "_sluice_loaded_at timestamp with time zone NO now()",
    ];
    assert_eq!(texts(&db, columns, &[&schema_name]).await, want);
    let primary_key = "SELECT k.column_name::text FROM information_schema.table_constraints c \
        JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) \
        WHERE c.table_schema = $1 AND c.table_name = 'windows' \
        AND c.constraint_type = 'PRIMARY KEY' ORDER BY k.ordinal_position";
    assert_eq!(texts(&db, primary_key, &[&schema_name]).await, key);
    // The table exists and fits: connecting again works.
    PostgresSink::connect(settings(&table, &key, "ddl"), &schema)
        .await
        .unwrap();
    let sql = format!("DROP SCHEMA {schema_name} CASCADE");
    db.batch_execute(&sql).await.unwrap();
}

#[tokio::test]
async fn every_type_round_trips_and_rejected_rows_fail_at_once() {
    use Value::*;
    let table = unique("types");
    let schema = all_types_schema();
    let sink = PostgresSink::connect(settings(&table, &["station"], "types"), &schema)
        .await
        .unwrap();
    let a = [
        Str("A"),
        Timestamp(946_684_799_000),
        Timestamp(1_704_067_200_123),
        Int64(-1),
    ];
    let a = [
        &a[..],
        &[
            Int64(i64::MAX),
            Float64(0.5),
            Boolean(true),
            Bytes(&[0, 255]),
        ],
    ];
    let b = [
        Str("B \"q\", é"),
        Timestamp(0),
        Timestamp(0),
        Int64(0),
        Int64(0),
        Null,
        Null,
        Null,
    ];
    sink.write(&batch(&schema, &[a.concat(), b.to_vec()]))
        .await
        .unwrap();
    let read = format!(
        "SELECT concat_ws('|', station, window_start, window_end, entries, exits, \
         coalesce(ratio::text, '-'), coalesce(open::text, '-'), \
         coalesce(encode(raw, 'hex'), '-'), _sluice_pipeline) FROM {table} ORDER BY 1"
    );
    let db = admin().await;
    let want = [
        "A|1999-12-31 23:59:59|2024-01-01 00:00:00.123|-1|9223372036854775807|0.5|true|00ff|types",
        "B \"q\", é|1970-01-01 00:00:00|1970-01-01 00:00:00|0|0|-|-|-|types",
    ];
    assert_eq!(texts(&db, &read, &[]).await, want);

    let mut bad = b.to_vec();
    bad[0] = Str("nul\0");
    let err = sink.write(&batch(&schema, &[bad])).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("could not write 1 rows"),
        "{err:#}"
    );
    let status = sink.status();
    let counts = (status.rows_written, status.rows_failed, status.retries);
    assert_eq!(counts, (2, 1, 0));
    assert!(status.last_error.is_some_and(|e| e.contains("0x00")));
    drop_table(&db, &table).await;
}

#[tokio::test]
async fn an_incompatible_table_is_an_error_naming_it() {
    let db = admin().await;
    let key = ["station", "window_start"];
    let metadata = "_sluice_pipeline text NOT NULL, _sluice_loaded_at timestamptz NOT NULL";
    for (columns, problem) in [
        (
            "entries text, exits bigint, PRIMARY KEY (station, window_start)",
            "column `entries` is text, not bigint",
        ),
        (
            "entries bigint, exits bigint",
            "no primary key or unique index on exactly (station, window_start)",
        ),
        (
            "entries bigint, exits bigint, extra int NOT NULL, PRIMARY KEY (station, window_start)",
            "column `extra` is NOT NULL without a default",
        ),
    ] {
        let table = unique("incompatible");
        let ddl = format!(
            "CREATE TABLE {table} (station text, window_start timestamp, window_end timestamp, \
             {metadata}, {columns})"
        );
        db.batch_execute(&ddl).await.unwrap();
        let result = PostgresSink::connect(settings(&table, &key, "p"), &windows_schema()).await;
        let err = format!(
            "{:#}",
            result.err().expect("an incompatible table is an error")
        );
        assert!(
            err.contains(&format!("table `{table}`")) && err.contains(problem),
            "{err}"
        );
        drop_table(&db, &table).await;
    }
}

#[test]
fn bad_settings_are_errors_naming_them() {
    let schema = windows_schema();
    for (table, key, problem) in [
        (
            "windows",
            &["station", "day"][..],
            "key field `day` is not in the rows",
        ),
        (
            "turnstile-windows",
            &["station"][..],
            "table `turnstile-windows` is not a valid identifier",
        ),
        ("a.b.c", &["station"][..], "table `a.b.c` is not valid"),
        (
            "bad schema.t",
            &["station"][..],
            "schema `bad schema` is not a valid identifier",
        ),
        ("windows", &[][..], "`key` is empty"),
    ] {
        let err = PostgresSink::check(&settings(table, key, "p"), &schema).unwrap_err();
        assert!(err.contains(problem), "{err}");
    }
    let mut bad_url = settings("windows", &["station"], "p");
    bad_url.url = "postgres://host:port/db".to_string();
    let err = PostgresSink::check(&bad_url, &schema).unwrap_err();
    assert!(err.contains("URL is not valid"), "{err}");
}

/// Terminates the backends of pipeline `pipeline`'s sink; returns how many.
async fn terminate(db: &Client, pipeline: &str, waiting_on_lock: bool) -> usize {
    let sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
        WHERE application_name = $1 AND (NOT $2 OR wait_event_type = 'Lock')";
    let name = format!("sluice-{pipeline}");
    db.query(sql, &[&name, &waiting_on_lock])
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn writes_survive_a_terminated_connection() {
    logs();
    let lines = oracle();
    let (table, pipeline) = (unique("loss"), unique("pipeline"));
    let settings = settings(&table, &["station", "window_start"], &pipeline);
    let sink = PostgresSink::connect(settings, &windows_schema())
        .await
        .unwrap();
    let db = admin().await;
    sink.write(&encode(&lines[..2000])).await.unwrap();

    // Killed while idle: the next write reconnects.
    assert_eq!(terminate(&db, &pipeline, false).await, 1);
    sink.write(&encode(&lines[1000..3000])).await.unwrap();

    // Killed in the middle of a transaction, while it waits on a lock.
    let locker = admin().await;
    let lock = format!("BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE");
    locker.batch_execute(&lock).await.unwrap();
    let kill = async {
        while terminate(&db, &pipeline, true).await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        locker.batch_execute("ROLLBACK").await.unwrap();
    };
    let rows = encode(&lines[2500..4000]);
    let (written, ()) = tokio::join!(sink.write(&rows), kill);
    written.expect("the write is retried on a new connection");

    let got = table_lines(&db, &table).await;
    assert_eq!(got, lines[..4000], "every row exactly once");
    let status = sink.status();
    assert_eq!((status.rows_written, status.rows_failed), (5500, 0));
    assert!(
        status.retries >= 1 && status.last_error.is_some(),
        "{status:?}"
    );
    drop_table(&db, &table).await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    logs();
    let mut settings = settings("windows", &["station"], "p");
    settings.url = "postgres://postgres:secret@127.0.0.1:1/test".to_string();
    let started = Instant::now();
    let result = PostgresSink::connect(settings, &windows_schema()).await;
    let err = format!("{:#}", result.err().expect("nothing listens on port 1"));
    assert!(
        err.contains("postgres://postgres@127.0.0.1:1/test") && err.contains("5 attempts"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
}
