//! Per-line parsing for `sluice produce`: CSV field splitting on bytes, header detection,
//! the Kafka key (named fields, `station` by default) and the event time of each supported line format.
//!
//! Formats (DESIGN §6): the MTA weekly row with or without its leading index column
//! (`[index,]CA,UNIT,SCP,STATION,LINENAME,DIVISION,MM/DD/YYYY,HH:MM:SS,DESC,ENTRIES,EXITS`),
//! the 13-field stream message (`...,ID,TIMESTAMP` with `TIMESTAMP` = `YYYY-MM-DD HH:MM:SS`)
//! and the 7-field sample (`timestamp,station,turnstile_id,device_id,entry,exit,entry_datetime`).
//! Nothing here allocates: fields are byte ranges of the line.

/// Fields kept per line; later fields are counted but not stored.
const MAX_FIELDS: usize = 16;

/// The comma-separated fields of one line, as byte ranges (double quotes respected).
pub(crate) struct Fields<'a> {
    line: &'a [u8],
    spans: [(usize, usize); MAX_FIELDS],
    count: usize,
}

impl<'a> Fields<'a> {
    /// Splits `line` on commas that are not inside double quotes.
    pub(crate) fn split(line: &'a [u8]) -> Self {
        let mut fields = Fields {
            line,
            spans: [(0, 0); MAX_FIELDS],
            count: 0,
        };
        let (mut start, mut quoted) = (0, false);
        for (i, &b) in line.iter().enumerate() {
            match b {
                b'"' => quoted = !quoted,
                b',' if !quoted => {
                    fields.push(start, i);
                    start = i + 1;
                }
                _ => {}
            }
        }
        fields.push(start, line.len());
        fields
    }

    fn push(&mut self, start: usize, end: usize) {
        if self.count < MAX_FIELDS {
            self.spans[self.count] = (start, end);
        }
        self.count += 1;
    }

    /// Number of fields on the line.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Field `i`, trimmed of ASCII whitespace and one pair of surrounding quotes (`"` or `'`).
    pub(crate) fn get(&self, i: usize) -> &'a [u8] {
        if i >= self.count.min(MAX_FIELDS) {
            return &[];
        }
        let (start, end) = self.spans[i];
        unquote(self.line[start..end].trim_ascii())
    }
}

fn unquote(field: &[u8]) -> &[u8] {
    match field {
        [b'"', inner @ .., b'"'] | [b'\'', inner @ .., b'\''] => inner.trim_ascii(),
        _ => field,
    }
}

/// Whether `line` is the header of one of the supported formats (`,CA,UNIT,...`,
/// `C/A,UNIT,...`, `A/C,UNIT,...` or `timestamp,station,...`), case-insensitively.
pub(crate) fn is_header(fields: &Fields<'_>) -> bool {
    let skip = usize::from(fields.len() > 1 && fields.get(0).is_empty());
    let (first, second) = (fields.get(skip), fields.get(skip + 1));
    let is = |field: &[u8], name: &str| field.eq_ignore_ascii_case(name.as_bytes());
    ((is(first, "CA") || is(first, "C/A") || is(first, "A/C")) && is(second, "UNIT"))
        || (is(first, "timestamp") && is(second, "station"))
}

/// Fields of the weekly layout by name, as the turnstile parser names them, at their index
/// after `CA` (the 13-field message adds `id` and `timestamp`).
const WEEKLY_FIELDS: [&str; 13] = [
    "ca",
    "unit",
    "scp",
    "station",
    "linename",
    "division",
    "date",
    "time",
    "desc",
    "entries",
    "exits",
    "id",
    "timestamp",
];
/// Fields of the 7-field sample by name (`ca`/`scp`: turnstile and device, as parsed).
const SAMPLE_FIELDS: [(&str, usize); 8] = [
    ("timestamp", 0),
    ("station", 1),
    ("ca", 2),
    ("turnstile_id", 2),
    ("scp", 3),
    ("device_id", 3),
    ("entries", 4),
    ("exits", 5),
];

/// What each message is keyed by: named fields of the line (`--key station`), joined by
/// `/`. Records with equal values of these fields land in one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFields(Vec<String>);

impl KeyFields {
    /// `station` (the default): a station's turnstiles share a partition, so a window per
    /// station can run as parallel tasks, and per-turnstile order still holds.
    pub fn station() -> Self {
        Self(vec!["station".into()])
    }

