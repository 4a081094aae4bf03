//! Section 7, hosts: 1, 2 and 3 long-running `sluice run` processes on this machine, each with
//! its own state folder and API, in one consumer group with one shared checkpoint store, over
//! the replicated set already in a 16-partition topic keyed by station. Timed from launch
//! until the group's committed offsets reach the end of every partition (read from a host's
//! status; offsets are committed at each checkpoint, every second here, so a figure may be up
//! to 1 s late). The group's joins and rebalances are inside the time, as they are for a user.
//! Then failover: two hosts over a topic produced at a paced rate, one killed with `kill -9`;
//! timed until the group committed new offsets on every partition the dead host owned (the
//! survivor restored their state, processed them and wrote their results; up to the 1 s
//! checkpoint interval and the status's 1 s lag cache late).
//!
//! Every host shares this machine's cores: with 2 cores, more hosts show the overhead of a
//! cluster (joins, rebalances, state handed over), not a speed-up.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{Broker, free_port, produce_into, repo, sluice};
use crate::e2e::{prepare, scratch, warm_cache};
use crate::figures::{Figure, Report};

const SECTION: &str = "hosts";
const FAILOVER: &str = "failover";
const PARTITIONS: u32 = 16;
const LIMIT: Duration = Duration::from_secs(300);
/// A failover not done after this long is counted as stuck.
const STUCK: Duration = Duration::from_secs(120);

/// One host process and its API address.
struct HostProc {
    child: Child,
    api: String,
}

impl Drop for HostProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The turnstile pipeline as dynamic group members (tansu 0.6 does not reliably expire a
/// dead static member), lake only.
fn spec(work: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("pipelines/turnstile.yaml")).unwrap();
    let dynamic = text.replace(
        "    key: [station]\n",
        "    key: [station]\n    properties: { group.instance.id: \"\" }\n",
    );
    assert_ne!(text, dynamic, "pipelines/turnstile.yaml declares its key");
    let path = work.join("turnstile-hosts.yaml");
    std::fs::write(&path, dynamic).unwrap();
    path
}

/// State folders `host-0` .. `host-{n-1}` under `work`, their compile caches warm.
fn warmed_states(work: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|k| {
            let state = work.join(format!("host-{k}"));
            warm_cache(&state);
            state
        })
        .collect()
}

/// Starts a host with state folder `state` in consumer group `group`.
fn start(
    broker: &Broker,
    spec: &Path,
    state: &Path,
    topic: &str,
    group: &str,
    shared: &Path,
) -> HostProc {
    let api = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(state.with_extension("log")).unwrap();
    let child = sluice(state)
        .args(["run", "--pipelines"])
        .arg(spec)
        .args(["--api", &api])
        .env("KAFKA_BROKERS", &broker.address)
        .env("TURNSTILE_TOPIC", topic)
        .env("TURNSTILE_GROUP", group)
        .env("TURNSTILE_COUNTERS", "incremental")
        .env(
            "LAKE_URL",
            format!("file://{}", shared.join("lake").display()),
        )
        .env(
            "CHECKPOINT_URL",
            format!("file://{}", shared.join("checkpoints").display()),
        )
        .env("CHECKPOINT_INTERVAL", "1s")
        .env("WAREHOUSE_URL", "")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("sluice run starts");
    HostProc { child, api }
}

/// `GET path` on `addr`: the JSON body, or `None` while the host does not answer.
fn get(addr: &str, path: &str) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}

