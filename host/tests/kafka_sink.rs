//! Integration tests of the `kafka` sink against a real tansu broker (and librdkafka's mock
//! cluster for the transactional path, which tansu 0.6 lacks): every row becomes one message
//! with the right JSON or CSV payload, key and header; writing the same rows again gives the
//! same keys on the same partitions; a bad key field is a check error; unreachable brokers
//! are a clear error. Needs tansu (see `sluice_host::broker`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::{Offset, TopicPartitionList};
use sluice_host::broker::LocalBroker;
use sluice_host::sinks::RowBatch;
use sluice_host::sinks::kafka::{KafkaFormat, KafkaSink, KafkaSinkError, KafkaSinkSettings};
use sluice_plugin_sdk::rows::{BatchBuilder, Field, FieldType};
use sluice_plugin_sdk::time::format_timestamp;

const HOUR_MS: i64 = 3_600_000;
/// 2024-01-01 00:00:00 UTC.
const START_MS: i64 = 1_704_067_200_000;

fn schema() -> Vec<Field> {
    vec![
        Field::new("station", FieldType::Str),
        Field::new("window_start", FieldType::Timestamp),
        Field::new("window_end", FieldType::Timestamp),
        Field::new("entries", FieldType::Int64),
        Field::new("exits", FieldType::Int64),
    ]
}

/// Window rows: `stations` × `windows` 4-hour windows.
fn window_rows(stations: usize, windows: usize) -> RowBatch {
    let mut b = BatchBuilder::new();
    for s in 0..stations {
        for w in 0..windows {
            let start = START_MS + w as i64 * 4 * HOUR_MS;
            b.put_str(&format!("{s} ST, \"{}\"", s % 7));
            b.put_timestamp(start);
            b.put_timestamp(start + 4 * HOUR_MS);
            b.put_i64((s * 1000 + w) as i64);
            b.put_i64(-(w as i64));
            b.end_row();
        }
    }
    RowBatch {
        schema: Arc::new(schema()),
        data: b.data,
        ends: b.ends,
        positions: Vec::new(),
    }
}

fn settings(brokers: &str, topic: &str, format: KafkaFormat, key: &[&str]) -> KafkaSinkSettings {
    KafkaSinkSettings {
        brokers: brokers.to_owned(),
        topic: topic.to_owned(),
        format,
        key: key.iter().map(|k| k.to_string()).collect(),
        pipeline: "turnstile".to_owned(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// A consumed message.
#[derive(Debug)]
struct Received {
    partition: i32,
    key: String,
    payload: String,
    pipeline: String,
}

/// Reads exactly `expected` messages from the 3 partitions of `topic`, in partition order.
fn consume(brokers: &str, topic: &str, expected: usize) -> Vec<Received> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "sluice-kafka-sink-test")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let (mut out, mut last_progress) = (Vec::new(), Instant::now());
    while out.len() < expected {
        assert!(
            last_progress.elapsed() < Duration::from_secs(20),
            "stalled at {} of {expected} messages",
            out.len()
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = message.unwrap();
        let header = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "sluice.pipeline"));
        out.push(Received {
            partition: m.partition(),
            key: String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
            payload: String::from_utf8(m.payload().unwrap().to_vec()).unwrap(),
            pipeline: String::from_utf8(header.unwrap().value.unwrap().to_vec()).unwrap(),
        });
        last_progress = Instant::now();
    }
    assert!(
        consumer.poll(Duration::from_secs(1)).is_none(),
        "more than {expected} messages"
    );
    out
}

/// The JSON object and key each window row must become, by key.
fn expected_json(rows: &RowBatch) -> BTreeMap<String, serde_json::Value> {
    let mut expected = BTreeMap::new();
    for row in rows.batch().rows() {
        let v = sluice_plugin_sdk::rows::decode_row(&rows.schema, row).unwrap();
        use sluice_plugin_sdk::rows::Value::{Int64, Str, Timestamp};
        let (Str(station), Timestamp(start), Timestamp(end), Int64(entries), Int64(exits)) =
            (v[0], v[1], v[2], v[3], v[4])
        else {
            panic!("unexpected row {v:?}")
        };
        let key = format!("{station}|{}", format_timestamp(start));
        let object = serde_json::json!({
            "station": station, "window_start": format_timestamp(start),
            "window_end": format_timestamp(end), "entries": entries, "exits": exits,
        });
        assert!(expected.insert(key, object).is_none(), "duplicate key");
    }
    expected
}

/// Checks every message against the rows, each row `copies` times, every copy of a key on
/// the same partition; returns key → partition.
fn check_json(messages: &[Received], rows: &RowBatch, copies: usize) -> BTreeMap<String, i32> {
    let expected = expected_json(rows);
    let mut partitions = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for m in messages {
        let object: serde_json::Value = serde_json::from_str(&m.payload)
            .unwrap_or_else(|e| panic!("message {:?} is not JSON: {e}", m.payload));
        assert_eq!(expected.get(&m.key), Some(&object), "message {m:?}");
        assert_eq!(m.pipeline, "turnstile");
        let partition = *partitions.entry(m.key.clone()).or_insert(m.partition);
        assert_eq!(
            partition, m.partition,
            "copies of {m:?} on different partitions"
        );
        *counts.entry(&m.key).or_default() += 1;
    }
    assert_eq!(partitions.len(), expected.len());
    assert!(
        counts.values().all(|&n| n == copies),
        "each row {copies} times"
    );
    partitions
}

