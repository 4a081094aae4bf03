//! Calendar arithmetic and the timestamp text formats of sluice: civil date ↔ day number
//! (Howard Hinnant's algorithms), `YYYY-MM-DD HH:MM:SS` UTC formatting (used by the host's
//! CSV output), and strict, allocation-free parsing of the date/time formats of the turnstile
//! feeds. Timestamps are milliseconds since 1970-01-01T00:00:00Z.

#[cfg(test)]
mod tests;

use std::fmt::Write as _;

/// Milliseconds in a day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of the proleptic Gregorian date `y-m-d` (no range check).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let (m, d) = (i64::from(m), i64::from(d));
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats `ms` as `YYYY-MM-DD HH:MM:SS` (UTC, sub-second part dropped).
pub fn format_timestamp(ms: i64) -> String {
    let mut s = String::with_capacity(19);
    format_timestamp_into(ms, &mut s);
    s
}

/// Appends `ms` formatted as by [`format_timestamp`] to `out`.
pub fn format_timestamp_into(ms: i64, out: &mut String) {
    let (y, mo, d) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let secs = ms.rem_euclid(MS_PER_DAY) / 1000;
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    // Writing to a String cannot fail.
    let _ = write!(out, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
}

/// Whether `y` is a leap year.
pub fn is_leap_year(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Number of days in month `m` (1–12) of year `y`.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap_year(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses a date and time: `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]`,
/// `MM/DD/YYYY HH:MM:SS` or `MM-DD-YY HH:MM:SS` (a fraction and a zone are accepted after
/// any of them). Returns ms since the epoch, or `None` for anything else or out-of-range parts.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    let cut = s.find([' ', 'T'])?;
    let (date, time) = (&s[..cut], s[cut + 1..].trim_start());
    if s.as_bytes()[cut] == b'T' && date.len() != 10 {
        return None;
    }
    parse_date_time(date, time)
}

/// Parses a separate date (`MM/DD/YYYY`, `MM-DD-YY` or `YYYY-MM-DD`) and time
/// (`HH:MM:SS[.fff][Z|±HH:MM]`) into ms since the epoch.
pub fn parse_date_time(date: &str, time: &str) -> Option<i64> {
    let days = parse_date(date.trim())?;
    let ms = parse_time(time.trim())?;
    // |days| < 4e6 (four-digit years) and |ms| < 2 days: no overflow possible.
    Some(days * MS_PER_DAY + ms)
}

/// Parses a date alone into days since the epoch (formats as in [`parse_date_time`]).
pub fn parse_date(date: &str) -> Option<i64> {
    let b = date.as_bytes();
    let (y, m, d) = match (b.len(), b.get(2), b.get(4)) {
        (10, Some(b'/'), _) if b[5] == b'/' => (num(&b[6..10])?, num(&b[0..2])?, num(&b[3..5])?),
        (8, Some(b'-'), _) if b[5] == b'-' => (
            two_digit_year(num(&b[6..8])?),
            num(&b[0..2])?,
            num(&b[3..5])?,
        ),
        (10, _, Some(b'-')) if b[7] == b'-' => (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?),
        _ => return None,
    };
    let y = i64::from(y);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Parses `HH:MM:SS[.fff][Z|±HH:MM]` into ms after midnight UTC (may be negative or past a
/// day once a zone offset is applied).
pub fn parse_time(time: &str) -> Option<i64> {
    let b = time.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, mi, s) = (num(&b[0..2])?, num(&b[3..5])?, num(&b[6..8])?);
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let (frac_ms, rest) = parse_fraction(&b[8..])?;
    let offset = parse_zone(rest)?;
    Some(i64::from(h * 3600 + mi * 60 + s) * 1000 + frac_ms - offset)
}

/// Splits an optional `.digits` fraction off `b`: (its value in ms, the rest).
fn parse_fraction(b: &[u8]) -> Option<(i64, &[u8])> {
    let Some(rest) = b.strip_prefix(b".") else {
        return Some((0, b));
    };
    let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let mut ms = 0i64;
    for i in 0..3 {
        ms = ms * 10
            + rest
                .get(i)
                .filter(|_| i < n)
                .map_or(0, |c| i64::from(c - b'0'));
    }
    Some((ms, &rest[n..]))
}

/// The offset in ms of an optional zone suffix (`Z`, `+HH:MM`, `-HHMM`, `+HH`).
fn parse_zone(b: &[u8]) -> Option<i64> {
    let sign = match b.first() {
        None => return Some(0),
        Some(b'Z' | b'z') if b.len() == 1 => return Some(0),
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    let (h, m) = match &b[1..] {
        [h1, h2] => (num(&[*h1, *h2])?, 0),
        [h1, h2, m1, m2] | [h1, h2, b':', m1, m2] => (num(&[*h1, *h2])?, num(&[*m1, *m2])?),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * i64::from(h * 60 + m) * 60_000)
}

/// A two-digit year as POSIX `%y` reads it: 69–99 → 1969–1999, 00–68 → 2000–2068.
fn two_digit_year(yy: u32) -> u32 {
    if yy >= 69 { 1900 + yy } else { 2000 + yy }
}

/// The value of a run of ASCII digits (`None` if any byte is not a digit or it is empty).
fn num(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}
