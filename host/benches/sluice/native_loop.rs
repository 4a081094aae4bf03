//! The engine section's third line: turnstile-parse + turnstile-window (cumulative counters,
//! 4-hour tumbling windows by station, DESIGN §6) as one hand-written native loop, the
//! machine's limit beside the plugin chains. It owns that loop: a comma scan straight over
//! the bytes of the MTA weekly rows (fields trimmed and unquoted as the plugin does, header
//! lines skipped), turnstile keys and stations interned into ids once, each turnstile's last
//! reading, the (station, window start) sums in a hash map, and the host's watermark rule
//! (largest event time − 4 h after each batch of [`BATCH`] lines, the end after the last; a
//! reading whose window was emitted is late). No allocation per record. The 7- and 13-field
//! layouts turnstile-parse also reads are not in the bench's input: here they fail.

use std::time::{Duration, Instant};

use sluice_plugin_sdk::time;
use turnstile_window::intern::FxHashMap as FxMap;

use crate::engine::{BATCH, Row};

const HOUR: i64 = 3_600_000;
/// Window size and slide (tumbling), and the watermark delay.
const SIZE: i64 = 4 * HOUR;
const DELAY: i64 = 4 * HOUR;
/// A pair counts only when its readings are at most this far apart.
const MAX_GAP: i64 = 24 * HOUR;
/// Larger differences between two readings count as 0.
const MAX_DELTA: i64 = 10_000;
const NO_STATION: u32 = u32::MAX;

/// Runs the loop over `lines` (one record each, in this order): the time it took and the
/// rows it emitted, sorted. Like the chains' source batches, the lines are first packed into
/// one buffer (outside the clock); names are resolved after it stops.
pub fn run(lines: &[Vec<u8>]) -> (Duration, Vec<Row>) {
    let data = lines.concat();
    let mut state = State::new();
    let start = Instant::now();
    let (batches, mut from) = (lines.len().div_ceil(BATCH), 0);
    for (i, batch) in lines.chunks(BATCH).enumerate() {
        for line in batch {
            state.record(&data[from..from + line.len()]);
            from += line.len();
        }
        state.end_batch(i + 1 == batches);
    }
    let elapsed = start.elapsed();
    (elapsed, state.rows())
}

/// The last kept reading of one turnstile.
#[derive(Clone, Copy)]
struct Last {
    ts: i64,
    entries: i64,
    exits: i64,
}

struct State {
    /// Turnstile key (`CA,UNIT,SCP`) → id, an index of `last`.
    turnstiles: FxMap<Box<[u8]>, u32>,
    last: Vec<Last>,
    /// Per turnstile, the station id of its last pair ([`NO_STATION`] before one; a cache).
    station_of: Vec<u32>,
    /// Station name → id, an index of `names`.
    stations: FxMap<Box<[u8]>, u32>,
    names: Vec<Box<[u8]>>,
    /// (station id, window start) → (entries, exits).
    sums: FxMap<(u32, i64), (i64, i64)>,
    max_ts: i64,
    watermark: i64,
    /// Closed windows: (station id, start, entries, exits).
    emitted: Vec<(u32, i64, i64, i64)>,
    /// The last weekly date text and its day number (dates repeat from row to row).
    date: ([u8; 10], i64),
    key: Vec<u8>,
}

impl State {
    fn new() -> Self {
        State {
            turnstiles: FxMap::default(),
            last: Vec::new(),
            station_of: Vec::new(),
            stations: FxMap::default(),
            names: Vec::new(),
            sums: FxMap::default(),
            max_ts: i64::MIN,
            watermark: i64::MIN,
            emitted: Vec::new(),
            date: ([0; 10], 0),
            key: Vec::with_capacity(64),
        }
    }

