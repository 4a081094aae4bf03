//! Section 4, latency at a steady input rate through the broker. A paced rdkafka producer
//! (here, `linger.ms=1`) sends records stamped with their send time; `sluice run` consumes
//! them with the default batching (`max_wait: 100ms`).
//! - pass-through: the `passthrough` plugin and the `stdout` sink; latency = the moment the
//!   row's line is read from sluice's standard output − its send time.
//! - early result: turnstile-parse and turnstile-window (`emit: { early: 1s }`, incremental,
//!   one station per record) and the live sink; latency = arrival of the record's first early
//!   row on `/api/v1/pipelines/{name}/live` (server-sent events) − its send time.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::cli::{Broker, sluice};
use crate::figures::{Figure, Report};

const SECTION: &str = "latency";
/// Records per second while measuring.
const RATE: u64 = 1_000;
/// Measured records per run (after a warm-up).
const RECORDS: u64 = 5_000;

const PASS_SPEC: &str = r#"version: 1
name: latency-pass
source:
  kafka: { brokers: "${KAFKA_BROKERS}", topic: bench-latency-pass, group: bench-latency-pass-RUN, start: latest }
steps:
  - transform: { plugin: passthrough@^0.1 }
sinks: [ { stdout: {} } ]
"#;

const EARLY_SPEC: &str = r#"version: 1
name: latency-early
source:
  kafka: { brokers: "${KAFKA_BROKERS}", topic: bench-latency-early, group: bench-latency-early-RUN, start: latest }
steps:
  - transform: { plugin: turnstile-parse@^0.1, config: { format: auto } }
  - window:
      plugin: turnstile-window@^0.1
      event_time: timestamp
      size: 4h
      delay: 4h
      emit: { early: 1s }
      config: { counters: incremental, group_by: [station] }
sinks: [ { live: {} } ]
"#;

/// Runs both measurements `runs` times and adds p50/p99 of each.
pub fn run(broker: &Broker, runs: usize, report: &mut Report) {
    let work = tempfile::tempdir().expect("a temporary folder");
    eprintln!(
        "latency: specs and sluice logs in {}",
        work.path().display()
    );
    let (mut pass, mut early) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for i in 0..runs {
        let p = pass_through(broker, work.path(), i);
        let e = early_result(broker, work.path(), i);
        eprintln!(
            "latency run {}: pass-through p50 {:.1} ms p99 {:.1} ms over {}; early p50 {:.0} ms p99 {:.0} ms over {}",
            i + 1,
            pct(&p, 0.5),
            pct(&p, 0.99),
            p.len(),
            pct(&e, 0.5),
            pct(&e, 0.99),
            e.len()
        );
        for (acc, l) in [(&mut pass, &p), (&mut early, &e)] {
            acc.0.push(pct(l, 0.5));
            acc.1.push(pct(l, 0.99));
        }
    }
    let at = format!("at {RATE} rec/s");
    let figures = [
        (
            "latency_pass_p50_ms",
            format!("produce to sink write, pass-through, p50 {at}"),
            pass.0,
        ),
        (
            "latency_pass_p99_ms",
            format!("produce to sink write, pass-through, p99 {at}"),
            pass.1,
        ),
        (
            "latency_early_p50_ms",
            format!("produce to early result on /live (early: 1s), p50 {at}"),
            early.0,
        ),
        (
            "latency_early_p99_ms",
            format!("produce to early result on /live (early: 1s), p99 {at}"),
            early.1,
        ),
    ];
    for (name, label, samples) in figures {
        report.add(Figure::new(SECTION, name, &label, "ms", samples));
    }
}

