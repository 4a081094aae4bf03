//! Field-level text handling of the turnstile formats: splitting a line on commas (eight
//! bytes at a time), trimming and unquoting fields, and reading integers and event times.

use super::MAX_FIELDS;
use sluice_plugin_sdk::time;

/// Splits `line` on commas into `out` (cleaned, at most [`MAX_FIELDS`]); returns the count of
/// all fields. Finds commas eight bytes at a time.
pub(super) fn split_fields<'a>(line: &'a str, out: &mut [&'a str; MAX_FIELDS]) -> usize {
    let bytes = line.as_bytes();
    let (mut n, mut start) = (0, 0);
    let mut cut = |end: usize| {
        if n < MAX_FIELDS {
            out[n] = clean(&line[start..end]);
        }
        n += 1;
        start = end + 1;
    };
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let mut mask = comma_mask(u64::from_le_bytes(word));
        while mask != 0 {
            cut(base + (mask.trailing_zeros() / 8) as usize);
            mask &= mask - 1;
        }
        base += 8;
    }
    for (i, &c) in chunks.remainder().iter().enumerate() {
        if c == b',' {
            cut(base + i);
        }
    }
    if n < MAX_FIELDS {
        out[n] = clean(&line[start..]);
    }
    n + 1
}

/// The high bit of each byte of `word` that is a comma (exact: no carries between bytes).
#[inline]
pub(super) fn comma_mask(word: u64) -> u64 {
    byte_mask(word, b',')
}

/// The high bit of each byte of `word` equal to `byte` (exact: no carries between bytes).
#[inline]
fn byte_mask(word: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (u64::from(byte) * 0x0101_0101_0101_0101);
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// Whether `bytes` hold a `\n`, eight bytes at a time (`memchr` is slow on short messages,
/// and a byte loop on wasm32).
#[inline]
pub(super) fn has_newline(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    let found = chunks.any(|c| {
        let word = u64::from_le_bytes(c.try_into().unwrap_or_default());
        byte_mask(word, b'\n') != 0
    });
    found || chunks.remainder().contains(&b'\n')
}

/// Trims a field and removes the quotes around it.
#[inline]
fn clean(field: &str) -> &str {
    let edge =
        |c: Option<&u8>| c.is_some_and(|&c| c <= b' ' || c == b'"' || c == b'\'' || c >= 0x80);
    let b = field.as_bytes();
    if !edge(b.first()) && !edge(b.last()) {
        return field;
    }
    field.trim().trim_matches(['"', '\'']).trim()
}

/// Parses `[+-]digits` with overflow checks.
pub fn parse_i64(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Up to 18 digits cannot overflow: no checked multiply (a 128-bit libcall on wasm32).
    if digits.len() <= 18 {
        let v = digits
            .iter()
            .fold(0i64, |v, &c| v * 10 + i64::from(c - b'0'));
        return Some(if neg { -v } else { v });
    }
    digits.iter().try_fold(0i64, |v, &c| {
        let (v, d) = (v.checked_mul(10)?, i64::from(c - b'0'));
        if neg {
            v.checked_sub(d)
        } else {
            v.checked_add(d)
        }
    })
}

/// Epoch seconds below 10^11 (before year 5138) are read as seconds, larger values as ms.
const EPOCH_MS_THRESHOLD: i64 = 100_000_000_000;

/// An event time: any text [`time::parse_datetime`] accepts, or epoch seconds (with an
/// optional fraction) or milliseconds.
pub fn event_time(s: &str) -> Option<i64> {
    if let Some(t) = time::parse_datetime(s) {
        return Some(t);
    }
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let n = parse_i64(whole)?;
    if !frac.bytes().all(|c| c.is_ascii_digit()) || (s.contains('.') && frac.is_empty()) {
        return None;
    }
    if frac.is_empty() && n.unsigned_abs() >= EPOCH_MS_THRESHOLD.unsigned_abs() {
        return Some(n);
    }
    let ms: i64 = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |a, c| a * 10 + i64::from(c - b'0'));
    let ms = if whole.starts_with('-') { -ms } else { ms };
    n.checked_mul(1000)?.checked_add(ms)
}