    /// One line: parse, drop it if late, pair it with its turnstile's last reading.
    fn record(&mut self, line: &[u8]) {
        let Some(([raw, ca, unit, scp, station], r)) = self.parse(line) else {
            return; // a header, or a failure (the plugin dead-letters it)
        };
        if r.ts.div_euclid(SIZE) * SIZE + SIZE <= self.watermark {
            return; // late: its window was emitted (the host drops it before the plugin)
        }
        self.max_ts = self.max_ts.max(r.ts);
        let Some(id) = self.turnstile([raw, ca, unit, scp], r) else {
            return; // a new turnstile: its first reading
        };
        let last = &mut self.last[id];
        if r.ts <= last.ts {
            return; // a repeat (dropped) or older than the last reading (late)
        }
        let paired = r.ts - last.ts <= MAX_GAP;
        let delta = |now: i64, before: i64| {
            now.checked_sub(before)
                .filter(|d| (0..=MAX_DELTA).contains(d))
                .unwrap_or(0)
        };
        let (entries, exits) = (delta(r.entries, last.entries), delta(r.exits, last.exits));
        (last.ts, last.entries, last.exits) = (r.ts, r.entries, r.exits);
        if !paired {
            return;
        }
        let station = self.station(id, station);
        let start = r.ts - r.ts.rem_euclid(SIZE);
        let sums = self.sums.entry((station, start)).or_default();
        sums.0 = sums.0.wrapping_add(entries);
        sums.1 = sums.1.wrapping_add(exits);
    }

    /// The id of turnstile `CA,UNIT,SCP`, or `None` for a new one (then `r` is its reading).
    fn turnstile(&mut self, [raw, ca, unit, scp]: [&[u8]; 4], r: Last) -> Option<usize> {
        // The key is `CA,UNIT,SCP` (no field holds a comma): the line's own bytes unless a
        // field was trimmed.
        let key = if raw.len() == ca.len() + unit.len() + scp.len() + 2 {
            raw
        } else {
            self.key.clear();
            for part in [ca, b",", unit, b",", scp] {
                self.key.extend_from_slice(part);
            }
            &self.key
        };
        if let Some(&id) = self.turnstiles.get(key) {
            return Some(id as usize);
        }
        self.turnstiles.insert(key.into(), self.last.len() as u32);
        self.last.push(r);
        self.station_of.push(NO_STATION);
        None
    }

    /// The station id of turnstile `id`'s reading at `name`, cached per turnstile.
    fn station(&mut self, id: usize, name: &[u8]) -> u32 {
        let cached = self.station_of[id];
        if cached != NO_STATION && *self.names[cached as usize] == *name {
            return cached;
        }
        let names = &mut self.names;
        let station = *self.stations.entry(name.into()).or_insert_with(|| {
            names.push(name.into());
            names.len() as u32 - 1
        });
        self.station_of[id] = station;
        station
    }

    /// After a batch: the watermark moves to the largest event time − 4 h (to the end after
    /// the last batch) and every window ending at or before it is emitted.
    fn end_batch(&mut self, last: bool) {
        let watermark = match (last, self.max_ts) {
            (true, _) => i64::MAX,
            (false, i64::MIN) => self.watermark,
            (false, max) => self.watermark.max(max.saturating_sub(DELAY)),
        };
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        let emitted = &mut self.emitted;
        self.sums
            .retain(|&(station, start), &mut (entries, exits)| {
                let open = start.saturating_add(SIZE) > watermark;
                if !open {
                    emitted.push((station, start, entries, exits));
                }
                open
            });
    }

    /// The emitted rows with station names, sorted.
    fn rows(self) -> Vec<Row> {
        let name = |s: u32| String::from_utf8_lossy(&self.names[s as usize]).into_owned();
        let mut rows: Vec<Row> = (self.emitted.iter())
            .map(|&(s, start, entries, exits)| (name(s), start, entries, exits))
            .collect();
        rows.sort_unstable();
        rows
    }

