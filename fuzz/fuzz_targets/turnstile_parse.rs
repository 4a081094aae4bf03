//! turnstile-parse's native parsing (`parse::parse_line`, `parse::parse_message`) and its
//! batch loop (`Transform::process`) on arbitrary messages, without wasm. Bytes `0xff` (never
//! in UTF-8) split the input into the rows of one batch; an empty row is a null value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_plugin_sdk::rows::{Field, FieldType, decode_row};
use sluice_plugin_sdk::{ColumnsBuilder, Transform};
use turnstile_parse::parse::{Format, parse_line, parse_message};
use turnstile_parse::{TurnstileParse, output_schema};

const SPECIFIC: [Format; 3] = [Format::Weekly, Format::Message, Format::Sample];

/// `auto` finds every record a specific format finds, the same; a header is one in all.
fn check_line(line: &str) {
    let auto = parse_line(line, Format::Auto);
    for format in SPECIFIC {
        match parse_line(line, format) {
            Ok(Some(record)) => assert_eq!(auto, Ok(Some(record)), "{format:?}"),
            Ok(None) => assert_eq!(auto, Ok(None)),
            Err(_) => {}
        }
    }
}

/// Results come in line order, numbered within the message.
fn check_message(message: &[u8]) -> usize {
    let lines = message.split(|&b| b == b'\n').count();
    let mut results = 0;
    for format in [
        Format::Auto,
        Format::Weekly,
        Format::Message,
        Format::Sample,
    ] {
        let mut last = 0;
        let mut count = 0;
        parse_message(message, format, |r| {
            count += 1;
            if let Err(e) = r {
                assert!(e.line > last && e.line <= lines, "{e}");
                last = e.line;
            }
        });
        if format == Format::Auto {
            results = count;
        }
    }
    results
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        text.split('\n').for_each(check_line);
    }
    let input = [Field::nullable("value", FieldType::Bytes)];
    let (mut plugin, schema) =
        TurnstileParse::init(r#"{"format":"auto"}"#, &input).expect("the config is valid");
    let mut batch = ColumnsBuilder::new(&input);
    let mut results = 0;
    for message in data.split(|&b| b == 0xff) {
        if message.is_empty() {
            batch.push_null();
            results += 1;
        } else {
            batch.push_bytes(message);
            results += check_message(message);
        }
        batch.end_row();
    }
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    let view = batch
        .view(&mut arena, &mut columns)
        .expect("a built batch reads");
    let mut out = plugin.output(&schema);
    plugin
        .process(&view, &mut out)
        .expect("process never fails a batch");
    out.check().expect("rows and origins are in step");
    let packed = out.rows.to_rows().expect("output columns read as rows");
    let rows = packed.as_batch();
    rows.validate().expect("output rows are well formed");
    assert_eq!(schema, output_schema());
    assert_eq!(out.origins.len(), rows.len());
    assert_eq!(rows.len() + out.failures.len(), results);
    for row in rows.rows() {
        decode_row(&schema, row).expect("an output row decodes");
    }
    let inputs = batch.len() as u32;
    assert!(
        out.origins
            .iter()
            .chain(out.failures.iter().map(|(i, _)| i))
            .all(|&i| i < inputs)
    );
});
