//! The webhook's body parser (`sources::http::parse_body`) on arbitrary bytes, read as text and
//! as JSON. Text records are the non-blank lines without their line ends (`\n` or `\r\n`; a
//! further `\r` belongs to the record); a JSON object element's record is its own text, which
//! must parse back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_host::sources::http::{BodyKind, parse_body};

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = parse_body(BodyKind::Text, data) {
        for record in &records {
            assert!(!record.trim().is_empty() && !record.contains('\n'));
        }
    }
    let Ok(records) = parse_body(BodyKind::Json, data) else {
        return;
    };
    let value: serde_json::Value = serde_json::from_slice(data).expect("accepted JSON parses");
    let elements = value.as_array().expect("accepted JSON is an array");
    assert_eq!(records.len(), elements.len());
    for (record, element) in records.iter().zip(elements) {
        match element {
            serde_json::Value::String(s) => assert_eq!(record, s),
            object => {
                let reparsed: serde_json::Value =
                    serde_json::from_str(record).expect("an object record is JSON");
                assert_eq!(&reparsed, object, "record {record:?}");
            }
        }
    }
});
