//! Unit tests of the turnstile formats.

use super::fields::{comma_mask, split_fields};
use super::*;

/// 2024-01-06 03:00:00 UTC.
const T: i64 = 1_704_510_000_000;

fn all(message: &str, format: Format) -> Vec<Result<Record<'_>, LineError>> {
    let mut out = Vec::new();
    parse_message(message.as_bytes(), format, |r| out.push(r));
    out
}

fn one(line: &str) -> Record<'_> {
    match parse_line(line, Format::Auto) {
        Ok(Some(r)) => r,
        other => panic!("{line:?} gave {other:?}"),
    }
}

fn err(line: &str, format: Format) -> String {
    parse_line(line, format).unwrap_err()
}

const WEEKLY: Record<'static> = Record {
    ca: "A002",
    unit: "R051",
    scp: "02-00-00",
    station: "59 ST",
    linename: "NQR456W",
    division: "BMT",
    desc: "REGULAR",
    timestamp: T,
    entries: 102019,
    exits: 73801,
};

#[test]
fn weekly_rows_with_and_without_index() {
    assert_eq!(
        one("0,A002,R051,02-00-00,59 ST,NQR456W,BMT,01/06/2024,03:00:00,REGULAR,102019,73801"),
        WEEKLY
    );
    assert_eq!(
        one("A002,R051,02-00-00,59 ST,NQR456W,BMT,01/06/2024,03:00:00,REGULAR,102019,73801"),
        WEEKLY
    );
    let r = one(
        "A002,R051,02-00-00,B'WAY-LAFAYETTE,BDFQ6,IND,01/06/2024,03:00:00,RECOVR AUD,0000102019,73801",
    );
    assert_eq!(
        (r.station, r.desc, r.entries),
        ("B'WAY-LAFAYETTE", "RECOVR AUD", 102019)
    );
}

#[test]
fn stream_message_uses_the_timestamp_field() {
    let base = "A002,R051,02-00-00,59 ST,NQR456W,BMT,01-05-24,22:00:00,REGULAR,102019,73801,17,";
    for ts in [
        "2024-01-06 03:00:00",
        "2024-01-06T03:00:00Z",
        "01/06/2024 03:00:00",
        "1704510000",
        "1704510000000",
    ] {
        assert_eq!(one(&format!("{base}{ts}")), WEEKLY, "{ts}");
    }
    assert_eq!(one(&format!("{base}1704510000.25")).timestamp, T + 250);
    let e = err(&format!("{base}yesterday"), Format::Auto);
    assert_eq!(
        e,
        "field TIMESTAMP: \"yesterday\" is not a date and time or epoch time"
    );
}

#[test]
fn sample_rows_map_their_fields() {
    let r = one("2024-01-06 05:00:00,59 ST,A002,02-00-00,7,3,'2024-01-06 03:00:00'");
    let expected = Record {
        ca: "A002",
        scp: "02-00-00",
        station: "59 ST",
        timestamp: T,
        entries: 7,
        exits: 3,
        ..EMPTY
    };
    assert_eq!(r, expected);
    let e = err("x,59 ST,A002,02-00-00,7,3,'tomorrow'", Format::Sample);
    assert_eq!(
        e,
        "field entry_datetime: \"tomorrow\" is not a valid date and time"
    );
}

const EMPTY: Record<'static> = Record {
    ca: "",
    unit: "",
    scp: "",
    station: "",
    linename: "",
    division: "",
    desc: "",
    timestamp: 0,
    entries: 0,
    exits: 0,
};

#[test]
fn header_lines_are_skipped() {
    for header in [
        ",CA,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS",
        "C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS",
        "CA,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS,ID,TIMESTAMP",
        "\"CA\",\"UNIT\",SCP",
        "timestamp,station,turnstile_id,device_id,entry,exit,entry_datetime",
    ] {
        assert_eq!(parse_line(header, Format::Auto), Ok(None), "{header}");
    }
}

#[test]
fn quotes_spaces_and_crlf_are_removed() {
    let msg = " \"A002\" , 'R051',02-00-00 ,\"59 ST\",NQR456W,BMT,\"01/06/2024\",03:00:00,REGULAR  ,102019 ,73801   \r\n";
    let got = all(msg, Format::Weekly);
    assert_eq!(got, vec![Ok(WEEKLY)]);
}

#[test]
fn multi_line_message_with_header_and_row() {
    let msg = "timestamp,station,turnstile_id,device_id,entry,exit,entry_datetime\n\
               2024-01-06 05:00:00,59 ST,A002,02-00-00,7,3,'2024-01-06 03:00:00'\n\n";
    let got = all(msg, Format::Auto);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].as_ref().unwrap().entries, 7);
}