    /// Parses `station` or `ca,unit,scp`; an unknown name is an error listing the known ones.
    pub fn parse(text: &str) -> Result<Self, String> {
        let names: Vec<String> = text
            .split(',')
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() {
            return Err("--key needs at least one field name, e.g. `--key station`".into());
        }
        let known =
            |n: &str| WEEKLY_FIELDS.contains(&n) || SAMPLE_FIELDS.iter().any(|(s, _)| *s == n);
        if let Some(unknown) = names.iter().find(|n| !known(n)) {
            return Err(format!(
                "--key: `{unknown}` is not a field of the turnstile formats; use some of {}",
                WEEKLY_FIELDS.join(", ")
            ));
        }
        Ok(Self(names))
    }

    /// The field names.
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// The index of field `name` in a line of `count` fields.
    fn index(name: &str, count: usize) -> Option<usize> {
        match count {
            7 => SAMPLE_FIELDS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|&(_, i)| i),
            11..=13 => {
                let ca = usize::from(count == 12);
                let i = WEEKLY_FIELDS.iter().position(|n| *n == name)?;
                (ca + i < count).then_some(ca + i)
            }
            _ => None,
        }
    }
}

/// Writes the Kafka key of the line into `key`: the values of the `by` fields joined by `/`;
/// the whole line when it is in none of the known layouts.
pub(crate) fn key_into(fields: &Fields<'_>, by: &KeyFields, key: &mut Vec<u8>) {
    key.clear();
    if !matches!(fields.len(), 7 | 11..=13) {
        key.extend_from_slice(fields.line);
        return;
    }
    for (n, name) in by.0.iter().enumerate() {
        if n > 0 {
            key.push(b'/');
        }
        if let Some(i) = KeyFields::index(name, fields.len()) {
            key.extend_from_slice(fields.get(i));
        }
    }
}

/// Event time of the line in milliseconds since the Unix epoch (times read as UTC), or
/// `None` when the line has no readable event time.
pub(crate) fn event_time_ms(fields: &Fields<'_>) -> Option<i64> {
    match fields.len() {
        12 => date_time_ms(fields.get(7), fields.get(8)),
        11 => date_time_ms(fields.get(6), fields.get(7)),
        13 => timestamp_ms(fields.get(12)),
        7 => timestamp_ms(fields.get(6)),
        _ => None,
    }
}

/// `MM/DD/YYYY` (or `MM-DD-YY`) plus `HH:MM:SS`.
fn date_time_ms(date: &[u8], time: &[u8]) -> Option<i64> {
    let mut parts = date.split(|&b| b == b'/' || b == b'-');
    let (month, day, year) = (
        number(parts.next()?)?,
        number(parts.next()?)?,
        parts.next()?,
    );
    if parts.next().is_some() {
        return None;
    }
    let year = match year.len() {
        2 => 2000 + number(year)?,
        4 => number(year)?,
        _ => return None,
    };
    civil_ms(year, month, day, clock_ms(time)?)
}

/// `YYYY-MM-DD HH:MM:SS[.fff]` (a `T` separator and a trailing `Z` are accepted too).
fn timestamp_ms(ts: &[u8]) -> Option<i64> {
    let ts = ts.strip_suffix(b"Z").unwrap_or(ts);
    let split = ts.iter().position(|&b| b == b' ' || b == b'T')?;
    let (date, time) = (&ts[..split], ts[split + 1..].trim_ascii_start());
    let mut parts = date.split(|&b| b == b'-');
    let (year, month, day) = (
        number(parts.next()?)?,
        number(parts.next()?)?,
        number(parts.next()?)?,
    );
    if parts.next().is_some() {
        return None;
    }
    civil_ms(year, month, day, clock_ms(time)?)
}

/// `HH:MM[:SS[.fff]]` as milliseconds after midnight.
fn clock_ms(time: &[u8]) -> Option<i64> {
    let (clock, frac) = match time.iter().position(|&b| b == b'.') {
        Some(dot) => (&time[..dot], &time[dot + 1..]),
        None => (time, &b""[..]),
    };
    let mut parts = clock.split(|&b| b == b':');
    let (h, m) = (number(parts.next()?)?, number(parts.next()?)?);
    let s = parts.next().map_or(Some(0), number)?;
    if parts.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let millis = match frac.len() {
        0 => 0,
        n => number(&frac[..n.min(3)])? * 10_i64.pow(3 - n.min(3) as u32),
    };
    Some(((h * 60 + m) * 60 + s) * 1000 + millis)
}

/// Milliseconds since the epoch of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_ms(year: i64, month: i64, day: i64, time_ms: i64) -> Option<i64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400_000 + time_ms)
}

