//! The plugin config and what it means for rows: [`Settings`] read from JSON, checked against
//! the input schema and window into a [`Plan`], which extracts (group key, turnstile key,
//! event time, values) from each input row with one pass and no allocation.

#[cfg(test)]
mod tests;

use crate::aggregate::{Counters, Windows};
use sluice_plugin_sdk::json::{Json, parse_config};
use sluice_plugin_sdk::{DecodeError, Field, FieldType, RowReader, WindowSpec};

/// Config keys `init` accepts.
pub const CONFIG_KEYS: &[&str] = &["counters", "group_by", "key", "values", "emit_early"];

/// Most windows one reading may fall into (`size / slide`).
pub const MAX_WINDOWS_PER_READING: i64 = 1_000;

/// The plugin config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `counters: cumulative | incremental` (required).
    pub counters: Counters,
    /// `group_by: [station]`: the str fields results are grouped by.
    pub group_by: Vec<String>,
    /// `key: [ca, unit, scp]`: the str fields identifying a turnstile (cumulative only).
    pub key: Vec<String>,
    /// `values: [entries, exits]`: the int64 fields summed.
    pub values: Vec<String>,
    /// `emit_early: true`: `process` returns the current sums of the (group, window) pairs
    /// each batch touched (default false; the host sets it for `emit: { early: … }`).
    pub emit_early: bool,
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

impl Settings {
    /// Reads the JSON config, with defaults for the optional keys.
    pub fn from_json(config: &str) -> Result<Settings, String> {
        let mut cfg = parse_config(config)?;
        let counters = match cfg.take_str("counters")?.as_deref() {
            Some("cumulative") => Counters::Cumulative,
            Some("incremental") => Counters::Incremental,
            Some(other) => {
                return Err(format!(
                    "config key `counters` is {other:?}; expected \"cumulative\" or \"incremental\""
                ));
            }
            None => {
                return Err(
                    "config key `counters` is required: \"cumulative\" or \"incremental\"".into(),
                );
            }
        };
        let group_by = cfg
            .take_str_list("group_by")?
            .unwrap_or_else(|| strings(&["station"]));
        let explicit_key = cfg.take_str_list("key")?;
        if explicit_key.is_some() && counters == Counters::Incremental {
            return Err("config key `key` only applies to `counters: cumulative`".into());
        }
        let key = explicit_key.unwrap_or_else(|| strings(&["ca", "unit", "scp"]));
        let values = cfg
            .take_str_list("values")?
            .unwrap_or_else(|| strings(&["entries", "exits"]));
        let emit_early = match cfg.take("emit_early") {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => b,
            Some(other) => {
                return Err(format!(
                    "config key `emit_early` must be true or false, not {}",
                    other.kind()
                ));
            }
        };
        cfg.finish(CONFIG_KEYS)?;
        Ok(Settings {
            counters,
            group_by,
            key,
            values,
            emit_early,
        })
    }

    /// The schema of the emitted rows: group fields, `window_start`, `window_end`, values.
    pub fn output_schema(&self) -> Vec<Field> {
        let mut out: Vec<Field> = self
            .group_by
            .iter()
            .map(|n| Field::new(n, FieldType::Str))
            .collect();
        out.push(Field::new("window_start", FieldType::Timestamp));
        out.push(Field::new("window_end", FieldType::Timestamp));
        out.extend(self.values.iter().map(|n| Field::new(n, FieldType::Int64)));
        out
    }
}

/// What one input field is used for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Use {
    group: Option<usize>,
    key: Option<usize>,
    value: Option<usize>,
    time: bool,
}

/// How to read the rows of one input schema.
#[derive(Clone, Debug)]
pub struct Plan {
    fields: Vec<Field>,
    uses: Vec<Use>,
    /// Fields after the last used one are not read.
    read_upto: usize,
    n_group: usize,
    n_key: usize,
    n_values: usize,
}

/// One row's parts, reused from row to row.
#[derive(Clone, Debug, Default)]
pub struct Extracted {
    /// Group key: the row encoding of the group fields, in `group_by` order.
    pub group: Vec<u8>,
    /// Turnstile key: the row encoding of the key fields, in `key` order.
    pub key: Vec<u8>,
    /// Event time.
    pub ts: i64,
    /// Values, in `values` order.
    pub values: Vec<i64>,
    group_spans: Vec<(usize, usize)>,
    key_spans: Vec<(usize, usize)>,
}

/// Checks the window spec: positive size, `0 < slide ≤ size`, not too many windows per reading.
pub fn check_window(spec: &WindowSpec) -> Result<Windows, String> {
    let (size, slide) = (spec.size, spec.slide);
    if size <= 0 || slide <= 0 || slide > size {
        return Err(format!(
            "window size ({size} ms) and slide ({slide} ms) must be positive, slide at most size"
        ));
    }
    if size / slide > MAX_WINDOWS_PER_READING {
        return Err(format!(
            "window size / slide is over {MAX_WINDOWS_PER_READING}: each record would be in too many windows"
        ));
    }
    Ok(Windows { size, slide })
}