#[test]
fn errors_name_the_line_and_field() {
    let msg = ",CA,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS\n\
               1,A002,R051,02-00-00,59 ST,NQR456W,BMT,01/06/2024,03:00:00,REGULAR,12a,73801\n\
               2,A002,R051,02-00-00,59 ST,NQR456W,BMT,02/30/2024,03:00:00,REGULAR,1,2\n\
               3,A002,R051,02-00-00,59 ST,NQR456W,BMT,01/06/2024,03:00:00,REGULAR,1,\n";
    let got: Vec<String> = all(msg, Format::Auto)
        .into_iter()
        .map(|r| r.unwrap_err().to_string())
        .collect();
    assert_eq!(
        got,
        [
            "line 2: field ENTRIES: \"12a\" is not an integer",
            "line 3: field DATE/TIME: \"02/30/2024 03:00:00\" is not a valid date and time",
            "line 4: field EXITS: \"\" is not an integer",
        ]
    );
}

#[test]
fn garbage_and_wrong_field_counts_are_errors() {
    assert_eq!(
        err("hello world", Format::Auto),
        "expected 7 (sample), 11 or 12 (weekly) or 13 (message) fields, found 1"
    );
    assert!(err(&",".repeat(20), Format::Auto).ends_with("found 21"));
    let weekly = "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/06/2024,03:00:00,REGULAR,102019,73801";
    assert!(err(weekly, Format::Message).starts_with("expected 13 fields"));
    assert!(err(weekly, Format::Sample).starts_with("expected 7 fields"));
    let got = all("\u{0}\u{1}\n", Format::Auto);
    assert!(got[0].as_ref().unwrap_err().message.starts_with("expected"));
    let mut bad_utf8 = Vec::new();
    parse_message(b"ok\xff\xfe,x", Format::Auto, |r| bad_utf8.push(r));
    assert_eq!(
        bad_utf8[0].as_ref().unwrap_err().to_string(),
        "line 1: not valid UTF-8 (byte 2)"
    );
}

#[test]
fn integers_and_epochs() {
    assert_eq!(parse_i64("-12"), Some(-12));
    assert_eq!(parse_i64("+7"), Some(7));
    assert_eq!(parse_i64("9223372036854775807"), Some(i64::MAX));
    assert_eq!(parse_i64("9223372036854775808"), None);
    assert_eq!(parse_i64("-9223372036854775808"), Some(i64::MIN));
    for bad in ["", "-", "1.5", " 1", "1e3"] {
        assert_eq!(parse_i64(bad), None, "{bad:?}");
    }
    assert_eq!(event_time("0"), Some(0));
    assert_eq!(event_time("-1.5"), Some(-1500));
    assert_eq!(event_time("1."), None);
    assert_eq!(event_time("1.x"), None);
    assert_eq!(event_time("99999999999999999999"), None);
}

#[test]
fn formats_by_name() {
    assert_eq!(Format::from_name("weekly"), Some(Format::Weekly));
    assert_eq!(Format::from_name("message"), Some(Format::Message));
    assert_eq!(Format::from_name("sample"), Some(Format::Sample));
    assert_eq!(Format::from_name("auto"), Some(Format::Auto));
    assert_eq!(Format::from_name("csv"), None);
}

#[test]
fn splits_fields_at_every_comma() {
    for line in [
        "",
        ",",
        "a",
        "a,b",
        ",,,,,,,,,,,,,,,,",
        "abcdefgh,ijklmnop,q",
        "é,ü,,ç,aaaaaaaaaaaaaaa,b",
        "1234567,9",
    ] {
        let mut out = [""; MAX_FIELDS];
        let n = split_fields(line, &mut out);
        let expected: Vec<&str> = line.split(',').collect();
        assert_eq!(n, expected.len(), "{line:?}");
        assert_eq!(
            &out[..n.min(MAX_FIELDS)],
            &expected[..n.min(MAX_FIELDS)],
            "{line:?}"
        );
    }
    for w in 0..=255u8 {
        let mask = comma_mask(u64::from_le_bytes([w, b',', w, 0, 0x2d, 0xac, b',', 0x2b]));
        let commas: Vec<u32> = (0..8).filter(|i| mask >> (i * 8 + 7) & 1 == 1).collect();
        let expected: Vec<u32> = if w == b',' {
            vec![0, 1, 2, 6]
        } else {
            vec![1, 6]
        };
        assert_eq!(commas, expected, "byte {w}");
    }
}

/// The smallest i64 as an epoch time (found reading the code behind the fuzz target): no
/// overflow panic, read as milliseconds like any value past the seconds threshold.
#[test]
fn the_smallest_epoch_number_does_not_overflow() {
    assert_eq!(
        super::fields::event_time("-9223372036854775808"),
        Some(i64::MIN)
    );
    assert_eq!(super::fields::event_time("-9223372036854775808.5"), None);
}

#[test]
fn newlines_are_found_at_any_position() {
    for len in 0..40 {
        let mut line = vec![b'x'; len];
        assert!(!super::fields::has_newline(&line), "{len}");
        for at in 0..len {
            line[at] = b'\n';
            assert!(super::fields::has_newline(&line), "{len} at {at}");
            line[at] = b'\n' ^ 0x80;
            assert!(
                !super::fields::has_newline(&line),
                "{len} near miss at {at}"
            );
            line[at] = b'x';
        }
    }
}
