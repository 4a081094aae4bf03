//! Crash-restart while data keeps arriving, on a real tansu broker: a paced producer replays
//! a shared week into a 3-partition topic while the long-running host (consumer group,
//! static membership, 1 s checkpoints) is killed with SIGKILL at several points — mid-stream,
//! soon after a restart delivered its first batch, and while a restarted host is still
//! joining its group — and restarted each time; `sluice run --once` finishes the topic. The
//! lake (and the PostgreSQL warehouse) must equal the oracle exactly: no partial window, no
//! duplicate row, nothing dead-lettered, and no host may report a window emitted twice with
//! other values. A host stalled (SIGSTOP) while a replacement takes over is fenced when it
//! wakes. Three hosts with their own state folders share the partitions of one pipeline
//! through its consumer group and the shared checkpoint store: one is killed and restarted
//! mid-stream, all stop with SIGTERM, and a `--once` run on a fourth folder finishes the
//! topic; the lake must equal the oracle of the three weeks. Restart-to-first-batch and
//! failover times are printed (no timing is asserted).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

const WEEK: &str = "240106";
const ORACLE: &str = "mta-turnstile-240106.cumulative.csv";
/// Records per second of the producer: the week (~250,000 records) takes ~31 s, longer than
/// the kills and restarts of a scenario.
const RATE: &str = "8000";
/// How long a (re)started host may take to process its first batch before the test fails
/// (generous: this is no timing assertion, only a bound on a hung test).
const JOIN_LIMIT: Duration = Duration::from_secs(120);
const FIRST_BATCH: &str = "Processed the first batch";
const CONFLICT: &str = "emitted again with other values";
/// What a host logs when it starts a task from a partition's checkpoint another host wrote.
const TAKEN_OVER: &str = "The task continues from its partition's checkpoint";

/// One scenario's folder, broker and settings.
struct Scenario {
    dir: tempfile::TempDir,
    broker: LocalBroker,
    warehouse: Option<(String, String)>,
    /// Every host's log, for the final checks.
    logs: Vec<mpsc::Receiver<String>>,
    /// Another spec than pipelines/turnstile.yaml.
    spec: Option<PathBuf>,
}

/// A running host whose log lines are forwarded (the pipe is drained until it exits).
struct Host {
    child: Child,
    started: Instant,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    /// Where the broker's log is read from when the host hangs.
    broker_log: String,
}