/// A non-empty run of ASCII digits (at most 9) as a number.
fn number(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, &d| n * 10 + i64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEKLY: &str =
        "0,A002,R051,02-00-00,59 ST,NQR456W,BMT,12/30/2023,03:00:00,REGULAR,102019,73801";
    const STREAM: &str = "A001,R002,02-00-00,Test-Station,456NQR,BMT,01-06-24,10:11:12,REGULAR,\
                          600,700,5f0c-id,2024-01-06 10:11:12";

    fn key(line: &str) -> String {
        key_by(line, "ca,unit,scp")
    }

    fn key_by(line: &str, fields: &str) -> String {
        let mut key = Vec::new();
        let by = KeyFields::parse(fields).unwrap();
        key_into(&Fields::split(line.as_bytes()), &by, &mut key);
        String::from_utf8(key).unwrap()
    }

    #[test]
    fn keys_by_station_by_default_in_every_layout() {
        assert_eq!(KeyFields::station().names(), ["station"]);
        assert_eq!(key_by(WEEKLY, "station"), "59 ST");
        assert_eq!(key_by(&WEEKLY[2..], "station"), "59 ST");
        assert_eq!(key_by(STREAM, "station"), key_by(STREAM, " Station "));
        assert_eq!(key_by(WEEKLY, "station,unit"), "59 ST/R051");
        let sample = "2024-01-01 00:00:00,59 ST,T1,D1,5,6,2024-01-01 00:00:00";
        assert_eq!(key_by(sample, "station"), "59 ST");
        let error = KeyFields::parse("station,platform").unwrap_err();
        assert!(
            error.contains("`platform`") && error.contains("station"),
            "{error}"
        );
        assert!(KeyFields::parse(" , ").is_err());
    }

    fn time(line: &str) -> Option<i64> {
        event_time_ms(&Fields::split(line.as_bytes()))
    }

    fn header(line: &str) -> bool {
        is_header(&Fields::split(line.as_bytes()))
    }

    #[test]
    fn key_of_weekly_rows_with_and_without_index_and_quotes() {
        assert_eq!(key(WEEKLY), "A002/R051/02-00-00");
        assert_eq!(key(&WEEKLY[2..]), "A002/R051/02-00-00");
        let quoted = r#""7", "A002" ,"R051","02-00-00","59 ST, LEX","NQR","BMT","12/30/2023","03:00:00","REGULAR","1","2""#;
        assert_eq!(key(quoted), "A002/R051/02-00-00");
        assert_eq!(key(STREAM), "A001/R002/02-00-00");
    }

    #[test]
    fn short_lines_are_keyed_by_the_whole_line() {
        assert_eq!(key("garbage,line"), "garbage,line");
        assert_eq!(key(""), "");
    }

    #[test]
    fn event_time_of_each_format() {
        // 2023-12-30T03:00:00Z
        let expected = Some(1_703_905_200_000);
        assert_eq!(time(WEEKLY), expected);
        assert_eq!(time(&WEEKLY[2..]), expected);
        assert_eq!(time(STREAM), Some(1_704_535_872_000));
        let sample = "1704535872,Test-Station,A001,02-00-00,600,700,'2023-12-30 03:00:00'";
        assert_eq!(time(sample), expected);
        assert_eq!(
            time("a,b,c,d,e,f,2023-12-30T03:00:00.250Z"),
            Some(1_703_905_200_250)
        );
        assert_eq!(time("1970-01-01 00:00:00,b"), None);
    }

    #[test]
    fn unreadable_event_times_are_none() {
        assert_eq!(time(&WEEKLY.replace("12/30/2023", "30.12.2023")), None);
        assert_eq!(time(&WEEKLY.replace("03:00:00", "25:00:00")), None);
        assert_eq!(time(&WEEKLY.replace("12/30/2023", "13/30/2023")), None);
        assert_eq!(
            time(&STREAM.replace("2024-01-06 10:11:12", "yesterday")),
            None
        );
        assert_eq!(time("a,b"), None);
    }

    #[test]
    fn headers_of_all_formats_are_recognised() {
        assert!(header(
            ",CA,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS"
        ));
        assert!(header(
            "C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS"
        ));
        assert!(header(
            "CA,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS,ID,TIMESTAMP"
        ));
        assert!(header(
            "A/C,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS,ID,TIMESTAMP"
        ));
        assert!(header(
            "timestamp,station,turnstile_id,device_id,entry,exit,entry_datetime"
        ));
        assert!(header(r#""C/A","UNIT","SCP""#));
        assert!(!header(WEEKLY));
        assert!(!header("CA"));
    }
}