impl Plan {
    /// Checks that every named field exists with the right type and builds the plan.
    pub fn new(settings: &Settings, input: &[Field], event_time: &str) -> Result<Plan, String> {
        let mut uses = vec![Use::default(); input.len()];
        let find = |role, name, ty| find_field(input, role, name, ty);
        for (k, name) in settings.group_by.iter().enumerate() {
            uses[find("group_by", name, FieldType::Str)?].group = Some(k);
        }
        let key: &[String] = if settings.counters == Counters::Cumulative {
            &settings.key
        } else {
            &[]
        };
        for (k, name) in key.iter().enumerate() {
            uses[find("key", name, FieldType::Str)?].key = Some(k);
        }
        for (k, name) in settings.values.iter().enumerate() {
            uses[find("values", name, FieldType::Int64)?].value = Some(k);
        }
        uses[find("event_time", event_time, FieldType::Timestamp)?].time = true;
        check_names(settings, key)?;
        let read_upto = uses
            .iter()
            .rposition(|u| *u != Use::default())
            .map_or(0, |i| i + 1);
        let (n_group, n_key, n_values) =
            (settings.group_by.len(), key.len(), settings.values.len());
        Ok(Plan {
            fields: input.to_vec(),
            uses,
            read_upto,
            n_group,
            n_key,
            n_values,
        })
    }

    /// Reads the used fields of `row` into `out`; `Err` names a null or undecodable field.
    pub fn extract(&self, row: &[u8], out: &mut Extracted) -> Result<(), String> {
        out.group_spans.resize(self.n_group, (0, 0));
        out.key_spans.resize(self.n_key, (0, 0));
        out.values.resize(self.n_values, 0);
        let mut r = RowReader::new(row);
        for (field, u) in self.fields[..self.read_upto].iter().zip(&self.uses) {
            if *u == Use::default() {
                r.skip(field).map_err(|e| decode_error(field, e))?;
                continue;
            }
            if field.nullable && !r.is_present().map_err(|e| decode_error(field, e))? {
                return Err(format!("field `{}` is null", field.name));
            }
            let start = r.position();
            // Text is checked when a group key is first seen (Aggregator::add), not per row.
            let v = match field.ty {
                FieldType::Str => r.bytes().map(|_| 0),
                _ => r.i64(),
            };
            let v = v.map_err(|e| decode_error(field, e))?;
            if let Some(k) = u.value {
                out.values[k] = v;
            }
            if u.time {
                out.ts = v;
            }
            let span = (start, r.position());
            if let Some(k) = u.group {
                out.group_spans[k] = span;
            }
            if let Some(k) = u.key {
                out.key_spans[k] = span;
            }
        }
        concat(&mut out.group, row, &out.group_spans);
        concat(&mut out.key, row, &out.key_spans);
        Ok(())
    }

    /// Number of value fields.
    pub fn n_values(&self) -> usize {
        self.n_values
    }
}

/// The index of the input field `name`, which must have type `ty`; `role` is the config key
/// naming it, for messages.
fn find_field(input: &[Field], role: &str, name: &str, ty: FieldType) -> Result<usize, String> {
    let Some(i) = input.iter().position(|f| f.name == name) else {
        let names: Vec<&str> = input.iter().map(|f| f.name.as_str()).collect();
        let names = names.join(", ");
        return Err(format!(
            "{role} field `{name}` is not in the input schema [{names}]"
        ));
    };
    if input[i].ty != ty {
        let has = input[i].ty;
        return Err(format!(
            "{role} field `{name}` must be {ty}, but the input has {has}"
        ));
    }
    Ok(i)
}

fn concat(dst: &mut Vec<u8>, row: &[u8], spans: &[(usize, usize)]) {
    dst.clear();
    for &(a, b) in spans {
        dst.extend_from_slice(&row[a..b]);
    }
}

fn decode_error(field: &Field, e: DecodeError) -> String {
    format!("field `{}`: {e}", field.name)
}

/// Rejects duplicate names and output names that collide.
fn check_names(settings: &Settings, key: &[String]) -> Result<(), String> {
    if settings.values.is_empty() {
        return Err("config key `values` must name at least one field".into());
    }
    if settings.counters == Counters::Cumulative && key.is_empty() {
        return Err("config key `key` must name at least one field".into());
    }
    let output = settings.output_schema();
    for (i, f) in output.iter().enumerate() {
        if output[..i].iter().any(|g| g.name == f.name) {
            return Err(format!(
                "output field `{}` would appear twice (check `group_by` and `values`)",
                f.name
            ));
        }
    }
    if let Some(dup) = key.iter().enumerate().find(|(i, k)| key[..*i].contains(k)) {
        return Err(format!("config key `key` names `{}` twice", dup.1));
    }
    Ok(())
}