/// The scenarios run one after the other: each paces its own broker, producer and hosts, and
/// two at once on a 2-core machine only measure the contention.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Scenario {
    fn new(warehouse: bool) -> Self {
        let warehouse = warehouse.then(|| {
            let table = format!("live_crash_{}", std::process::id());
            let url = std::env::var("SLUICE_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            (url, table)
        });
        Self {
            dir: tempfile::tempdir().unwrap(),
            broker: LocalBroker::start().expect("tansu starts"),
            warehouse,
            logs: Vec::new(),
            spec: None,
        }
    }

    fn lake(&self) -> PathBuf {
        self.dir.path().join("lake")
    }

    /// The pipeline of a host whose state folder is `state`; every host shares the lake and
    /// the checkpoint store.
    fn pipeline_at(&self, state: &Path, once: bool) -> Command {
        std::fs::create_dir_all(state).unwrap();
        let mut cmd = sluice(state);
        cmd.arg("run");
        if once {
            cmd.arg("--once");
        }
        let spec = self
            .spec
            .clone()
            .unwrap_or_else(|| repo().join("pipelines/turnstile.yaml"));
        cmd.arg("--pipelines")
            .arg(spec)
            .env("KAFKA_BROKERS", self.broker.bootstrap())
            .env("TURNSTILE_TOPIC", "turnstile")
            .env("LAKE_URL", format!("file://{}", self.lake().display()))
            .env("CHECKPOINT_INTERVAL", "1s")
            .env(
                "CHECKPOINT_URL",
                format!("file://{}", self.dir.path().join("checkpoints").display()),
            );
        if let Some((url, table)) = &self.warehouse {
            cmd.env("WAREHOUSE_URL", url).env("WAREHOUSE_TABLE", table);
        }
        cmd
    }

    fn produce(&self) -> Child {
        self.produce_weeks(&[WEEK], RATE)
    }

    /// A paced `sluice produce` of `weeks` into a 6-partition topic keyed by station.
    fn produce_weeks(&self, weeks: &[&str], rate: &str) -> Child {
        let mut cmd = sluice(self.dir.path());
        cmd.args(["produce", "--brokers", &self.broker.bootstrap()])
            .args(["--topic", "turnstile", "--order", "event-time"])
            .args(["--rate", rate, "--partitions", "6", "--key", "station"]);
        for w in weeks {
            cmd.arg("--file").arg(week(w));
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Starts the long-running host.
    fn host(&self) -> Host {
        self.host_at(self.dir.path())
    }

    /// Starts a long-running host on the state folder `state`.
    fn host_at(&self, state: &Path) -> Host {
        let mut child = self
            .pipeline_at(state, false)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        // SLUICE_TEST_KEEP_LOGS=<folder>: each host's log is also written there as it runs.
        let mut keep = std::env::var("SLUICE_TEST_KEEP_LOGS").ok().map(|dir| {
            let name = format!(
                "{dir}/{}-{}.log",
                child.id(),
                state.file_name().unwrap().to_string_lossy()
            );
            std::fs::File::create(name).unwrap()
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(file) = keep.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(file, "{line}");
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Host {
            child,
            started: Instant::now(),
            lines,
            seen: Vec::new(),
            broker_log: self.broker.log_path().display().to_string(),
        }
    }

    /// Kills `host` with SIGKILL and keeps its log.
    fn kill(&mut self, mut host: Host, label: &str) {
        let alive = host.child.try_wait().unwrap().is_none();
        host.child.kill().unwrap();
        host.child.wait().unwrap();
        host.drain();
        assert!(
            alive,
            "{label}: the host had exited by itself:\n{}",
            host.log()
        );
        let delivered = host.seen.iter().any(|l| l.contains(FIRST_BATCH));
        eprintln!(
            "{label}: SIGKILL after {:.2} s ({})",
            host.started.elapsed().as_secs_f64(),
            if delivered {
                "processing"
            } else {
                "no batch processed yet"
            }
        );
        self.keep(host);
    }

    fn keep(&mut self, host: Host) {
        let (tx, rx) = mpsc::channel();
        for line in host.seen {
            let _ = tx.send(line);
        }
        self.logs.push(rx);
    }

    /// Finishes the topic with `--once` and checks everything against the oracle.
    fn finish_and_check(self) {
        let state = self.dir.path().to_owned();
        self.finish_and_check_at(&state, ORACLE);
    }

    /// Finishes the topic with `--once` on the state folder `state` and checks everything
    /// against the oracle `oracle`.
    fn finish_and_check_at(mut self, state: &Path, oracle: &str) {
        let out = ok(self.pipeline_at(state, true).stdout(Stdio::piped()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("Pipeline `turnstile` finished."),
            "{stdout}"
        );
        let once_log = String::from_utf8_lossy(&out.stderr).into_owned();
        let mut logs: Vec<String> = vec![once_log];
        for rx in self.logs.drain(..) {
            logs.push(rx.try_iter().collect::<Vec<_>>().join("\n"));
        }
        if let Ok(keep) = std::env::var("SLUICE_TEST_KEEP_LOGS") {
            for (i, log) in logs.iter().enumerate() {
                let _ = std::fs::write(format!("{keep}/host-{i}.log"), log);
            }
        }
        for log in &logs {
            assert!(
                !log.contains(CONFLICT),
                "a host saw a conflicting emission:\n{log}"
            );
        }
        let expected = expected_rows(oracle);
        let rows = lake_rows(&self.lake());
        assert_same_rows(&rows, &expected);
        let mut dedup = rows.clone();
        dedup.dedup();
        assert_eq!(dedup.len(), rows.len(), "a window was written twice");
        let dead = files_under(&self.lake().join("_dlq"));
        assert!(dead.is_empty(), "records were dead-lettered: {dead:?}");
        if let Some((url, table)) = &self.warehouse {
            assert_same_rows(&table_rows(url, table), &expected);
        }
    }
}

impl Host {
    /// Waits until the host logs its first processed batch; returns how long that took.
    fn first_batch(&mut self, limit: Duration) -> Duration {
        while self.started.elapsed() < limit {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let found = line.contains(FIRST_BATCH);
                    self.seen.push(line);
                    if found {
                        return self.started.elapsed();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!(
            "the host processed no batch:\n{}\nbroker log (SLUICE_TANSU_LOG sets its level):\n{}",
            self.log(),
            tail(&self.broker_log, 80)
        );
    }

    /// Waits until the host logs a line holding `text`; `None` if it did not within `limit`.
    fn wait_for(&mut self, text: &str, limit: Duration) -> Option<Duration> {
        let since = Instant::now();
        while since.elapsed() < limit {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return Some(since.elapsed());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        None
    }

    fn drain(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
            if Instant::now() > deadline {
                break;
            }
        }
    }

    fn log(&self) -> String {
        self.seen.join("\n")
    }
}

/// The last `lines` lines of the file at `path`.
fn tail(path: &str, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The warehouse table as oracle lines, sorted; the table is dropped.
fn table_rows(url: &str, table: &str) -> Vec<String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(window_table_rows(url, table))
}

#[test]
fn kill_9_while_data_keeps_arriving_gives_each_window_exactly_once_in_the_lake() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut scenario = Scenario::new(false);
    let mut producer = scenario.produce();
    std::thread::sleep(Duration::from_secs(1));

    // Mid-stream, with checkpoints written.
    let mut host = scenario.host();
    host.first_batch(JOIN_LIMIT);
    std::thread::sleep(Duration::from_millis(2500));
    scenario.kill(host, "first host");

    // A restart: it takes its partitions back without waiting for the dead member's session.
    let mut host = scenario.host();
    let took = host.first_batch(JOIN_LIMIT);
    eprintln!("restart to first batch: {:.2} s", took.as_secs_f64());
    std::thread::sleep(Duration::from_millis(1500));
    scenario.kill(host, "second host");

    // While restarted hosts are still joining their group.
    for (label, after) in [
        ("third host (joining)", 300),
        ("fourth host (joining)", 3000),
    ] {
        let host = scenario.host();
        std::thread::sleep(Duration::from_millis(after));
        scenario.kill(host, label);
    }

    let mut host = scenario.host();
    let took = host.first_batch(JOIN_LIMIT);
    eprintln!("restart to first batch: {:.2} s", took.as_secs_f64());
    std::thread::sleep(Duration::from_millis(1000));
    let still_producing = producer.try_wait().unwrap().is_none();
    scenario.kill(host, "fifth host");
    eprintln!("producer still running at the last kill: {still_producing}");

    assert!(producer.wait().unwrap().success(), "the producer failed");
    scenario.finish_and_check();
}

#[test]
fn kill_9_while_data_keeps_arriving_gives_each_window_exactly_once_in_the_warehouse() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut scenario = Scenario::new(true);
    let mut producer = scenario.produce();
    std::thread::sleep(Duration::from_millis(500));

    let mut host = scenario.host();
    host.first_batch(JOIN_LIMIT);
    std::thread::sleep(Duration::from_millis(1000));
    scenario.kill(host, "first host");

    // Killed while joining (inside tansu's JoinGroup), twice in a row. (A kill later in the
    // join, inside SyncGroup at ~4 s, left tansu 0.6 unable to complete any later join of the
    // same static member in 2 of ~14 runs: a broker fault, see README.)
    for (label, after) in [
        ("second host (joining)", 250),
        ("third host (joining)", 2000),
    ] {
        let host = scenario.host();
        std::thread::sleep(Duration::from_millis(after));
        scenario.kill(host, label);
    }

    let mut host = scenario.host();
    let took = host.first_batch(JOIN_LIMIT);
    eprintln!("restart to first batch: {:.2} s", took.as_secs_f64());
    std::thread::sleep(Duration::from_millis(2000));
    scenario.kill(host, "fourth host");

    // A graceful stop (final checkpoint) while the producer still runs.
    let mut host = scenario.host();
    host.first_batch(JOIN_LIMIT);
    std::thread::sleep(Duration::from_millis(1000));
    eprintln!(
        "producer still running at the stop: {}",
        producer.try_wait().unwrap().is_none()
    );
    signal(&host, "-TERM");
    let status = host.child.wait().unwrap();
    host.drain();
    assert!(status.success(), "SIGTERM stop failed:\n{}", host.log());
    scenario.keep(host);

    assert!(producer.wait().unwrap().success(), "the producer failed");
    scenario.finish_and_check();
}

/// Sends `signal` (`-STOP`, `-CONT`, `-TERM`) to a host.
fn signal(host: &Host, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &host.child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} failed");
}

#[test]
fn a_host_stalled_past_its_session_is_fenced_when_it_wakes_and_the_results_still_equal_the_oracle()
{
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut scenario = Scenario::new(false);
    let mut producer = scenario.produce();
    std::thread::sleep(Duration::from_millis(500));

    // The first host checkpoints for a while, then stalls (SIGSTOP) far past its session.
    let mut stalled = scenario.host();
    stalled.first_batch(JOIN_LIMIT);
    std::thread::sleep(Duration::from_millis(2000));
    signal(&stalled, "-STOP");

    // A replacement on the same state folder takes over and checkpoints.
    let mut host = scenario.host();
    let took = host.first_batch(JOIN_LIMIT);
    eprintln!("replacement to first batch: {:.2} s", took.as_secs_f64());
    std::thread::sleep(Duration::from_millis(3000));

    // The stalled host wakes up: its next checkpoint is refused and its pipeline stops.
    signal(&stalled, "-CONT");
    let woke = Instant::now();
    let fenced = loop {
        match stalled.lines.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let fenced = line.contains("no longer owns the pipeline");
                stalled.seen.push(line);
                if fenced {
                    break true;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if woke.elapsed() < JOIN_LIMIT => {}
            Err(_) => break false,
        }
    };
    assert!(
        fenced,
        "the stalled host was not fenced:\n{}",
        stalled.log()
    );
    eprintln!(
        "stalled host fenced {:.2} s after waking",
        woke.elapsed().as_secs_f64()
    );
    scenario.kill(stalled, "stalled host");

    signal(&host, "-TERM");
    let status = host.child.wait().unwrap();
    host.drain();
    assert!(status.success(), "SIGTERM stop failed:\n{}", host.log());
    scenario.keep(host);

    assert!(producer.wait().unwrap().success(), "the producer failed");
    scenario.finish_and_check();
}

#[test]
fn three_hosts_share_the_partitions_and_a_killed_host_s_partitions_and_state_move_to_the_others() {
    three_hosts(false);
}

#[test]
fn three_hosts_with_one_killed_write_each_window_once_to_the_warehouse() {
    three_hosts(true);
}

/// Three hosts (own state folders, shared lake, checkpoints and warehouse) over a paced
/// replay of the three weeks; one is killed and restarted, all stop with SIGTERM, a fourth
/// `--once` finishes: the lake (and the warehouse) equal the oracle.
fn three_hosts(warehouse: bool) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let scenario_dir = |s: &Scenario, name: &str| s.dir.path().join(name);
    let mut scenario = Scenario::new(warehouse);
    // Dynamic group members: tansu 0.6 does not reliably expire a dead static member or let
    // it rejoin (see README), and a cluster's failover is what this measures.
    let text = std::fs::read_to_string(repo().join("pipelines/turnstile.yaml")).unwrap();
    let dynamic = text.replace(
        "    key: [station]\n",
        "    key: [station]\n    properties: { group.instance.id: \"\" }\n",
    );
    assert_ne!(text, dynamic);
    let spec = scenario.dir.path().join("turnstile.yaml");
    std::fs::write(&spec, dynamic).unwrap();
    scenario.spec = Some(spec);
    // 12,000 records/s: the three weeks take about a minute, so the killed host comes back
    // (after its session timeout and the failover) while records still arrive.
    let mut producer = scenario.produce_weeks(&["240106", "240113", "240120"], "12000");
    std::thread::sleep(Duration::from_secs(1));

    let mut hosts: Vec<Host> = (0..3)
        .map(|i| scenario.host_at(&scenario_dir(&scenario, &format!("host-{i}"))))
        .collect();
    for host in &mut hosts {
        host.first_batch(JOIN_LIMIT);
    }
    std::thread::sleep(Duration::from_millis(3000));

    // Host 1 dies mid-stream; the others take its partitions (from its checkpoints) once
    // its session times out, then it comes back and the group spreads them again.
    for host in &mut hosts {
        host.seen.extend(host.lines.try_iter());
    }
    let killed = hosts.remove(1);
    scenario.kill(killed, "host 1");
    let failover = Instant::now();
    let taken = hosts
        .iter_mut()
        .find_map(|h| h.wait_for(TAKEN_OVER, Duration::from_secs(30)));
    match taken {
        Some(_) => eprintln!(
            "failover: partitions of the killed host continued elsewhere {:.2} s after SIGKILL",
            failover.elapsed().as_secs_f64()
        ),
        None => panic!("the killed host's partitions did not move to the others"),
    }
    let mut back = scenario.host_at(&scenario_dir(&scenario, "host-1"));
    back.first_batch(JOIN_LIMIT);
    hosts.push(back);
    std::thread::sleep(Duration::from_millis(2000));

    for mut host in hosts {
        signal(&host, "-TERM");
        let status = host.child.wait().unwrap();
        host.drain();
        assert!(status.success(), "SIGTERM stop failed:\n{}", host.log());
        scenario.keep(host);
    }
    assert!(producer.wait().unwrap().success(), "the producer failed");
    let fourth = scenario_dir(&scenario, "host-once");
    scenario.finish_and_check_at(&fourth, "mta-turnstile-3weeks.cumulative.csv");
}
