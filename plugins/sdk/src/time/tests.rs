//! Unit tests of the calendar and timestamp formats.

use super::*;

const JAN_6_2024_03H: i64 = 1_704_510_000_000;

#[test]
fn civil_round_trips_over_a_wide_range() {
    for z in (-800_000..800_000).step_by(37) {
        let (y, m, d) = civil_from_days(z);
        assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
        assert_eq!(days_from_civil(y, m, d), z);
    }
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    assert_eq!(civil_from_days(19_782), (2024, 2, 29));
}

#[test]
fn formats_timestamps() {
    assert_eq!(format_timestamp(0), "1970-01-01 00:00:00");
    assert_eq!(format_timestamp(JAN_6_2024_03H), "2024-01-06 03:00:00");
    assert_eq!(
        format_timestamp(JAN_6_2024_03H + 999),
        "2024-01-06 03:00:00"
    );
    assert_eq!(format_timestamp(-1), "1969-12-31 23:59:59");
    let mut s = String::from("x=");
    format_timestamp_into(86_400_000 + 3_723_000, &mut s);
    assert_eq!(s, "x=1970-01-02 01:02:03");
}

#[test]
fn parses_every_accepted_format() {
    let t = Some(JAN_6_2024_03H);
    assert_eq!(parse_datetime("2024-01-06 03:00:00"), t);
    assert_eq!(parse_datetime("2024-01-06T03:00:00"), t);
    assert_eq!(parse_datetime("2024-01-06T03:00:00Z"), t);
    assert_eq!(
        parse_datetime("2024-01-06T03:00:00.250Z"),
        Some(JAN_6_2024_03H + 250)
    );
    assert_eq!(
        parse_datetime("2024-01-06 03:00:00.5"),
        Some(JAN_6_2024_03H + 500)
    );
    assert_eq!(
        parse_datetime("2024-01-06 03:00:00.123456"),
        Some(JAN_6_2024_03H + 123)
    );
    assert_eq!(parse_datetime("2024-01-06T05:30:00+02:30"), t);
    assert_eq!(parse_datetime("2024-01-06T01:00:00-0200"), t);
    assert_eq!(parse_datetime("01/06/2024 03:00:00"), t);
    assert_eq!(parse_datetime("01-06-24 03:00:00"), t);
    assert_eq!(parse_datetime("  01-06-24 03:00:00 "), t);
    assert_eq!(
        parse_datetime("12-31-99 00:00:00"),
        parse_datetime("1999-12-31 00:00:00")
    );
}

#[test]
fn parses_separate_date_and_time() {
    let t = Some(JAN_6_2024_03H);
    assert_eq!(parse_date_time("01/06/2024", "03:00:00"), t);
    assert_eq!(parse_date_time("01-06-24", "03:00:00"), t);
    assert_eq!(parse_date_time("2024-01-06", " 03:00:00"), t);
    assert_eq!(
        parse_date_time("02/29/2024", "23:59:59"),
        Some(1_709_251_199_000)
    );
}

#[test]
fn rejects_out_of_range_and_malformed_input() {
    for bad in [
        "",
        "2024-01-06",
        "2024-13-06 03:00:00",
        "2024-00-06 03:00:00",
        "2023-02-29 03:00:00",
        "2024-04-31 03:00:00",
        "2024-01-06 24:00:00",
        "2024-01-06 03:60:00",
        "2024-01-06 03:00:60",
        "2024-01-06 3:00:00",
        "2024-01-06 03:00:00.",
        "2024-01-06 03:00:00X",
        "2024-01-06 03:00:00+25:00",
        "01/06/24 03:00:00",
        "1/6/2024 03:00:00",
        "01-06-2024T03:00:00",
        "2024/01/06 03:00:00",
        "2024-01-0a 03:00:00",
        "-024-01-06 03:00:00",
        "01/06/2024 03:0a:00",
    ] {
        assert_eq!(parse_datetime(bad), None, "{bad:?} should not parse");
    }
    assert_eq!(parse_date_time("01/06/2024", ""), None);
    assert_eq!(parse_date("2024-01-06"), Some(19_728));
    assert_eq!(parse_time("00:00:01"), Some(1000));
}

#[test]
fn leap_years() {
    assert!(is_leap_year(2000) && is_leap_year(2024));
    assert!(!is_leap_year(1900) && !is_leap_year(2023));
    assert_eq!(days_in_month(2023, 2), 28);
    assert_eq!(days_in_month(2024, 2), 29);
    assert_eq!(days_in_month(2024, 11), 30);
}