/// The `p` quantile of `values` (nearest rank); NaN when empty.
fn pct(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// Starts `sluice run` of `spec` (a fresh state folder per run is not needed: groups start
/// at `latest`); the topic is created by producing one line into it.
/// Each run uses its own consumer group (`RUN` in the spec).
fn start(broker: &Broker, dir: &Path, spec: &str, topic: &str, run: usize, listen: bool) -> Child {
    let spec = spec.replace("RUN", &run.to_string());
    let seed = dir.join(format!("{topic}.txt"));
    std::fs::write(&seed, "warm-up\n").unwrap();
    let mut cmd = sluice(broker.dir.path());
    let mut topic_cmd = sluice(broker.dir.path());
    topic_cmd.args([
        "produce",
        "--brokers",
        &broker.address,
        "--topic",
        topic,
        "--order",
        "file",
        "--partitions",
        "1",
    ]);
    topic_cmd.arg("--file").arg(&seed);
    assert!(
        topic_cmd.output().unwrap().status.success(),
        "creating {topic}"
    );
    let spec_path = dir.join(format!("{topic}-{run}.yaml"));
    std::fs::write(&spec_path, &spec).unwrap();
    cmd.args(["run", "--pipelines"])
        .arg(&spec_path)
        .env("KAFKA_BROKERS", &broker.address);
    if listen {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    let log = std::fs::File::create(dir.join(format!("{topic}.log"))).unwrap();
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("sluice run starts")
}

/// A producer for latency: sends at once (`linger.ms=1`).
fn producer(broker: &Broker) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("linger.ms", "1")
        .set("log_level", "3")
        .create()
        .expect("the producer is created")
}

/// Sends `count` records at `RATE`, value `make(seq, send time µs)`; returns the send times.
fn send_paced(
    producer: &BaseProducer,
    topic: &str,
    first: u64,
    count: u64,
    make: impl Fn(u64, i64) -> String,
) -> HashMap<u64, i64> {
    let mut sent = HashMap::new();
    let start = Instant::now();
    for i in 0..count {
        let due = start + Duration::from_secs_f64(i as f64 / RATE as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            producer.poll(Duration::ZERO);
            std::thread::sleep(wait);
        }
        let seq = first + i;
        let at = now_us();
        let value = make(seq, at);
        while producer
            .send(BaseRecord::<(), str>::to(topic).payload(&value))
            .is_err()
        {
            producer.poll(Duration::from_millis(1));
        }
        sent.insert(seq, at);
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");
    sent
}

/// Pass-through latencies (ms) of one run.
fn pass_through(broker: &Broker, dir: &Path, run: usize) -> Vec<f64> {
    let mut child = start(broker, dir, PASS_SPEC, "bench-latency-pass", run, false);
    let arrived: Arc<Mutex<HashMap<u64, i64>>> = Arc::default();
    let stdout = child.stdout.take().unwrap();
    let a = arrived.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let at = now_us();
            if let Some(seq) = line
                .trim_matches('"')
                .strip_prefix('L')
                .and_then(|l| l.split(':').next())
                && let Ok(seq) = seq.parse()
            {
                a.lock().unwrap().entry(seq).or_insert(at);
            }
        }
    });
    let producer = producer(broker);
    let base = run as u64 * 1_000_000;
    let make = |seq: u64, at: i64| format!("L{seq}:{at}");
    // Warm-up: until rows come out (the consumer group is assigned), then one more second.
    if !wait_for_output(&producer, "bench-latency-pass", base, &arrived, make) {
        let _ = child.kill();
        let _ = child.wait();
        return Vec::new();
    }
    let sent = send_paced(
        &producer,
        "bench-latency-pass",
        base + 500_000,
        RECORDS,
        make,
    );
    std::thread::sleep(Duration::from_secs(2));
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    latencies(&sent, &arrived.lock().unwrap())
}

/// Sends warm-up records until one comes out, then a second's worth more.
fn wait_for_output(
    producer: &BaseProducer,
    topic: &str,
    base: u64,
    arrived: &Mutex<HashMap<u64, i64>>,
    make: impl Fn(u64, i64) -> String + Copy,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seq = base;
    while arrived.lock().unwrap().is_empty() {
        if Instant::now() > deadline {
            eprintln!("latency: sluice run produced no output for {topic} within 60 s");
            return false;
        }
        send_paced(producer, topic, seq, 100, make);
        seq += 100;
        std::thread::sleep(Duration::from_millis(200));
    }
    send_paced(producer, topic, seq, RATE, make);
    true
}