/// True when the group committed all `records` of the topic (as `addr`'s status reads it).
/// The committed offsets, not the lag: tansu 0.6 reports high watermarks below the last
/// offsets.
fn caught_up(addr: &str, records: u64) -> bool {
    let Some(detail) = get(addr, "/api/v1/pipelines/turnstile") else {
        return false;
    };
    let lag = detail["status"]["lag"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let committed: i64 = lag
        .iter()
        .filter_map(|l| l["offset"].as_i64())
        .filter(|&o| o > 0)
        .sum();
    committed == records as i64
}

/// Runs the host counts `runs` times each over `replicas` replicas of `weeks`, then failover.
pub fn run(broker: &Broker, weeks: &[PathBuf], replicas: usize, runs: usize, report: &mut Report) {
    let (work, scratch_dir, _) = scratch();
    let (files, records) = prepare(work.path(), weeks, replicas);
    let topic = format!("bench-hosts-{replicas}x");
    eprintln!(
        "hosts {replicas}x: {}",
        produce_into(broker, &topic, &files, PARTITIONS)
    );
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    let spec = spec(work.path());
    let states = warmed_states(work.path(), 3);
    let mut one = None;
    for n in 1..=3 {
        let mut rates = Vec::new();
        for i in 0..runs {
            let shared = scratch_dir.path().join(format!("run-{n}-{i}"));
            std::fs::create_dir_all(&shared).unwrap();
            let group = format!("bench-hosts-{n}-{i}");
            let start_at = Instant::now();
            let hosts: Vec<HostProc> = states[..n]
                .iter()
                .map(|s| start(broker, &spec, s, &topic, &group, &shared))
                .collect();
            while !caught_up(&hosts[0].api, records) {
                assert!(start_at.elapsed() < LIMIT, "{n} host(s) never caught up");
                std::thread::sleep(Duration::from_millis(100));
            }
            let t = start_at.elapsed().as_secs_f64();
            eprintln!("hosts {replicas}x, {n} host(s), run {}: {t:.2} s", i + 1);
            rates.push(records as f64 / t);
            drop(hosts);
            let _ = std::fs::remove_dir_all(&shared);
        }
        let figure = Figure::new(
            SECTION,
            &format!("hosts_{replicas}x_{n}_records_per_s"),
            &format!("{replicas}x ({records} records): {n} host(s), launch to all committed"),
            "rec/s",
            rates,
        );
        let median = figure.median();
        report.add(figure);
        let base = *one.get_or_insert(median);
        if n > 1 {
            report.add(Figure::new(
                SECTION,
                &format!("hosts_{replicas}x_{n}_vs_one"),
                &format!("{n} hosts vs one on the same cores (overhead below 1)"),
                "ratio",
                vec![median / base],
            ));
        }
    }
}

/// Section 8, failover: `runs` times, one of two hosts killed with `kill -9`.
pub fn run_failover(broker: &Broker, weeks: &[PathBuf], runs: usize, report: &mut Report) {
    let (work, scratch_dir, _) = scratch();
    let spec = spec(work.path());
    let states = warmed_states(work.path(), 2);
    let (mut failovers, mut stuck) = (Vec::new(), 0);
    for i in 0..runs {
        match failover(broker, weeks, &spec, &states, scratch_dir.path(), i) {
            Ok(seconds) => failovers.push(seconds),
            Err(log) => {
                stuck += 1;
                eprintln!(
                    "failover run {}: no takeover within {} s\n{log}",
                    i + 1,
                    STUCK.as_secs()
                );
            }
        }
    }
    report.add(Figure::new(
        FAILOVER,
        "failover_runs_stuck",
        "runs where the broker gave the survivor nothing back (see docs/benchmarks.md)",
        "runs",
        vec![f64::from(stuck)],
    ));
    report.add(Figure::new(
        FAILOVER,
        "failover_seconds",
        "kill -9 of one of 2 hosts until its partitions' results are committed by the other (goal < 15 s)",
        "s",
        failovers,
    ));
}

/// The group's committed offset of each partition: `(partition, offset)`.
type Committed = Vec<(i64, i64)>;

/// The partitions `addr`'s host owns, and the group's committed offset of each partition.
fn ownership(addr: &str) -> Option<(Vec<i64>, Committed)> {
    let detail = get(addr, "/api/v1/pipelines/turnstile")?;
    let status = &detail["status"];
    let partitions = status["tasks"]
        .as_array()?
        .iter()
        .flat_map(|t| t["partitions"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p.as_i64())
        .collect();
    let committed = status["lag"]
        .as_array()?
        .iter()
        .filter_map(|l| Some((l["partition"].as_i64()?, l["offset"].as_i64()?)))
        .collect();
    Some((partitions, committed))
}

/// One failover: two hosts over a paced topic; once both own partitions and committed
/// results, the first is killed. Timed until the group committed past where it stood at the
/// kill on every partition the dead host owned: their results were written elsewhere.
fn failover(
    broker: &Broker,
    weeks: &[PathBuf],
    spec: &Path,
    states: &[PathBuf],
    scratch: &Path,
    i: usize,
) -> Result<f64, String> {
    let topic = format!("bench-failover-{i}");
    let mut producer: Child = {
        let mut cmd: Command = sluice(scratch);
        cmd.args(["produce", "--brokers", &broker.address, "--topic", &topic])
            .args(["--rate", "10000", "--partitions", &PARTITIONS.to_string()]);
        for w in weeks {
            cmd.arg("--file").arg(w);
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // The hosts subscribe once the topic exists (a missing topic is only seen again at the
    // next metadata refresh).
    std::thread::sleep(Duration::from_secs(2));
    let shared = scratch.join(format!("failover-{i}"));
    std::fs::create_dir_all(&shared).unwrap();
    let group = format!("bench-failover-{i}");
    let mut hosts: Vec<HostProc> = states[..2]
        .iter()
        .map(|s| start(broker, spec, s, &topic, &group, &shared))
        .collect();
    let started = Instant::now();
    // Both hosts own partitions, and every partition has a committed offset.
    let (dead_owned, at_kill) = loop {
        let views: Vec<_> = hosts.iter().map(|h| ownership(&h.api)).collect();
        if let [Some((first, committed)), Some((second, _))] = views.as_slice()
            && !first.is_empty()
            && !second.is_empty()
            && committed.len() == PARTITIONS as usize
            && committed.iter().all(|&(_, o)| o > 0)
        {
            break (first.clone(), committed.clone());
        }
        assert!(
            started.elapsed() < LIMIT,
            "the two hosts never shared the partitions"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut dead = hosts.remove(0);
    let survivor = hosts.remove(0);
    let killed = Instant::now();
    let _ = dead.child.kill(); // SIGKILL
    let _ = dead.child.wait();
    let seconds = loop {
        if let Some((_, committed)) = ownership(&survivor.api) {
            let moved_on = dead_owned.iter().all(|p| {
                let before = at_kill.iter().find(|(q, _)| q == p).map_or(0, |(_, o)| *o);
                committed.iter().any(|(q, o)| q == p && *o > before)
            });
            if moved_on {
                break Ok(killed.elapsed().as_secs_f64());
            }
        }
        if killed.elapsed() > STUCK {
            let log = std::fs::read_to_string(states[1].with_extension("log")).unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .filter(|l| !l.contains("records in ("))
                .rev()
                .take(12)
                .collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            break Err(format!(
                "the dead host's partitions {dead_owned:?} (at the kill: {at_kill:?}); the \
                 survivor's log:\n{}",
                tail.join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Ok(seconds) = &seconds {
        eprintln!("failover run {}: {seconds:.2} s", i + 1);
    }
    let _ = producer.kill();
    let _ = producer.wait();
    drop(survivor);
    let _ = std::fs::remove_dir_all(&shared);
    seconds
}
