//! Integration tests of the local broker and `sluice produce` against a real tansu process:
//! the three shared MTA weeks go through a 3-partition topic and back out of a consumer group
//! complete, contiguous and in event-time order per turnstile; the embedded broker is reused
//! and stopped. Needs tansu (see `sluice_host::broker`) and `../shared/data` (or
//! `$SLUICE_DATA_DIR`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sluice_host::broker::{self, LocalBroker};
use sluice_host::produce::{self, Order, ProduceArgs};

/// The shared MTA weekly files, sorted by name.
fn weekly_files() -> Vec<PathBuf> {
    let dir = std::env::var_os("SLUICE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "The shared MTA data is missing at {} ({e}); set SLUICE_DATA_DIR.",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("mta-turnstile-")
        })
        .filter(|p| p.to_string_lossy().ends_with(".csv.gz"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        3,
        "expected the three shared weeks in {}",
        dir.display()
    );
    files
}

/// Data lines of the files, counted independently of `produce`: non-blank, not the header.
fn count_data_lines(files: &[PathBuf]) -> u64 {
    let mut count = 0;
    for path in files {
        let file = std::fs::File::open(path).unwrap();
        let reader = BufReader::new(flate2::read::MultiGzDecoder::new(file));
        for line in reader.split(b'\n') {
            let line = line.unwrap();
            count += u64::from(!line.trim_ascii().is_empty() && !line.starts_with(b",CA,"));
        }
    }
    count
}

/// Sortable event time `YYYY-MM-DD HH:MM:SS` of a weekly row `index,CA,...,MM/DD/YYYY,TIME,...`.
fn event_time(fields: &[&str]) -> String {
    let date: Vec<&str> = fields[7].split('/').collect();
    format!("{}-{}-{} {}", date[2], date[0], date[1], fields[8])
}

/// Per-partition offsets, one partition per station and per-turnstile event-time order of
/// everything consumed.
#[derive(Default)]
struct Check {
    records: u64,
    next_offset: HashMap<i32, i64>,
    last_time: HashMap<String, String>,
    /// The partition of each station: one each.
    station_partition: HashMap<String, i32>,
}

impl Check {
    fn record(&mut self, partition: i32, offset: i64, key: &[u8], value: &[u8]) {
        self.records += 1;
        let expected = self.next_offset.entry(partition).or_insert(0);
        assert_eq!(
            offset, *expected,
            "offsets of partition {partition} are not contiguous"
        );
        *expected = offset + 1;
        let value = std::str::from_utf8(value).unwrap();
        let fields: Vec<&str> = value.split(',').collect();
        assert_eq!(fields.len(), 12, "unexpected record {value}");
        // Keyed by station (`sluice produce --key station`, the default).
        assert_eq!(key, fields[4].as_bytes(), "key of {value}");
        let home = *self
            .station_partition
            .entry(fields[4].to_owned())
            .or_insert(partition);
        assert_eq!(home, partition, "station {} in two partitions", fields[4]);
        let time = event_time(&fields);
        let last = self.last_time.entry(fields[1..4].join("/")).or_default();
        assert!(
            *last <= time,
            "event time went back from {last} to {time} for {value}"
        );
        *last = time;
    }
}

fn consume_all(bootstrap: &str, topic: &str, expected: u64, broker: &LocalBroker) -> Check {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sluice-broker-test")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let (mut check, mut last_progress) = (Check::default(), Instant::now());
    while check.records < expected {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                check.record(
                    m.partition(),
                    m.offset(),
                    m.key().unwrap(),
                    m.payload().unwrap(),
                );
                last_progress = Instant::now();
            }
            Some(Err(e)) => panic!("consumer error: {e}\nbroker log:\n{}", broker.log_tail()),
            None => {}
        }
        let stalled = last_progress.elapsed() > Duration::from_secs(20);
        assert!(
            !stalled,
            "stalled at {} records\nbroker log:\n{}",
            check.records,
            broker.log_tail()
        );
    }
    assert!(
        consumer.poll(Duration::from_secs(1)).is_none(),
        "more records than produced"
    );
    check
}

#[test]
fn three_weeks_go_through_a_real_broker_complete_and_in_order() {
    let files = weekly_files();
    let expected = count_data_lines(&files);
    let broker = LocalBroker::start().expect("start tansu");
    let args = ProduceArgs {
        brokers: broker.bootstrap(),
        topic: "turnstile-3weeks".into(),
        files: files.clone(),
        order: Order::EventTime,
        rate: None,
        partitions: 3,
        key: produce::KeyFields::station(),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime.block_on(produce::run(&args)).expect("produce");
    eprintln!("{report}");
    assert_eq!(report.records, expected);
    assert_eq!(
        (report.skipped_headers, report.untimed, report.partitions),
        (3, 0, 3)
    );
    assert_eq!(
        report.files.iter().map(|f| f.records).sum::<u64>(),
        expected
    );

    let started = Instant::now();
    let check = consume_all(&broker.bootstrap(), &args.topic, expected, &broker);
    eprintln!(
        "Consumed {} records in {:.2} s.",
        check.records,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(check.records, expected);
    assert_eq!(
        check.next_offset.len(),
        3,
        "all three partitions hold records"
    );
    resume_inside_a_batch(
        &broker.bootstrap(),
        &args.topic,
        check.next_offset[&0] / 2 + 7,
    );
}

/// tansu's memory storage serves fetches from batch starts only: a consumer resuming at an
/// offset inside a batch must fetch from `MAX_BATCH_RECORDS` earlier and skip up to it.
fn resume_inside_a_batch(bootstrap: &str, topic: &str, resume_at: i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sluice-broker-resume-test")
        .create()
        .unwrap();
    let look_back = resume_at - produce::MAX_BATCH_RECORDS as i64;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(look_back.max(0)))
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) if m.offset() >= resume_at => return assert_eq!(m.offset(), resume_at),
            Some(Err(e)) => panic!("consumer error: {e}"),
            _ => {}
        }
    }
    panic!("nothing was fetched after resuming {topic}/0 at {resume_at}");
}

#[test]
fn producing_a_missing_file_names_it() {
    let args = ProduceArgs {
        brokers: "127.0.0.1:9".into(),
        topic: "t".into(),
        files: vec![PathBuf::from("/nonexistent/week.csv.gz")],
        order: Order::File,
        rate: None,
        partitions: 1,
        key: produce::KeyFields::station(),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let error = runtime
        .block_on(produce::run(&args))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("/nonexistent/week.csv.gz") && error.contains("Check the path"),
        "{error}"
    );
}

#[test]
fn embedded_broker_is_reused_then_stopped() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        broker::resolve("kafka:9092", dir.path()).unwrap(),
        "kafka:9092"
    );
    let first = broker::resolve("embedded", dir.path()).expect("start the embedded broker");
    let second = broker::resolve("embedded", dir.path()).unwrap();
    assert_eq!(first, second, "the running embedded broker is reused");
    let state = std::fs::read_to_string(dir.path().join("embedded-broker.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let pid = state["pid"].as_u64().unwrap();

    assert!(
        broker::stop_embedded(dir.path()).unwrap(),
        "a broker was running"
    );
    assert!(
        std::net::TcpStream::connect(&first).is_err(),
        "{first} still answers"
    );
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "pid {pid} is still running: {stat}"
    );
    assert!(
        !broker::stop_embedded(dir.path()).unwrap(),
        "nothing left to stop"
    );
}
