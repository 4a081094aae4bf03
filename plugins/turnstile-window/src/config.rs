//! The plugin config and what it means for rows: [`Settings`] read from JSON, checked against
//! the input schema and window into a [`Plan`], which finds the columns of a batch once
//! ([`Plan::columns`]) and then extracts (group key, turnstile key, event time, values) of
//! each row from them without allocating.

#[cfg(test)]
mod tests;

use crate::aggregate::{Counters, Windows};
use sluice_plugin_sdk::columns::{Fixed, Var};
use sluice_plugin_sdk::json::{Json, parse_config};
use sluice_plugin_sdk::{Columns, Field, FieldType, WindowSpec};

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
        cfg.finish(&crate::CONFIG.keys())?;
        Ok(Settings {
            counters,
            group_by,
            key,
            values,
            emit_early,
        })
    }

    /// The schema of the emitted rows: group fields, `window_start`, `window_end`, values,
    /// and with `traffic` (version 0.2.0) their sum.
    pub fn output_schema(&self, traffic: bool) -> Vec<Field> {
        let mut out: Vec<Field> = self
            .group_by
            .iter()
            .map(|n| Field::new(n, FieldType::Str))
            .collect();
        out.push(Field::new("window_start", FieldType::Timestamp));
        out.push(Field::new("window_end", FieldType::Timestamp));
        out.extend(self.values.iter().map(|n| Field::new(n, FieldType::Int64)));
        if traffic {
            out.push(Field::new("traffic", FieldType::Int64));
        }
        out
    }
}

/// How to read the batches of one input schema: the input index of each field used.
#[derive(Clone, Debug)]
pub struct Plan {
    group: Vec<usize>,
    key: Vec<usize>,
    values: Vec<usize>,
    time: usize,
}

/// The columns of one batch a [`Plan`] reads.
pub struct PlanColumns<'a> {
    names: &'a [Field],
    group_fields: Vec<usize>,
    group: Vec<Var<'a>>,
    key_fields: Vec<usize>,
    key: Vec<Var<'a>>,
    values: Vec<(usize, Fixed<'a, i64>)>,
    time: (usize, Fixed<'a, i64>),
}

/// One row's parts, reused from row to row.
#[derive(Clone, Debug, Default)]
pub struct Extracted {
    /// Group key: the row encoding of the group fields (`u32` length, bytes), in `group_by`
    /// order.
    pub group: Vec<u8>,
    /// Turnstile key: the row encoding of the key fields, in `key` order.
    pub key: Vec<u8>,
    /// Event time.
    pub ts: i64,
    /// Values, in `values` order.
    pub values: Vec<i64>,
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
        let find = |role, name: &String, ty| find_field(input, role, name, ty);
        let key: &[String] = if settings.counters == Counters::Cumulative {
            &settings.key
        } else {
            &[]
        };
        let plan = Plan {
            group: (settings.group_by.iter())
                .map(|n| find("group_by", n, FieldType::Str))
                .collect::<Result<_, _>>()?,
            key: (key.iter())
                .map(|n| find("key", n, FieldType::Str))
                .collect::<Result<_, _>>()?,
            values: (settings.values.iter())
                .map(|n| find("values", n, FieldType::Int64))
                .collect::<Result<_, _>>()?,
            time: find("event_time", &event_time.to_string(), FieldType::Timestamp)?,
        };
        check_names(settings, key)?;
        Ok(plan)
    }

    /// The columns this plan reads in `input` (whose schema is the one the plan was made
    /// for).
    pub fn columns<'a>(&self, input: &Columns<'a>) -> Result<PlanColumns<'a>, String> {
        let fixed = |i: usize| {
            (input.fixed::<i64>(i))
                .map(|c| (i, c))
                .map_err(|e| e.message)
        };
        Ok(PlanColumns {
            names: input.schema(),
            group_fields: self.group.clone(),
            group: self.group.iter().map(|&i| input.var_at(i)).collect(),
            key_fields: self.key.clone(),
            key: self.key.iter().map(|&i| input.var_at(i)).collect(),
            values: self
                .values
                .iter()
                .map(|&i| fixed(i))
                .collect::<Result<_, _>>()?,
            time: fixed(self.time)?,
        })
    }

    /// Number of value fields.
    pub fn n_values(&self) -> usize {
        self.values.len()
    }
}

impl<'a> PlanColumns<'a> {
    /// The group columns and the key columns.
    pub fn text(&self) -> (&[Var<'a>], &[Var<'a>]) {
        (&self.group, &self.key)
    }

    /// Why a group (`group`) or key column `c` has no value at a row.
    pub fn missing(&self, group: bool, c: usize) -> String {
        let field = if group {
            self.group_fields[c]
        } else {
            self.key_fields[c]
        };
        self.missing_field(field)
    }

    fn missing_field(&self, field: usize) -> String {
        format!(
            "field `{}` is null or lies outside the batch",
            self.names[field].name
        )
    }

    /// Reads the event time and values of row `i` into `out`.
    #[inline]
    pub fn extract_values(&self, i: usize, out: &mut Extracted) -> Result<(), String> {
        out.ts = (self.time.1.value(i)).ok_or_else(|| self.missing_field(self.time.0))?;
        out.values.clear();
        for (field, column) in &self.values {
            let v = column.value(i).ok_or_else(|| self.missing_field(*field))?;
            out.values.push(v);
        }
        Ok(())
    }

    /// Reads the used fields of row `i` into `out`; `Err` names a null or malformed field.
    /// Text is checked when a group key is first seen (`Aggregator::add`), not per row.
    #[inline]
    pub fn extract(&self, i: usize, out: &mut Extracted) -> Result<(), String> {
        self.extract_values(i, out)?;
        let parts = [
            (&self.group_fields, &self.group, &mut out.group),
            (&self.key_fields, &self.key, &mut out.key),
        ];
        for (fields, columns, dst) in parts {
            dst.clear();
            for (field, column) in fields.iter().zip(columns) {
                let bytes = column.bytes(i).ok_or_else(|| self.missing_field(*field))?;
                dst.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                dst.extend_from_slice(bytes);
            }
        }
        Ok(())
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

/// Rejects duplicate names and output names that collide.
fn check_names(settings: &Settings, key: &[String]) -> Result<(), String> {
    if settings.values.is_empty() {
        return Err("config key `values` must name at least one field".into());
    }
    if settings.counters == Counters::Cumulative && key.is_empty() {
        return Err("config key `key` must name at least one field".into());
    }
    let output = settings.output_schema(crate::V2);
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
