//! The results view of a pipeline: the recent windows of every key, kept from the rows its
//! live sink publishes, so that a dashboard opened after the data was processed (or after a
//! restart: the view is saved under `<state>/live/<pipeline>.json`) starts with the current
//! state: the latest window of every key and the recent windows of the busiest keys.
//!
//! A row's key is its first string field not named `window_*` (the dashboard's grouping); its
//! window is its `window_start` (rows without one keep only their latest value per key). A
//! final value is never replaced by an early one of the same window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::event::RowsEvent;

/// Windows kept per key (the dashboard's chart shows the last 60).
pub const KEEP_WINDOWS: usize = 90;
/// Keys kept; rows of further keys are not kept in the view (they still go out live).
pub const MAX_KEYS: usize = 20_000;

/// One window of one key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(super) struct Entry {
    #[serde(rename = "final")]
    pub(super) is_final: bool,
    pub(super) row: Map<String, Json>,
}

/// The recent windows of every key of one pipeline.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ResultsView {
    /// key → window_start → value.
    pub(super) series: BTreeMap<String, BTreeMap<String, Entry>>,
    /// The rows' key field, as the last rows event named it.
    #[serde(default)]
    pub(super) key: Option<String>,
    /// Changed since it was last saved.
    #[serde(skip)]
    pub(super) dirty: bool,
}

/// What `GET /api/v1/pipelines/{name}/results` answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ResultsSnapshot {
    /// Keys in the view.
    pub keys: usize,
    /// The numeric field that ranks keys (the first by name), if any.
    pub measure: Option<String>,
    /// The busiest keys, busiest first (sum of `measure` over their kept windows).
    pub busiest: Vec<String>,
    /// The rows, as the live channel's `rows` events: the final ones, then the early ones;
    /// windows in time order.
    pub events: Vec<RowsEvent>,
}

impl ResultsView {
    /// Takes in the rows of a `rows` event.
    pub fn apply(&mut self, event: &RowsEvent) {
        if event.key.is_some() {
            self.key.clone_from(&event.key);
        }
        for row in &event.rows {
            let Some(key) = key_of(event.key.as_deref(), row) else {
                continue;
            };
            let window = row
                .get("window_start")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned();
            if !self.series.contains_key(&key) && self.series.len() >= MAX_KEYS {
                continue;
            }
            let series = self.series.entry(key).or_default();
            if series
                .get(&window)
                .is_some_and(|e| e.is_final && !event.is_final)
            {
                continue;
            }
            if window.is_empty() {
                series.clear();
            }
            let entry = Entry {
                is_final: event.is_final,
                row: row.clone(),
            };
            series.insert(window, entry);
            while series.len() > KEEP_WINDOWS {
                series.pop_first();
            }
            self.dirty = true;
        }
    }

    /// The latest window of every key and the last `windows` windows of the `top` busiest.
    pub fn snapshot(&self, top: usize, windows: usize) -> ResultsSnapshot {
        let measure = self
            .series
            .values()
            .flat_map(|s| s.values())
            .next()
            .and_then(|e| e.row.iter().find(|(_, v)| v.is_number()))
            .map(|(name, _)| name.clone());
        let total = |series: &BTreeMap<String, Entry>| -> f64 {
            let Some(m) = &measure else { return 0.0 };
            series
                .values()
                .filter_map(|e| e.row.get(m).and_then(Json::as_f64))
                .sum()
        };
        let mut ranked: Vec<(&String, f64)> =
            self.series.iter().map(|(k, s)| (k, total(s))).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let busiest: Vec<String> = ranked.iter().take(top).map(|(k, _)| (*k).clone()).collect();
        let mut order: Vec<(&str, &str, &Entry)> = Vec::new();
        for (key, series) in &self.series {
            let keep = if busiest.contains(key) {
                windows.max(1)
            } else {
                1
            };
            for (window, entry) in series.iter().rev().take(keep) {
                order.push((window, key, entry));
            }
        }
        order.sort_by(|a, b| a.0.cmp(b.0).then_with(|| a.1.cmp(b.1)));
        let (mut finals, mut early) = (RowsEvent::default(), RowsEvent::default());
        finals.is_final = true;
        let key = self.key.clone();
        finals.key.clone_from(&key);
        early.key = key;
        for (_, _, entry) in order {
            let into = if entry.is_final {
                &mut finals
            } else {
                &mut early
            };
            into.rows.push(entry.row.clone());
        }
        ResultsSnapshot {
            keys: self.series.len(),
            measure,
            busiest,
            events: [finals, early]
                .into_iter()
                .filter(|e| !e.rows.is_empty())
                .collect(),
        }
    }
}

/// The value of the event's key field, or else of the row's first string field not named
/// `window_*`.
fn key_of(field: Option<&str>, row: &Map<String, Json>) -> Option<String> {
    if let Some(field) = field {
        return row
            .get(field)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    }
    row.iter()
        .find(|(name, value)| value.is_string() && !name.starts_with("window_"))
        .and_then(|(_, value)| value.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(is_final: bool, rows: Json) -> RowsEvent {
        let rows = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect();
        RowsEvent {
            is_final,
            rows,
            key: None,
        }
    }

    #[test]
    fn keeps_the_final_value_and_ranks_the_busiest() {
        let mut view = ResultsView::default();
        view.apply(&rows(
            true,
            json!([
                {"station": "A", "window_start": "2024-01-01 00:00:00", "entries": 10},
                {"station": "B", "window_start": "2024-01-01 00:00:00", "entries": 500},
            ]),
        ));
        view.apply(&rows(
            false,
            json!([
                {"station": "A", "window_start": "2024-01-01 00:00:00", "entries": 1},
                {"station": "A", "window_start": "2024-01-01 04:00:00", "entries": 7},
            ]),
        ));
        let snap = view.snapshot(1, 60);
        assert_eq!(snap.keys, 2);
        assert_eq!(snap.measure.as_deref(), Some("entries"));
        assert_eq!(snap.busiest, ["B"]);
        assert_eq!(snap.events.len(), 2);
        assert!(snap.events[0].is_final);
        let finals: Vec<&Json> = snap.events[0].rows.iter().map(|r| &r["entries"]).collect();
        // A's latest window is the early one; B's only window is final.
        assert_eq!(finals, [&json!(500)]);
        assert_eq!(snap.events[1].rows[0]["entries"], 7);
        // With A as the busiest, its final window comes back too, before the early one.
        let both = view.snapshot(2, 60);
        assert_eq!(both.events[0].rows.len(), 2);
    }

    #[test]
    fn windows_per_key_are_bounded() {
        let mut view = ResultsView::default();
        for h in 0..(KEEP_WINDOWS + 10) {
            let start = format!("2024-01-{:02} {:02}:00:00", 1 + h / 24, h % 24);
            view.apply(&rows(
                true,
                json!([{"station": "A", "window_start": start, "entries": h}]),
            ));
        }
        let snap = view.snapshot(1, usize::MAX);
        assert_eq!(snap.events[0].rows.len(), KEEP_WINDOWS);
        assert_eq!(
            snap.events[0].rows[0]["entries"], 10,
            "the oldest went first"
        );
    }
}
