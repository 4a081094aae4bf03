//! `{{name}}`: a sluice window plugin. It sums a numeric field per key in event-time
//! windows: rows of `station, timestamp, entries` in, one row per window and station out
//! (`<key>, window_start, window_end, total`). The host owns time: it computes the
//! watermark, drops or dead-letters late rows, and calls `advance` when windows close. With
//! `emit_early`, each batch also returns the running totals of the windows it touched (early
//! results, for live sinks).

use std::collections::BTreeMap;

use sluice_plugin_sdk::{Columns, Field, FieldType, Metadata, Output, Window, WindowSpec};

sluice_plugin_sdk::config_struct! {
    /// The `config` of a pipeline step using this plugin.
    pub struct Config {
        /// The `str` field rows are grouped by.
        key: String = "station".to_string(),
        /// The `int64` field summed.
        value: String = "entries".to_string(),
        /// Return running totals of the windows each batch touches.
        emit_early: bool = false,
    }
}

/// The plugin, configured for one pipeline step: its open windows.
pub struct Plugin {
    config: Config,
    window: WindowSpec,
    /// (window start, key) → total.
    open: BTreeMap<(i64, String), i64>,
}

impl Window for Plugin {
    fn metadata() -> Metadata {
        sluice_plugin_sdk::metadata!(
            "Sums a field per key in event-time windows.",
            Config::json_schema(),
            Config::sample()
        )
    }

    fn init(
        config: &str,
        input: &[Field],
        window: &WindowSpec,
    ) -> Result<(Self, Vec<Field>), String> {
        let config = Config::parse(config)?;
        for (name, ty) in [
            (&config.key, FieldType::Str),
            (&config.value, FieldType::Int64),
        ] {
            if !input.iter().any(|f| &f.name == name && f.ty == ty) {
                return Err(format!("the input has no `{}` field `{name}`", ty.name()));
            }
        }
        // The key first, then the window, then the values: the host tells early results of
        // different windows and keys apart by the fields up to `window_end`.
        let mut output = vec![Field::new(&config.key, FieldType::Str)];
        output.extend(sluice_plugin_sdk::schema![
            window_start: Timestamp,
            window_end: Timestamp,
            total: Int64,
        ]);
        let plugin = Plugin {
            config,
            window: window.clone(),
            open: BTreeMap::new(),
        };
        Ok((plugin, output))
    }

    fn process(
        &mut self,
        input: &Columns<'_>,
        _watermark: i64,
        out: &mut Output,
    ) -> Result<(), String> {
        let err = |e: sluice_plugin_sdk::DecodeError| e.to_string();
        let keys = input.str(&self.config.key).map_err(err)?;
        let values = input.i64(&self.config.value).map_err(err)?;
        let times = input.timestamp(&self.window.event_time).map_err(err)?;
        let mut touched = Vec::new();
        for i in 0..input.len() {
            let (Some(key), Some(value)) = (keys.str(i), values.value(i)) else {
                out.fail(i as u32, "no key or no value");
                continue;
            };
            for start in starts(times.get(i), &self.window) {
                *self.open.entry((start, key.to_string())).or_default() += value;
                touched.push((start, key.to_string()));
            }
        }
        if self.config.emit_early {
            touched.sort();
            touched.dedup();
            for (start, key) in touched {
                let total = self.open[&(start, key.clone())];
                out.emit_result()
                    .str(&key)
                    .timestamp(start)
                    .timestamp(start + self.window.size)
                    .i64(total);
            }
        }
        Ok(())
    }

    fn advance(&mut self, watermark: i64, out: &mut Output) -> Result<(), String> {
        let size = self.window.size;
        let closed: Vec<(i64, String)> = (self.open.keys())
            .filter(|(start, _)| start.saturating_add(size) <= watermark)
            .cloned()
            .collect();
        for (start, key) in closed {
            let total = self.open.remove(&(start, key.clone())).unwrap_or_default();
            out.emit_result()
                .str(&key)
                .timestamp(start)
                .timestamp(start + size)
                .i64(total);
        }
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        // One line per open window: `start\ttotal\tkey`.
        let mut text = String::new();
        for ((start, key), total) in &self.open {
            text.push_str(&format!("{start}\t{total}\t{key}\n"));
        }
        text.into_bytes()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(state).map_err(|_| "the state is not UTF-8")?;
        let mut open = BTreeMap::new();
        for line in text.lines() {
            let mut parts = line.splitn(3, '\t');
            let (Some(start), Some(total), Some(key)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!(
                    "a state line `{line}` is not `start\\ttotal\\tkey`"
                ));
            };
            let number = |s: &str| {
                s.parse::<i64>()
                    .map_err(|_| format!("`{s}` is not a number"))
            };
            open.insert((number(start)?, key.to_string()), number(total)?);
        }
        self.open = open;
        Ok(())
    }
}

/// The starts of the windows (of `window.size`, every `window.slide`) that hold time `ts`.
fn starts(ts: i64, window: &WindowSpec) -> impl Iterator<Item = i64> {
    let (size, slide) = (window.size, window.slide.max(1));
    let last = ts.div_euclid(slide) * slide;
    (0..)
        .map(move |k| last - k * slide)
        .take_while(move |start| start + size > ts)
}

sluice_plugin_sdk::export_window!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hopping_windows_hold_a_time_in_each_window_that_covers_it() {
        let spec = |size, slide| WindowSpec {
            event_time: "timestamp".into(),
            size,
            slide,
        };
        assert_eq!(starts(90, &spec(60, 60)).collect::<Vec<_>>(), [60]);
        assert_eq!(starts(90, &spec(60, 30)).collect::<Vec<_>>(), [90, 60]);
    }
}
