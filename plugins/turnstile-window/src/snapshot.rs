//! The snapshot format of the window state: compact, versioned, hand-written.
//!
//! Written with the SDK row codec primitives (length-prefixed bytes, little-endian i64):
//! magic `sluice-turnstile-window`, format version, a header (counters, window size and slide,
//! value count, the config's field names), the emitted-up-to time, the group keys, the
//! turnstiles (key, time, values) and the open windows (start, then group id and sums per
//! group). Restoring checks everything and fails, never panics, on bad or foreign input.
//!
//! Format 2 (written by version 0.2.0, the `v2` feature) stores each open window column by
//! column: its start and group count, all its group ids, then all its sums. 0.2.0 restores
//! format 1 as well (a switch from 0.1 keeps the window state); 0.1 refuses format 2.

use crate::aggregate::{Aggregator, Counters, NO_GROUP, Predecessor, WindowSums};
use crate::config::Settings;
use crate::intern::Interner;
use sluice_plugin_sdk::{BatchBuilder, RowReader};

const MAGIC: &[u8] = b"sluice-turnstile-window";
/// The format this build writes, and the newest it reads.
pub const WRITES: i64 = if crate::V2 { 2 } else { 1 };

/// Serialises `agg`, configured by `settings`, in format `version` (1 or 2).
pub fn encode(agg: &Aggregator, settings: &Settings, version: i64) -> Vec<u8> {
    let mut w = BatchBuilder::new();
    w.put_bytes(MAGIC);
    w.put_i64(version);
    w.put_str(header(settings, agg).as_str());
    w.put_i64(agg.closed_upto);
    w.put_i64(agg.groups.len() as i64);
    agg.groups.keys().for_each(|k| w.put_bytes(k));
    w.put_i64(agg.predecessors.len() as i64);
    for (key, p) in agg.turnstiles.keys().zip(&agg.predecessors) {
        w.put_bytes(key);
        w.put_i64(p.ts);
        p.values.iter().for_each(|&v| w.put_i64(v));
    }
    w.put_i64(agg.open.len() as i64);
    for (&start, win) in &agg.open {
        w.put_i64(start);
        w.put_i64(win.groups.len() as i64);
        if version >= 2 {
            win.groups.iter().for_each(|&gid| w.put_i64(i64::from(gid)));
            win.sums.iter().for_each(|&v| w.put_i64(v));
            continue;
        }
        for (slot, &gid) in win.groups.iter().enumerate() {
            w.put_i64(i64::from(gid));
            let at = slot * agg.n_values;
            win.sums[at..at + agg.n_values]
                .iter()
                .for_each(|&v| w.put_i64(v));
        }
    }
    w.data
}

/// What must match between the snapshot and the restoring instance.
fn header(s: &Settings, agg: &Aggregator) -> String {
    let counters = match s.counters {
        Counters::Cumulative => "cumulative",
        Counters::Incremental => "incremental",
    };
    let key = if s.counters == Counters::Cumulative {
        s.key.join(",")
    } else {
        String::new()
    };
    format!(
        "counters={counters};size={};slide={};group_by={};key={key};values={}",
        agg.windows.size,
        agg.windows.slide,
        s.group_by.join(","),
        s.values.join(",")
    )
}

/// Rebuilds the state of an instance configured like `empty` (fresh from `init`) from a
/// snapshot of format `newest` or older.
pub fn decode(
    state: &[u8],
    empty: &Aggregator,
    settings: &Settings,
    newest: i64,
) -> Result<Aggregator, String> {
    let mut r = RowReader::new(state);
    let err = |e: sluice_plugin_sdk::DecodeError| format!("snapshot is corrupt: {e}");
    if r.bytes().ok() != Some(MAGIC) {
        return Err("not a turnstile-window snapshot".into());
    }
    let version = r.i64().map_err(err)?;
    if !(1..=newest).contains(&version) {
        return Err(format!(
            "snapshot format version {version} is not supported (this plugin reads 1 to {newest})"
        ));
    }
    let (theirs, ours) = (r.str().map_err(err)?, header(settings, empty));
    if theirs != ours {
        return Err(format!(
            "snapshot was taken with another configuration ({theirs}); this instance has {ours}"
        ));
    }
    let mut agg = empty.clone();
    read_body(&mut r, &mut agg, settings, version).map_err(err)?;
    if r.remaining() > 0 {
        return Err(format!(
            "snapshot is corrupt: {} bytes after the end",
            r.remaining()
        ));
    }
    Ok(agg)
}

type Res<T> = Result<T, sluice_plugin_sdk::DecodeError>;

