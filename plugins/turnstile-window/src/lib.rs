//! `turnstile-window`: the `window` plugin that aggregates turnstile readings per group and
//! epoch-aligned event-time window, with cumulative (register) or incremental counters.
//! [`config`] reads the config and rows, [`aggregate`] owns the semantics and state,
//! [`snapshot`] its serialisation, [`touched`] what a batch changed (early results, config
//! `emit_early`); this module is the thin [`Window`] implementation.
//!
//! With the cargo feature `v2` the crate builds version 0.2.0 (a test artifact for shadow
//! runs): rows carry one more column, `traffic` (the sum of the values), and snapshots are
//! written in format 2 ([`snapshot`]); format-1 snapshots of 0.1 still restore.

pub mod aggregate;
pub mod config;
pub mod dictionary;
pub mod intern;
pub mod snapshot;
pub mod touched;

use aggregate::Aggregator;
use config::{Extracted, Plan, Settings};
use sluice_plugin_sdk::config::{ConfigSpec, Key};
use sluice_plugin_sdk::{Columns, Field, Metadata, Output, Window, WindowSpec};

/// The config `init` accepts (its JSON Schema is generated from this; [`config::Settings`]
/// reads it).
pub const CONFIG: ConfigSpec = ConfigSpec::new(&[
    Key::one_of(
        "counters",
        &["cumulative", "incremental"],
        "cumulative: ENTRIES/EXITS are register readings (count differences per turnstile); \
         incremental: they are counts (sum them).",
    )
    .required(),
    Key::text_list("group_by", "").default_json(r#"["station"]"#),
    Key::text_list("key", "Fields identifying a turnstile (cumulative only).")
        .default_json(r#"["ca","unit","scp"]"#),
    Key::text_list("values", "").default_json(r#"["entries","exits"]"#),
    Key::flag(
        "emit_early",
        "process returns the current sums of every (group, window) each batch touched (early \
         results); set by the host for `emit: { early: ... }`.",
    )
    .default_json("false"),
]);

/// The plugin instance.
#[derive(Debug, Clone)]
pub struct TurnstileWindow {
    settings: Settings,
    plan: Plan,
    agg: Aggregator,
    scratch: Extracted,
    ids: dictionary::Ids,
}

/// Version 0.2.0 (the `v2` feature): the `traffic` column and snapshot format 2.
pub const V2: bool = cfg!(feature = "v2");

impl TurnstileWindow {
    /// The aggregation state (for tests and benchmarks).
    pub fn state(&self) -> &Aggregator {
        &self.agg
    }
}

impl Window for TurnstileWindow {
    fn metadata() -> Metadata {
        let mut metadata = sluice_plugin_sdk::metadata!(
            "Sums turnstile entries and exits per station and event-time window (cumulative or incremental counters).",
            CONFIG.json_schema(),
            r#"{"counters":"cumulative","group_by":["station"]}"#
        );
        if V2 {
            "0.2.0".clone_into(&mut metadata.version);
            metadata.description += " Adds `traffic`, the sum of the values.";
        }
        metadata
    }

    fn init(
        config: &str,
        input: &[Field],
        window: &WindowSpec,
    ) -> Result<(Self, Vec<Field>), String> {
        let settings = Settings::from_json(config)?;
        let windows = config::check_window(window)?;
        let plan = Plan::new(&settings, input, &window.event_time)?;
        let mut agg = Aggregator::new(settings.counters, windows, plan.n_values());
        agg.track_touched(settings.emit_early);
        let schema = settings.output_schema(V2);
        Ok((
            TurnstileWindow {
                settings,
                plan,
                agg,
                scratch: Extracted::default(),
                ids: Default::default(),
            },
            schema,
        ))
    }

    fn process(
        &mut self,
        input: &Columns<'_>,
        _watermark: i64,
        out: &mut Output,
    ) -> Result<(), String> {
        self.agg.begin_batch();
        let columns = self.plan.columns(input)?;
        let s = &mut self.scratch;
        if dictionary::applies(&columns, input.len()) {
            let cumulative = self.settings.counters == aggregate::Counters::Cumulative;
            let fail = |i, reason| out.fail(i, reason);
            (self.ids).add_batch(&mut self.agg, &columns, input.len(), cumulative, s, fail);
        } else {
            for i in 0..input.len() {
                let added = columns
                    .extract(i, s)
                    .and_then(|()| self.agg.add(&s.group, &s.key, s.ts, &s.values));
                if let Err(reason) = added {
                    out.fail(i as u32, reason);
                }
            }
        }
        // Early results (emit_early): the current sums of what this batch changed.
        self.agg
            .emit_touched(|group, start, end, sums| put_row(out, group, start, end, sums));
        Ok(())
    }

    fn advance(&mut self, watermark: i64, out: &mut Output) -> Result<(), String> {
        self.agg.advance(watermark, |group, start, end, sums| {
            put_row(out, group, start, end, sums)
        });
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        snapshot::encode(&self.agg, &self.settings, snapshot::WRITES)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let empty = Aggregator::new(
            self.settings.counters,
            self.agg.windows,
            self.plan.n_values(),
        );
        self.agg = snapshot::decode(state, &empty, &self.settings, snapshot::WRITES)?;
        // Its ids name the replaced state's turnstiles and groups.
        self.ids = Default::default();
        self.agg.track_touched(self.settings.emit_early);
        Ok(())
    }
}

/// Appends one result row: the group fields (from the row-encoded group key), window start
/// and end, sums (and, in 0.2.0, their total).
fn put_row(out: &mut Output, group: &[u8], start: i64, end: i64, sums: &[i64]) {
    let mut rest = group;
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = (u32::from_le_bytes(*len) as usize).min(tail.len());
        out.rows.push_bytes(&tail[..len]);
        rest = &tail[len..];
    }
    out.rows.push_i64(start);
    out.rows.push_i64(end);
    sums.iter().for_each(|&v| out.rows.push_i64(v));
    if V2 {
        out.rows.push_i64(sums.iter().sum());
    }
    out.end_result_row();
}

sluice_plugin_sdk::export_window!(TurnstileWindow);

#[cfg(test)]
mod tests;
