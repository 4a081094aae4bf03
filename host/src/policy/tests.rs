use super::*;

fn load(text: &str) -> Loaded {
    crate::spec::load_str("api.yaml", text, &|_| None).unwrap()
}

fn refusals(policy: &Policy, source: &str, sinks: &str, extra: &str) -> Vec<String> {
    let text = format!("version: 1\nname: p\nsource:\n  {source}\nsinks:\n{sinks}{extra}");
    policy
        .check(&load(&text))
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}

const STDOUT: &str = "  - stdout: {}\n";

fn policy(dir: &Path) -> Policy {
    Policy::new(&dir.join("state"))
}

#[test]
fn files_outside_the_granted_roots_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy(dir.path());
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let inside = format!("file: {{ paths: [\"{}/in.csv\"] }}", state.display());
    assert!(refusals(&p, &inside, STDOUT, "").is_empty());
    for outside in [
        "file: { paths: [\"/etc/shadow\"] }".to_owned(),
        "file: { paths: [\"/proc/self/environ\"] }".to_owned(),
        format!("file: {{ paths: [\"{}/../secret\"] }}", state.display()),
    ] {
        let refused = refusals(&p, &outside, STDOUT, "");
        assert_eq!(refused.len(), 1, "{outside}: {refused:?}");
        assert!(refused[0].contains("--api-grant-files"), "{refused:?}");
        assert!(refused[0].contains("api.yaml:4:"), "{refused:?}");
    }
    // A symbolic link inside the root that points out of it is followed.
    std::os::unix::fs::symlink("/etc", state.join("etc")).unwrap();
    let link = format!("file: {{ paths: [\"{}/etc/passwd\"] }}", state.display());
    assert_eq!(refusals(&p, &link, STDOUT, "").len(), 1);
    let lake = "  - lake: { url: \"file:///tmp/elsewhere\" }\n";
    let checkpoint = "checkpoint: { url: \"file:///var/tmp/ck\" }\n";
    let refused = refusals(&p, "http: { path: /in }", lake, checkpoint);
    assert_eq!(refused.len(), 2, "{refused:?}");
}

#[test]
fn hosts_listeners_properties_are_granted_by_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = policy(dir.path());
    let kafka = "kafka: { brokers: \"evil.example:9092\", topic: t }";
    let refused = refusals(&p, kafka, STDOUT, "");
    assert!(
        refused[0].contains("--api-grant-host evil.example"),
        "{refused:?}"
    );
    assert!(refusals(&p, "kafka: { brokers: embedded, topic: t }", STDOUT, "").is_empty());
    assert!(
        refusals(
            &p,
            "kafka: { brokers: \"127.0.0.1:9092\", topic: t }",
            STDOUT,
            ""
        )
        .is_empty()
    );
    let props = "kafka: { brokers: embedded, topic: t, properties: { bootstrap.servers: \"x:1\", \
                 linger.ms: \"5\", enable.auto.commit: \"true\" } }";
    let refused = refusals(&p, props, STDOUT, "");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().any(|r| r.contains("`bootstrap.servers`")));
    let pg = "  - postgres: { url: \"postgres://u@db.internal/w\", table: t, key: [a] }\n";
    assert_eq!(refusals(&p, "http: { path: /in }", pg, "").len(), 1);
    let s3 = "  - lake: { url: \"s3://company-lake/x\" }\n";
    assert_eq!(refusals(&p, "http: { path: /in }", s3, "").len(), 1);
    let public = "http: { listen: \"0.0.0.0:8080\", path: /in }";
    assert!(refusals(&p, public, STDOUT, "")[0].contains("--api-grant-public-listeners"));
    p.hosts
        .extend(["db.internal".into(), "company-lake".into()]);
    p.public_listeners = true;
    assert!(refusals(&p, "http: { path: /in }", pg, "").is_empty());
    assert!(refusals(&p, "http: { path: /in }", s3, "").is_empty());
    assert!(refusals(&p, public, STDOUT, "").is_empty());
}