fn corrupt(r: &RowReader<'_>, message: &str) -> sluice_plugin_sdk::DecodeError {
    sluice_plugin_sdk::DecodeError {
        offset: r.position(),
        message: message.to_string(),
    }
}

/// A count that cannot exceed the bytes left (every entry takes at least one).
fn count(r: &mut RowReader<'_>) -> Res<usize> {
    let n = r.i64()?;
    match usize::try_from(n) {
        Ok(n) if n <= r.remaining() => Ok(n),
        _ => Err(corrupt(r, &format!("count {n} is impossible here"))),
    }
}

fn read_body(
    r: &mut RowReader<'_>,
    agg: &mut Aggregator,
    settings: &Settings,
    version: i64,
) -> Res<()> {
    agg.closed_upto = r.i64()?;
    agg.groups = read_keys(r, settings.group_by.len(), 0, |_| Ok(()))?;
    let n_values = agg.n_values;
    let n_key = if agg.counters == Counters::Cumulative {
        settings.key.len()
    } else {
        0
    };
    let mut preds = Vec::new();
    agg.turnstiles = read_keys(r, n_key, 8 * (1 + n_values), |r| {
        let ts = r.i64()?;
        let values = (0..n_values).map(|_| r.i64()).collect::<Res<Vec<i64>>>()?;
        preds.push(Predecessor {
            ts,
            values: values.into(),
            group: NO_GROUP,
        });
        Ok(())
    })?;
    agg.predecessors = preds;
    let n_windows = count(r)?;
    let mut last = None;
    for _ in 0..n_windows {
        let start = r.i64()?;
        if last.is_some_and(|l| l >= start) {
            return Err(corrupt(r, "window starts are not increasing"));
        }
        last = Some(start);
        let win = if version >= 2 {
            read_window_columns(r, agg.groups.len(), n_values)?
        } else {
            read_window(r, agg.groups.len(), n_values)?
        };
        agg.open.insert(start, win);
    }
    Ok(())
}

/// Reads interned keys of `n_fields` str fields each, each followed by `extra` bytes that
/// `each` consumes.
fn read_keys(
    r: &mut RowReader<'_>,
    n_fields: usize,
    extra: usize,
    mut each: impl FnMut(&mut RowReader<'_>) -> Res<()>,
) -> Res<Interner> {
    let n = count(r)?;
    let mut keys = Interner::default();
    for _ in 0..n {
        let key = r.bytes()?;
        let mut fields = RowReader::new(key);
        for _ in 0..n_fields {
            fields
                .str()
                .map_err(|_| corrupt(r, "a key is not made of text fields"))?;
        }
        if fields.remaining() > 0 || !keys.intern(key).1 {
            return Err(corrupt(r, "a key is malformed or repeated"));
        }
        if r.remaining() < extra {
            return Err(corrupt(r, "truncated key entry"));
        }
        each(r)?;
    }
    Ok(keys)
}

/// Checks and adds group `gid` (as read) at `slot` of `win`.
fn add_group(
    r: &RowReader<'_>,
    win: &mut WindowSums,
    gid: i64,
    slot: usize,
    n_groups: usize,
) -> Res<()> {
    let gid = u32::try_from(gid).ok().filter(|&g| (g as usize) < n_groups);
    let Some(gid) = gid else {
        return Err(corrupt(r, "unknown group id"));
    };
    if win.slots.insert(gid, slot as u32).is_some() {
        return Err(corrupt(r, "a group appears twice in a window"));
    }
    win.groups.push(gid);
    Ok(())
}

/// Format 2: the group ids of the window, then its sums.
fn read_window_columns(r: &mut RowReader<'_>, n_groups: usize, n_values: usize) -> Res<WindowSums> {
    let n = count(r)?;
    let mut win = WindowSums::default();
    for slot in 0..n {
        let gid = r.i64()?;
        add_group(r, &mut win, gid, slot, n_groups)?;
    }
    if r.remaining() / 8 < n * n_values {
        return Err(corrupt(r, "truncated window sums"));
    }
    for _ in 0..n * n_values {
        win.sums.push(r.i64()?);
    }
    Ok(win)
}

fn read_window(r: &mut RowReader<'_>, n_groups: usize, n_values: usize) -> Res<WindowSums> {
    let n = count(r)?;
    let mut win = WindowSums::default();
    for slot in 0..n {
        let gid = r.i64()?;
        add_group(r, &mut win, gid, slot, n_groups)?;
        for _ in 0..n_values {
            win.sums.push(r.i64()?);
        }
    }
    Ok(win)
}
