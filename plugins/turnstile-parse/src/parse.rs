//! The turnstile text formats (DESIGN §6), parsed without allocating: a message is split into
//! lines, header lines are skipped, and every other line becomes a [`Record`] borrowing its
//! text from the message, or a [`LineError`] naming the line and the field at fault.

mod fields;
#[cfg(test)]
mod tests;

pub use fields::{event_time, parse_i64};
use fields::{has_newline, split_fields};

use sluice_plugin_sdk::time;
use std::fmt;

/// Which record layouts to accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Any of the layouts below, told apart by field count.
    Auto,
    /// MTA weekly file row: `[index,]CA,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS`.
    Weekly,
    /// Reference producer message: the weekly fields (DATE as `mm-dd-yy`), then `ID,TIMESTAMP`.
    Message,
    /// Sample feed: `timestamp,station,turnstile_id,device_id,entry,exit,entry_datetime`.
    Sample,
}

impl Format {
    /// The format called `name` in the plugin config.
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "auto" => Format::Auto,
            "weekly" => Format::Weekly,
            "message" => Format::Message,
            "sample" => Format::Sample,
            _ => return None,
        })
    }

    fn expected_fields(self) -> &'static str {
        match self {
            Format::Auto => "7 (sample), 11 or 12 (weekly) or 13 (message) fields",
            Format::Weekly => "11 or 12 fields (MTA weekly row)",
            Format::Message => "13 fields (stream message)",
            Format::Sample => "7 fields (sample row)",
        }
    }
}

/// One turnstile reading, borrowing its text from the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Control area (`CA`; the sample's `turnstile_id`).
    pub ca: &'a str,
    /// Remote unit.
    pub unit: &'a str,
    /// Subunit channel position (`SCP`; the sample's `device_id`).
    pub scp: &'a str,
    /// Station name.
    pub station: &'a str,
    /// Lines served.
    pub linename: &'a str,
    /// Division.
    pub division: &'a str,
    /// Audit description (`REGULAR`, `RECOVR AUD`).
    pub desc: &'a str,
    /// Event time, ms since the epoch (UTC).
    pub timestamp: i64,
    /// Entries register (or count).
    pub entries: i64,
    /// Exits register (or count).
    pub exits: i64,
}

/// Why one line is not a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number within the message.
    pub line: usize,
    /// What is wrong, naming the field.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The most fields a line can have in any format.
const MAX_FIELDS: usize = 13;

/// Parses every line of `message`, calling `emit` with each record or error, in order.
/// Blank and header lines produce nothing.
pub fn parse_message<'a>(
    message: &'a [u8],
    format: Format,
    mut emit: impl FnMut(Result<Record<'a>, LineError>),
) {
    // One UTF-8 check for the whole message; line by line only to report a bad one.
    let Ok(text) = std::str::from_utf8(message) else {
        return parse_invalid_utf8(message, format, emit);
    };
    // Most messages are one line: no search for the next one.
    if !has_newline(message) {
        if let Some(result) = parse_text_line(text, format) {
            emit(result.map_err(|message| LineError { line: 1, message }));
        }
        return;
    }
    for (i, line) in text.split('\n').enumerate() {
        if let Some(result) = parse_text_line(line, format) {
            emit(result.map_err(|message| LineError {
                line: i + 1,
                message,
            }));
        }
    }
}

/// [`parse_message`] of a message that is not all UTF-8.
fn parse_invalid_utf8<'a>(
    message: &'a [u8],
    format: Format,
    mut emit: impl FnMut(Result<Record<'a>, LineError>),
) {
    for (i, raw) in message.split(|&b| b == b'\n').enumerate() {
        let result = match std::str::from_utf8(raw) {
            Ok(line) => parse_text_line(line, format),
            Err(e) => Some(Err(format!("not valid UTF-8 (byte {})", e.valid_up_to()))),
        };
        if let Some(result) = result {
            emit(result.map_err(|message| LineError {
                line: i + 1,
                message,
            }));
        }
    }
}

/// One line without its `\n`: `None` when blank or a header.
fn parse_text_line(line: &str, format: Format) -> Option<Result<Record<'_>, String>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.bytes().all(|b| b.is_ascii_whitespace()) {
        return None;
    }
    parse_line(line, format).transpose()
}

/// Parses one line: `Ok(None)` for a header line.
pub fn parse_line(line: &str, format: Format) -> Result<Option<Record<'_>>, String> {
    let mut fields = [""; MAX_FIELDS];
    let n = split_fields(line, &mut fields);
    let fields = &fields[..n.min(MAX_FIELDS)];
    if is_header(fields) {
        return Ok(None);
    }
    let record = match (format, n) {
        (Format::Auto | Format::Weekly, 11 | 12) => weekly(&fields[n - 11..])?,
        (Format::Auto | Format::Message, 13) => message(fields)?,
        (Format::Auto | Format::Sample, 7) => sample(fields)?,
        _ => return Err(format!("expected {}, found {n}", format.expected_fields())),
    };
    Ok(Some(record))
}

/// Whether the fields are a header line of any format.
fn is_header(f: &[&str]) -> bool {
    let is = |i: usize, name: &str| f.get(i).is_some_and(|v| v.eq_ignore_ascii_case(name));
    let ca_unit = |i: usize| (is(i, "CA") || is(i, "C/A")) && is(i + 1, "UNIT");
    ca_unit(0) || ca_unit(1) || (is(0, "timestamp") && is(1, "station"))
}

/// `CA,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS`.
fn weekly<'a>(f: &[&'a str]) -> Result<Record<'a>, String> {
    let timestamp = time::parse_date_time(f[6], f[7]).ok_or_else(|| {
        format!(
            "field DATE/TIME: \"{} {}\" is not a valid date and time",
            f[6], f[7]
        )
    })?;
    readings(f, timestamp)
}

/// The weekly fields, then `ID,TIMESTAMP`; the event time is TIMESTAMP.
fn message<'a>(f: &[&'a str]) -> Result<Record<'a>, String> {
    let timestamp = event_time(f[12]).ok_or_else(|| {
        format!(
            "field TIMESTAMP: {:?} is not a date and time or epoch time",
            f[12]
        )
    })?;
    readings(f, timestamp)
}

/// The record of the first 11 weekly fields, with event time `timestamp`.
fn readings<'a>(f: &[&'a str], timestamp: i64) -> Result<Record<'a>, String> {
    Ok(Record {
        ca: f[0],
        unit: f[1],
        scp: f[2],
        station: f[3],
        linename: f[4],
        division: f[5],
        desc: f[8],
        timestamp,
        entries: integer("ENTRIES", f[9])?,
        exits: integer("EXITS", f[10])?,
    })
}

/// `timestamp,station,turnstile_id,device_id,entry,exit,entry_datetime`.
fn sample<'a>(f: &[&'a str]) -> Result<Record<'a>, String> {
    let timestamp = time::parse_datetime(f[6]).ok_or_else(|| {
        format!(
            "field entry_datetime: {:?} is not a valid date and time",
            f[6]
        )
    })?;
    Ok(Record {
        ca: f[2],
        unit: "",
        scp: f[3],
        station: f[1],
        linename: "",
        division: "",
        desc: "",
        timestamp,
        entries: integer("entry", f[4])?,
        exits: integer("exit", f[5])?,
    })
}

/// A field that must be a whole number.
fn integer(name: &str, value: &str) -> Result<i64, String> {
    parse_i64(value).ok_or_else(|| format!("field {name}: {value:?} is not an integer"))
}