fn latencies(sent: &HashMap<u64, i64>, arrived: &HashMap<u64, i64>) -> Vec<f64> {
    let lost = sent.keys().filter(|k| !arrived.contains_key(k)).count();
    if lost > 0 {
        eprintln!("latency: {lost} of {} records had no output", sent.len());
    }
    sent.iter()
        .filter_map(|(seq, &at)| arrived.get(seq).map(|&out| (out - at) as f64 / 1000.0))
        .collect()
}

/// Early-result latencies (ms) of one run.
fn early_result(broker: &Broker, dir: &Path, run: usize) -> Vec<f64> {
    let mut child = start(broker, dir, EARLY_SPEC, "bench-latency-early", run, true);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("Dashboard: http://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("sluice run --listen printed {line:?}"))
        .to_owned();
    let arrived: Arc<Mutex<HashMap<u64, i64>>> = Arc::default();
    let reader = sse_reader(
        &addr,
        "/api/v1/pipelines/latency-early/live",
        arrived.clone(),
    );
    let producer = producer(broker);
    let base = run as u64 * 1_000_000;
    let make = |seq: u64, at: i64| {
        let ts = sluice_plugin_sdk::time::format_timestamp(at / 1000);
        let (date, time) = ts.split_once(' ').unwrap();
        format!("L{seq},R000,00-00-00,LAT{seq},1,IRT,{date},{time},REGULAR,1,1")
    };
    if !wait_for_output(&producer, "bench-latency-early", base, &arrived, make) {
        let _ = child.kill();
        let _ = child.wait();
        return Vec::new();
    }
    let sent = send_paced(
        &producer,
        "bench-latency-early",
        base + 500_000,
        RECORDS,
        make,
    );
    std::thread::sleep(Duration::from_secs(3));
    let _ = child.kill();
    let _ = child.wait();
    drop(reader);
    latencies(&sent, &arrived.lock().unwrap())
}

/// Reads the live stream on a thread; notes when the first early row of station `LAT<seq>`
/// arrives. Ends when the connection closes. Retries until the pipeline is registered (the
/// endpoint answers 404 before).
fn sse_reader(
    addr: &str,
    path: &str,
    arrived: Arc<Mutex<HashMap<u64, i64>>>,
) -> std::thread::JoinHandle<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut stream, head) = loop {
        if let Some(open) = open_stream(addr, path) {
            break open;
        }
        assert!(Instant::now() < deadline, "{addr}{path} never answered 200");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut pending = head;
        loop {
            let at = now_us();
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                note_rows(&String::from_utf8_lossy(&line), at, &arrived);
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// Connects and sends the request; returns the stream and the bytes after the headers when
/// the answer is 200.
fn open_stream(addr: &str, path: &str) -> Option<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    got.starts_with(b"HTTP/1.1 200")
        .then(|| (stream, got[head_end..].to_vec()))
}

/// Notes the early rows of one `data:` line (chunk-size lines of the HTTP body are ignored).
fn note_rows(line: &str, at: i64, arrived: &Mutex<HashMap<u64, i64>>) {
    let Some(data) = line.trim_end().strip_prefix("data:") else {
        return;
    };
    let Ok(event) = serde_json::from_str::<serde_json::Value>(data.trim_start()) else {
        return;
    };
    if event["type"] != "rows" || event["final"] != false {
        return;
    }
    let mut arrived = arrived.lock().unwrap();
    for row in event["rows"].as_array().into_iter().flatten() {
        if let Some(seq) = row["station"].as_str().and_then(|s| s.strip_prefix("LAT"))
            && let Ok(seq) = seq.parse()
        {
            arrived.entry(seq).or_insert(at);
        }
    }
}
