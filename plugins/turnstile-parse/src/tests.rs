//! Unit tests of the plugin surface: config, schemas, batches, origins and failures.

use super::*;
use sluice_plugin_sdk::Value;
use sluice_plugin_sdk::columns::Column;
use sluice_plugin_sdk::rows::decode_row;

fn raw_input() -> Vec<Field> {
    vec![Field::new("value", FieldType::Bytes)]
}

fn batch_of(messages: &[&str]) -> ColumnsBuilder {
    let mut b = ColumnsBuilder::new(&raw_input());
    for m in messages {
        b.push_bytes(m.as_bytes());
        b.end_row();
    }
    b
}

/// Runs `p` over the rows of `input`.
fn process(p: &mut TurnstileParse, input: &ColumnsBuilder) -> Output {
    let (mut arena, mut columns) = (Vec::<u8>::new(), Vec::<Column>::new());
    let batch = input.view(&mut arena, &mut columns).unwrap();
    let mut out = p.output(&output_schema());
    p.process(&batch, &mut out).unwrap();
    out
}

#[test]
fn init_accepts_formats_and_returns_the_schema() {
    for config in ["", "{}", r#"{"format":"auto"}"#, r#"{"format":"sample"}"#] {
        let (_, schema) = TurnstileParse::init(config, &raw_input()).unwrap();
        assert_eq!(schema, output_schema());
    }
    let schema = output_schema();
    let names: Vec<&str> = schema.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ca",
            "unit",
            "scp",
            "station",
            "linename",
            "division",
            "desc",
            "timestamp",
            "entries",
            "exits"
        ]
    );
    let sample = TurnstileParse::metadata().sample_config;
    assert!(TurnstileParse::init(&sample, &raw_input()).is_ok());
}

#[test]
fn init_rejects_bad_configs_and_inputs() {
    let e = TurnstileParse::init(r#"{"format":"csv"}"#, &raw_input()).unwrap_err();
    assert!(e.contains("`format` is \"csv\""), "{e}");
    let e = TurnstileParse::init(r#"{"fromat":"auto"}"#, &raw_input()).unwrap_err();
    assert!(e.contains("unknown config key(s) `fromat`"), "{e}");
    let e = TurnstileParse::init("{", &raw_input()).unwrap_err();
    assert!(e.contains("not valid JSON"), "{e}");
    let e = TurnstileParse::init("", &[Field::new("n", FieldType::Int64)]).unwrap_err();
    assert_eq!(
        e,
        "input must be one bytes or str field (the raw record), got [n: int64]"
    );
    assert!(TurnstileParse::init("", &[Field::new("s", FieldType::Str)]).is_ok());
}

#[test]
fn metadata_names_the_crate() {
    let m = TurnstileParse::metadata();
    assert_eq!(
        (m.name.as_str(), m.version.as_str()),
        ("turnstile-parse", env!("CARGO_PKG_VERSION"))
    );
    assert!(sluice_plugin_sdk::json::parse(&m.config_schema).is_ok());
}

#[test]
fn process_emits_rows_origins_and_failures() {
    let (mut p, schema) = TurnstileParse::init("", &raw_input()).unwrap();
    let input = batch_of(&[
        ",CA,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS",
        "0,A002,R051,02-00-00,59 ST,NQR456W,BMT,12/30/2023,03:00:00,REGULAR,102019,73801",
        "garbage",
        "timestamp,station,turnstile_id,device_id,entry,exit,entry_datetime\nx,1 AV,T1,D1,5,6,'2024-01-06 03:00:00'\nx,1 AV,T1,D1,5,oops,'2024-01-06 03:00:00'",
    ]);
    let out = process(&mut p, &input);
    assert_eq!(out.origins, vec![1, 3]);
    assert_eq!(out.failures.len(), 2);
    assert_eq!(out.failures[0].0, 2);
    assert_eq!(
        out.failures[1],
        (
            3,
            "line 3: field exit: \"oops\" is not an integer".to_string()
        )
    );
    let rows = out.rows.to_rows().unwrap();
    let rows = rows.as_batch();
    let first = decode_row(&schema, rows.row(0)).unwrap();
    assert_eq!(first[3], Value::Str("59 ST"));
    assert_eq!(first[7], Value::Timestamp(1_703_905_200_000));
    assert_eq!(first[8], Value::Int64(102019));
    let second = decode_row(&schema, rows.row(1)).unwrap();
    assert_eq!(
        (second[0], second[2], second[4]),
        (Value::Str("T1"), Value::Str("D1"), Value::Str(""))
    );
}

#[test]
fn nullable_and_malformed_input_rows_fail_alone() {
    let input = [Field::nullable("value", FieldType::Bytes)];
    let (mut p, _) = TurnstileParse::init("", &input).unwrap();
    let mut b = ColumnsBuilder::new(&input);
    b.push_null();
    b.end_row();
    b.push_bytes(b"A002,R051,02-00-00,59 ST,NQR456W,BMT,12/30/2023,03:00:00,REGULAR,1,2");
    b.end_row();
    for _ in 0..2 {
        b.push_bytes(b"A002,R051,02-00-00,59 ST,NQR456W,BMT,12/30/2023,07:00:00,REGULAR,1,2");
        b.end_row();
    }
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    b.finish(&mut arena, &mut columns);
    // Offset 3 past the data: rows 2 and 3 lie nowhere in the batch.
    let at = columns[0].values as usize + 3 * 4;
    arena[at..at + 4].copy_from_slice(&10_000u32.to_le_bytes());
    let batch = Columns::new(&input, 4, &arena, &columns).unwrap();
    let mut out = p.output(&output_schema());
    p.process(&batch, &mut out).unwrap();
    assert_eq!(out.origins, vec![1]);
    let failed: Vec<u32> = out.failures.iter().map(|f| f.0).collect();
    assert_eq!(failed, vec![0, 2, 3]);
    assert_eq!(out.failures[0].1, "the record value is null");
    assert_eq!(out.failures[1].1, "the record value lies outside the batch");
}
