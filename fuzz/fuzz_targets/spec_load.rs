//! The spec loader (`spec::load_str`) on arbitrary text: `${VAR}` interpolation, YAML with
//! aliases, anchors, deep nesting and large documents, the model, the checks and the
//! locating of every error. It must answer `Ok` or errors with a place, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_host::spec::{load_str, locate};

/// Paths that the loader's checks and later stages locate.
const PATHS: &[&[&str]] = &[
    &["name"],
    &["sinks", "0", "lake", "url"],
    &["steps", "1", "window", "slide"],
    &["errors", "max_dead_letters", "per_records"],
    &["source", "kafka", "topic"],
];

fn lookup(name: &str) -> Option<String> {
    match name {
        "TOPIC" => Some("turnstile-stream".to_owned()),
        "EMPTY" => Some(String::new()),
        "NESTED" => Some("${TOPIC}".to_owned()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count().max(1);
    match load_str("fuzz.yaml", text, &lookup) {
        Ok(loaded) => {
            for path in PATHS {
                let error = loaded.error(path, "located");
                assert!(error.line >= 1 && error.line <= loaded.text.lines().count().max(1));
            }
        }
        Err(errors) => {
            assert!(!errors.0.is_empty());
            let _ = errors.to_string();
        }
    }
    for path in PATHS {
        let (line, column) = locate(text, path);
        assert!(
            line >= 1 && line <= lines && column >= 1,
            "{path:?} at {line}:{column}"
        );
    }
});