#[test]
fn json_messages_are_complete_and_replays_keep_their_keys() {
    let broker = LocalBroker::start().unwrap();
    let brokers = broker.bootstrap();
    let rows = window_rows(100, 10);
    let config = settings(&brokers, "windows-json", KafkaFormat::Json, &[]);
    let rt = runtime();
    let sink = rt
        .block_on(KafkaSink::connect(config, &rows.schema))
        .unwrap();
    assert!(
        !sink.is_transactional(),
        "tansu 0.6 has no EndTxn; did it gain transactions?"
    );
    rt.block_on(sink.write(&rows)).unwrap();
    let first = check_json(&consume(&brokers, "windows-json", 1000), &rows, 1);
    rt.block_on(sink.write(&rows)).unwrap();
    let both = check_json(&consume(&brokers, "windows-json", 2000), &rows, 2);
    assert_eq!(
        both, first,
        "a replay must give the same keys on the same partitions"
    );
}

#[test]
fn csv_messages_with_an_explicit_key() {
    let broker = LocalBroker::start().unwrap();
    let brokers = broker.bootstrap();
    let rows = window_rows(20, 5);
    let config = settings(
        &brokers,
        "windows-csv",
        KafkaFormat::Csv,
        &["station", "window_end"],
    );
    let rt = runtime();
    let sink = rt
        .block_on(KafkaSink::connect(config, &rows.schema))
        .unwrap();
    rt.block_on(sink.write(&rows)).unwrap();
    let mut lines: Vec<(String, String)> = consume(&brokers, "windows-csv", 100)
        .into_iter()
        .map(|m| (m.key, m.payload))
        .collect();
    lines.sort();
    let mut expected = Vec::new();
    for s in 0..20 {
        for w in 0..5i64 {
            let start = START_MS + w * 4 * HOUR_MS;
            let (from, to) = (
                format_timestamp(start),
                format_timestamp(start + 4 * HOUR_MS),
            );
            let station = format!("{s} ST, \"{}\"", s % 7);
            let quoted = format!("\"{}\"", station.replace('"', "\"\""));
            let line = format!("{quoted},{from},{to},{},{}", s as i64 * 1000 + w, -w);
            expected.push((format!("{station}|{to}"), line));
        }
    }
    expected.sort();
    assert_eq!(lines, expected);
}

#[test]
fn unknown_key_field_is_a_check_error() {
    let config = settings("127.0.0.1:1", "t", KafkaFormat::Json, &["station", "stop"]);
    let error = KafkaSink::check(&config, &schema()).unwrap_err();
    assert!(error.contains("`stop`"), "{error}");
    let default_key = settings("127.0.0.1:1", "t", KafkaFormat::Json, &[]);
    KafkaSink::check(&default_key, &schema()).unwrap();
}

#[test]
fn unreachable_brokers_are_a_clear_error() {
    let config = settings("127.0.0.1:1", "t", KafkaFormat::Json, &[]);
    let error = runtime()
        .block_on(KafkaSink::connect(config, &schema()))
        .err()
        .expect("no broker listens on port 1");
    assert!(
        matches!(
            error.downcast_ref(),
            Some(KafkaSinkError::Unreachable { .. })
        ),
        "{error:#}"
    );
}

#[test]
fn transactional_when_the_brokers_support_it() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("windows-txn", 3, 1).unwrap();
    let brokers = mock.bootstrap_servers();
    let rows = window_rows(50, 4);
    let config = settings(&brokers, "windows-txn", KafkaFormat::Json, &[]);
    let rt = runtime();
    let sink = rt
        .block_on(KafkaSink::connect(config, &rows.schema))
        .unwrap();
    assert!(sink.is_transactional());
    rt.block_on(sink.write(&rows)).unwrap();
    rt.block_on(sink.write(&rows)).unwrap();
    check_json(&consume(&brokers, "windows-txn", 400), &rows, 2);
}

/// Prints the sink's throughput (no assertion on it: timing is not tested).
#[test]
fn throughput() {
    let broker = LocalBroker::start().unwrap();
    let rows = window_rows(1000, 100);
    let config = settings(&broker.bootstrap(), "windows-bulk", KafkaFormat::Json, &[]);
    let rt = runtime();
    let sink = rt
        .block_on(KafkaSink::connect(config, &rows.schema))
        .unwrap();
    let started = Instant::now();
    rt.block_on(sink.write(&rows)).unwrap();
    let elapsed = started.elapsed();
    println!(
        "kafka sink: {} JSON messages in {elapsed:.2?} = {:.0} messages/s",
        rows.len(),
        rows.len() as f64 / elapsed.as_secs_f64()
    );
}
