//! `turnstile-window`: the `window` plugin that aggregates turnstile readings per group and
//! epoch-aligned event-time window, with cumulative (register) or incremental counters.
//! [`config`] reads the config and rows, [`aggregate`] owns the semantics and state,
//! [`snapshot`] its serialisation, [`touched`] what a batch changed (early results, config
//! `emit_early`); this module is the thin [`Window`] implementation.

pub mod aggregate;
pub mod config;
pub mod intern;
pub mod snapshot;
pub mod touched;

use aggregate::Aggregator;
use config::{Extracted, Plan, Settings};
use sluice_plugin_sdk::{Batch, BatchBuilder, Field, Metadata, Output, Window, WindowSpec};

const CONFIG_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["counters"],"properties":{"counters":{"enum":["cumulative","incremental"],"description":"cumulative: ENTRIES/EXITS are register readings (count differences per turnstile); incremental: they are counts (sum them)."},"group_by":{"type":"array","items":{"type":"string"},"default":["station"]},"key":{"type":"array","items":{"type":"string"},"default":["ca","unit","scp"],"description":"Fields identifying a turnstile (cumulative only)."},"values":{"type":"array","items":{"type":"string"},"default":["entries","exits"]},"emit_early":{"type":"boolean","default":false,"description":"process returns the current sums of every (group, window) each batch touched (early results); set by the host for `emit: { early: ... }`."}}}"#;

/// The plugin instance.
#[derive(Debug, Clone)]
pub struct TurnstileWindow {
    settings: Settings,
    plan: Plan,
    agg: Aggregator,
    scratch: Extracted,
}

impl TurnstileWindow {
    /// The aggregation state (for tests and benchmarks).
    pub fn state(&self) -> &Aggregator {
        &self.agg
    }
}

impl Window for TurnstileWindow {
    fn metadata() -> Metadata {
        sluice_plugin_sdk::metadata!(
            "Sums turnstile entries and exits per station and event-time window (cumulative or incremental counters).",
            CONFIG_SCHEMA,
            r#"{"counters":"cumulative","group_by":["station"]}"#
        )
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
        let schema = settings.output_schema();
        Ok((
            TurnstileWindow {
                settings,
                plan,
                agg,
                scratch: Extracted::default(),
            },
            schema,
        ))
    }

    fn process(
        &mut self,
        input: Batch<'_>,
        _watermark: i64,
        out: &mut Output,
    ) -> Result<(), String> {
        self.agg.begin_batch();
        let s = &mut self.scratch;
        for (i, row) in input.rows().enumerate() {
            let added = self
                .plan
                .extract(row, s)
                .and_then(|()| self.agg.add(&s.group, &s.key, s.ts, &s.values));
            if let Err(reason) = added {
                out.fail(i as u32, reason);
            }
        }
        // Early results (emit_early): the current sums of what this batch changed.
        let rows = &mut out.rows;
        self.agg
            .emit_touched(|group, start, end, sums| put_row(rows, group, start, end, sums));
        Ok(())
    }

    fn advance(&mut self, watermark: i64, out: &mut Output) -> Result<(), String> {
        let rows = &mut out.rows;
        self.agg.advance(watermark, |group, start, end, sums| {
            put_row(rows, group, start, end, sums)
        });
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        snapshot::encode(&self.agg, &self.settings)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let empty = Aggregator::new(
            self.settings.counters,
            self.agg.windows,
            self.plan.n_values(),
        );
        self.agg = snapshot::decode(state, &empty, &self.settings)?;
        self.agg.track_touched(self.settings.emit_early);
        Ok(())
    }
}

/// Appends one result row: the group key (already row-encoded), window start and end, sums.
fn put_row(rows: &mut BatchBuilder, group: &[u8], start: i64, end: i64, sums: &[i64]) {
    rows.data.extend_from_slice(group);
    rows.put_timestamp(start);
    rows.put_timestamp(end);
    sums.iter().for_each(|&v| rows.put_i64(v));
    rows.end_row();
}

sluice_plugin_sdk::export_window!(TurnstileWindow);

#[cfg(test)]
mod tests;
