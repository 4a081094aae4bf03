//! `sluice plan` against a running host (`sluice run --api`): a folder with a file added,
//! one changed in its steps only (a switch in place), one changed in other fields (a
//! restart), one deleted and one invalid gives each action with its field-level diff and
//! exit 2; the host's own folder gives "No changes." and exit 0; nothing is applied.

#[allow(unused_imports, reason = "these tests need no broker")]
mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn plan(dir: &Path, folder: &Path, api: SocketAddr) -> Output {
    sluice(dir)
        .arg("plan")
        .arg("--pipelines")
        .arg(folder)
        .args(["--api", &format!("http://{api}")])
        .output()
        .expect("sluice plan runs")
}

#[test]
fn plan_shows_each_change_against_a_running_host() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    for name in ["steps", "fields", "gone", "same"] {
        std::fs::write(
            live.join(format!("{name}.yaml")),
            webhook_spec(name, "cumulative"),
        )
        .unwrap();
    }
    let api = free_addr();
    let _host = Running(
        sluice(dir.path())
            .arg("run")
            .arg("--pipelines")
            .arg(&live)
            .args(["--api", &api.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = plan(dir.path(), &live, api);
        if out.status.code() == Some(0) {
            assert!(String::from_utf8_lossy(&out.stdout).contains("No changes."));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the host's own folder never planned clean: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let proposed = dir.path().join("proposed");
    std::fs::create_dir_all(&proposed).unwrap();
    std::fs::write(
        proposed.join("same.yaml"),
        webhook_spec("same", "cumulative"),
    )
    .unwrap();
    std::fs::write(
        proposed.join("steps.yaml"),
        webhook_spec("steps", "incremental"),
    )
    .unwrap();
    let fields = webhook_spec("fields", "cumulative").replace("/ingest", "/other");
    std::fs::write(proposed.join("fields.yaml"), fields).unwrap();
    std::fs::write(
        proposed.join("added.yaml"),
        webhook_spec("added", "cumulative"),
    )
    .unwrap();
    let broken =
        webhook_spec("broken", "cumulative").replace("turnstile-parse@^0.1", "no-such-plugin@^9");
    std::fs::write(proposed.join("broken.yaml"), broken).unwrap();
    let out = plan(dir.path(), &proposed, api);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "+ added: would start",
        "! broken: would be refused",
        "- gone [running]: would stop and be removed",
        "-/+ fields [running]: would restart",
        "    source.http.path: \"/ingest\" -> \"/other\"",
        "~ steps [running]: would switch its plugins in place",
        "    steps[1].window.config.counters: \"cumulative\" -> \"incremental\"",
        "  same [running]: unchanged",
        "Plan: 5 change(s).",
    ] {
        assert!(text.contains(line), "no `{line}` in the plan:\n{text}");
    }
    assert!(
        text.contains("no-such-plugin"),
        "the refusal names the plugin:\n{text}"
    );
    // Nothing was applied: the host's folder still plans clean.
    assert_eq!(plan(dir.path(), &live, api).status.code(), Some(0));
    // One file is planned alone: the host's other pipelines are not deleted.
    let one = plan(dir.path(), &proposed.join("added.yaml"), api);
    let text = String::from_utf8_lossy(&one.stdout);
    assert!(
        text.contains("Plan: 1 change(s).") && !text.contains("- gone"),
        "{text}"
    );
}
