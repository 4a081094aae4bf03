//! The command line as a user meets it: every example pipeline validates, user mistakes end
//! with exit code 2 and a message naming the place, bad records are dead-lettered with their
//! provenance and never stop the pipeline.

mod common;

use std::process::Command;

use common::*;

/// `line:column` (1-based) of the first occurrence of `needle` in `text`.
fn position(text: &str, needle: &str) -> String {
    let (n, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .expect("needle in the spec");
    format!("{}:{}", n + 1, line.find(needle).unwrap() + 1)
}

fn stderr_of(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().expect("the sluice binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_example_pipeline_validates() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(sluice(dir.path())
        .arg("validate")
        .arg(repo().join("pipelines")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let specs = std::fs::read_dir(repo().join("pipelines")).unwrap().count();
    assert_eq!(stdout.matches("valid pipeline").count(), specs, "{stdout}");
}

fn text_of_turnstile() -> String {
    std::fs::read_to_string(repo().join("pipelines/turnstile.yaml")).unwrap()
}

/// Validates pipelines/turnstile.yaml with `from` replaced by `to`: the exit code, stderr,
/// the spec path, and `line:column` of `at` in the original text.
fn validate_edited(from: &str, to: &str, at: &str) -> (i32, String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("pipelines/turnstile.yaml")).unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, text.replace(from, to)).unwrap();
    let (code, err) = stderr_of(sluice(dir.path()).arg("validate").arg(&bad));
    (code, err, bad.display().to_string(), position(&text, at))
}

#[test]
fn a_bad_spec_is_exit_2_with_file_line_and_column() {
    let (code, err, file, at) = validate_edited("size: 4h", "sise: 4h", "size: 4h");
    assert_eq!(code, 2, "{err}");
    let expected = format!("{file}:{at}: steps[1].window: unknown field `sise`");
    assert!(err.contains(&expected), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn a_parallel_window_over_an_undeclared_key_is_refused_naming_both_fixes() {
    let (code, err, file, _) = validate_edited("    key: [station]\n", "", "key:");
    assert_eq!(code, 2, "{err}");
    // At the window's `group_by` (one line up: the key line is gone).
    let group_by = position(&text_of_turnstile(), "group_by: [station]");
    let (line, column) = group_by.split_once(':').unwrap();
    let at = format!("{}:{column}", line.parse::<usize>().unwrap() - 1);
    assert!(err.contains(&format!("{file}:{at}: ")), "{at}: {err}");
    for fix in [
        "source.kafka.key: [station]",
        "parallelism: 1",
        "wrong results",
    ] {
        assert!(err.contains(fix), "the message names `{fix}`:\n{err}");
    }
    // `parallelism: 1` makes it valid: one task holds every partition.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("pipelines/turnstile.yaml")).unwrap();
    let one = dir.path().join("one.yaml");
    let edited = text
        .replace("    key: [station]\n", "")
        .replace("${TURNSTILE_PARALLELISM:-}", "1");
    std::fs::write(&one, edited).unwrap();
    let (code, err) = stderr_of(sluice(dir.path()).arg("validate").arg(&one));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn an_unknown_plugin_is_exit_2_naming_the_step() {
    let (code, err, file, at) = validate_edited(
        "turnstile-parse@^0.1",
        "turnstile-prase@^0.1",
        "plugin: turnstile-parse",
    );
    assert_eq!(code, 2, "{err}");
    let expected = format!("{file}:{at}: no plugin named `turnstile-prase`");
    assert!(err.contains(&expected), "{err}");
    assert!(
        err.contains("turnstile-parse"),
        "the message lists the known plugins: {err}"
    );
}

#[test]
fn a_plugin_of_the_wrong_world_is_exit_2_naming_the_step() {
    let (code, err, file, at) = validate_edited(
        "turnstile-parse@^0.1",
        "turnstile-window@^0.1",
        "plugin: turnstile-parse",
    );
    assert_eq!(code, 2, "{err}");
    let expected = format!(
        "{file}:{at}: plugin turnstile-window@0.1.0 implements the `Window` world, but a \
         `transform` step needs `Transform`"
    );
    assert!(err.contains(&expected), "{err}");
}

#[test]
fn an_unreachable_broker_is_exit_2_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = stderr_of(
        sluice(dir.path())
            .args(["run", "--once", "--pipelines"])
            .arg(repo().join("pipelines/turnstile.yaml"))
            .env("KAFKA_BROKERS", "127.0.0.1:1"),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("Cannot reach the Kafka brokers at `127.0.0.1:1`"),
        "{err}"
    );
}

#[test]
fn bad_records_are_dead_lettered_with_provenance() {
    let broker = LocalBroker::start().expect("tansu starts");
    let dir = tempfile::tempdir().unwrap();
    let messages = dir.path().join("messages.txt");
    let lines = [
        "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,00:00:00,REGULAR,100,200",
        "this is not a turnstile record",
        "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,04:00:00,REGULAR,1x0,200",
        "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,08:00:00,REGULAR,150,260",
    ];
    std::fs::write(&messages, lines.join("\n") + "\n").unwrap();
    ok(sluice(dir.path())
        .args([
            "produce",
            "--brokers",
            &broker.bootstrap(),
            "--topic",
            "t",
            "--order",
            "file",
            "--partitions",
            "1",
            "--file",
        ])
        .arg(&messages));
    let lake = dir.path().join("lake");
    ok(sluice(dir.path())
        .args(["run", "--once", "--pipelines"])
        .arg(repo().join("pipelines/turnstile.yaml"))
        .env("KAFKA_BROKERS", broker.bootstrap())
        .env("TURNSTILE_TOPIC", "t")
        .env("LAKE_URL", format!("file://{}", lake.display())));
    assert_eq!(
        lake_rows(&lake),
        vec!["59 ST,2024-01-01 08:00:00,2024-01-01 12:00:00,50,60".to_owned()]
    );
    let letters = dead_letters(&lake.join("_dlq"));
    assert_eq!(letters.len(), 2, "{letters:#?}");
    let offsets: Vec<i64> = letters
        .iter()
        .map(|l| l["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, vec![1, 2]);
    for letter in &letters {
        assert_eq!(letter["pipeline"], "turnstile");
        assert_eq!(letter["topic"], "t");
        assert_eq!(letter["partition"], 0);
        assert!(
            letter["stage"]
                .as_str()
                .unwrap()
                .contains("transform turnstile-parse@0.1"),
            "{letter}"
        );
        assert!(!letter["reason"].as_str().unwrap().is_empty());
    }
    assert!(letters[1]["record"].as_str().unwrap().contains("1x0"));

    // A second run resumes after the committed offsets: it reads only what was added.
    let more = dir.path().join("more.txt");
    std::fs::write(
        &more,
        "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/01/2024,12:00:00,REGULAR,170,300\n",
    )
    .unwrap();
    ok(sluice(dir.path())
        .args([
            "produce",
            "--brokers",
            &broker.bootstrap(),
            "--topic",
            "t",
            "--order",
            "file",
            "--file",
        ])
        .arg(&more));
    let out = ok(sluice(dir.path())
        .args(["run", "--once", "--pipelines"])
        .arg(repo().join("pipelines/turnstile.yaml"))
        .env("KAFKA_BROKERS", broker.bootstrap())
        .env("TURNSTILE_TOPIC", "t")
        .env("LAKE_URL", format!("file://{}", lake.display())));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("records read:     1\n"), "{stdout}");
}

fn dead_letters(dir: &std::path::Path) -> Vec<serde_json::Value> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let mut text = String::new();
                flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
                    .read_to_string(&mut text)
                    .unwrap();
                out.extend(
                    text.lines()
                        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()),
                );
            }
        }
    }
    out.sort_by_key(|l| l["offset"].as_i64());
    out
}