    /// A weekly row: the raw `CA,UNIT,SCP` text, CA, UNIT, SCP and STATION, and the reading;
    /// `None` for a header line or anything the parse plugin would fail (or a layout this
    /// loop leaves out). Blank lines have one field: `None`.
    fn parse<'a>(&mut self, line: &'a [u8]) -> Option<([&'a [u8]; 5], Last)> {
        let mut cuts = [0usize; 14];
        let (n, ascii) = split(line, &mut cuts);
        if !ascii && std::str::from_utf8(line).is_err() {
            return None;
        }
        let field = |i: usize| clean(&line[cuts[i]..cuts[i + 1] - 1]);
        let head: [&[u8]; 3] = std::array::from_fn(|i| if i < n { field(i) } else { b"" });
        let is = |i: usize, name: &str| head[i].eq_ignore_ascii_case(name.as_bytes());
        let ca_unit = |i: usize| (is(i, "CA") || is(i, "C/A")) && is(i + 1, "UNIT");
        if ca_unit(0) || ca_unit(1) || (is(0, "timestamp") && is(1, "station")) {
            return None; // a header line
        }
        let b = n.checked_sub(11).filter(|&b| b <= 1)?;
        let ts = self.date_time(field(b + 6), field(b + 7))?;
        let (entries, exits) = (parse_i64(field(b + 9))?, parse_i64(field(b + 10))?);
        let raw = &line[cuts[b]..cuts[b + 3] - 1];
        let names = [raw, field(b), field(b + 1), field(b + 2), field(b + 3)];
        Some((names, Last { ts, entries, exits }))
    }

    /// DATE and TIME: `MM/DD/YYYY` and `HH:MM:SS` read here (the date cached), any other
    /// shape by the SDK's parser as the plugin does.
    fn date_time(&mut self, date: &[u8], time: &[u8]) -> Option<i64> {
        let weekly = date.len() == 10 && date[2] == b'/' && date[5] == b'/' && time.len() == 8;
        if !weekly || time[2] != b':' || time[5] != b':' {
            let text = |b| std::str::from_utf8(b).ok();
            return time::parse_date_time(text(date)?, text(time)?);
        }
        if *date != self.date.0 {
            let (y, m) = (decimal(&date[6..])?, decimal(&date[..2])? as u32);
            let d = decimal(&date[3..5])? as u32;
            if !(1..=12).contains(&m) || d == 0 || d > time::days_in_month(y, m) {
                return None;
            }
            self.date = (date.try_into().ok()?, time::days_from_civil(y, m, d));
        }
        let (h, mi) = (decimal(&time[..2])?, decimal(&time[3..5])?);
        let s = decimal(&time[6..])?;
        if h > 23 || mi > 59 || s > 59 {
            return None;
        }
        Some(self.date.1 * time::MS_PER_DAY + (h * 3600 + mi * 60 + s) * 1000)
    }
}

/// Finds the commas of `line`, eight bytes at a time (the last word zero-padded): field `i`
/// is `line[cuts[i]..cuts[i + 1] - 1]` for the first 13 fields. Returns the number of fields
/// and whether the line is all ASCII.
fn split(line: &[u8], cuts: &mut [usize; 14]) -> (usize, bool) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let (mut n, mut high) = (1, 0);
    let mut scan = |at: usize, word: u64| {
        high |= word;
        let x = word ^ 0x2c2c_2c2c_2c2c_2c2c;
        let mut commas = !(((x & LOW7) + LOW7) | x | LOW7);
        while commas != 0 {
            if n < cuts.len() {
                cuts[n] = at + (commas.trailing_zeros() / 8) as usize + 1;
            }
            n += 1;
            commas &= commas - 1;
        }
    };
    let mut words = line.chunks_exact(8);
    for (k, w) in (&mut words).enumerate() {
        scan(k * 8, u64::from_le_bytes(w.try_into().unwrap_or_default()));
    }
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    scan(
        line.len() - words.remainder().len(),
        u64::from_le_bytes(last),
    );
    if n < cuts.len() {
        cuts[n] = line.len() + 1;
    }
    (n, high & !LOW7 == 0)
}

/// A field trimmed and unquoted as turnstile-parse does (whitespace, then `"` and `'`, then
/// whitespace); only a field with such a byte (or non-ASCII) at an end takes the slow path.
fn clean(field: &[u8]) -> &[u8] {
    let edge = |c: u8| matches!(c, 0..=b' ' | b'"' | b'\'' | 0x80..);
    match field {
        [first, .., last] if !edge(*first) && !edge(*last) => field,
        [one] if !edge(*one) => field,
        [] => field,
        _ => std::str::from_utf8(field).map_or(field, |s| {
            s.trim().trim_matches(['"', '\'']).trim().as_bytes()
        }),
    }
}

/// 1–18 ASCII digits.
fn decimal(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    b.iter().try_fold(0, |v, &c| {
        let d = c.wrapping_sub(b'0');
        (d <= 9).then(|| v * 10 + i64::from(d))
    })
}

/// `[+-]digits` (as turnstile-parse reads ENTRIES and EXITS): plain digits here, anything
/// else by std's overflow-checked parse, which accepts the same texts.
fn parse_i64(s: &[u8]) -> Option<i64> {
    decimal(s).or_else(|| std::str::from_utf8(s).ok()?.parse().ok())
}
