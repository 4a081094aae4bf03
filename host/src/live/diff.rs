//! The row-level diff of two results views (a shadow run's baseline and candidate): window
//! by window, over the final values both hold. Early values are not compared: the two runs
//! reach a window's end at their own pace, and only final rows go to the sinks.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value as Json};

use super::view::ResultsView;

/// How two views' rows differ.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ViewDiff {
    /// The rows' key field (`station`).
    pub key: Option<String>,
    /// Windows (key and window start) final in both.
    pub windows_compared: usize,
    /// Of those, with equal rows.
    pub windows_equal: usize,
    /// Of those, with rows that differ.
    pub windows_differing: usize,
    /// Final in the baseline, not (yet) in the candidate.
    pub only_baseline: usize,
    /// Final in the candidate, not (yet) in the baseline.
    pub only_candidate: usize,
    /// Per field: in how many compared windows its value differs or only one side has it.
    pub fields: BTreeMap<String, usize>,
    /// The first differing windows (by window start, then key), in full.
    pub first: Vec<RowDiff>,
}

/// One window whose rows differ.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RowDiff {
    /// The key's value (`"14 ST-UNION SQ"`).
    pub key: String,
    /// The window.
    pub window_start: String,
    /// The fields that differ.
    pub fields: Vec<String>,
    /// The baseline's row.
    pub baseline: Map<String, Json>,
    /// The candidate's row.
    pub candidate: Map<String, Json>,
}

/// Compares the final rows of `candidate` with `baseline`'s; keeps `first` differing windows
/// in full.
pub fn diff(baseline: &ResultsView, candidate: &ResultsView, first: usize) -> ViewDiff {
    let mut out = ViewDiff {
        key: baseline.key.clone().or_else(|| candidate.key.clone()),
        ..Default::default()
    };
    let mut differing = Vec::new();
    for (key, series) in &baseline.series {
        for (window, entry) in series.iter().filter(|(_, e)| e.is_final) {
            let other = candidate.series.get(key).and_then(|s| s.get(window));
            let Some(other) = other.filter(|e| e.is_final) else {
                out.only_baseline += 1;
                continue;
            };
            out.windows_compared += 1;
            let fields = differing_fields(&entry.row, &other.row);
            if fields.is_empty() {
                out.windows_equal += 1;
                continue;
            }
            out.windows_differing += 1;
            for field in &fields {
                *out.fields.entry(field.clone()).or_default() += 1;
            }
            differing.push(RowDiff {
                key: key.clone(),
                window_start: window.clone(),
                fields,
                baseline: entry.row.clone(),
                candidate: other.row.clone(),
            });
        }
    }
    for (key, series) in &candidate.series {
        let theirs = baseline.series.get(key);
        out.only_candidate += series
            .iter()
            .filter(|(w, e)| {
                e.is_final && !theirs.and_then(|s| s.get(*w)).is_some_and(|b| b.is_final)
            })
            .count();
    }
    differing.sort_by(|a, b| {
        (a.window_start.as_str(), a.key.as_str()).cmp(&(b.window_start.as_str(), b.key.as_str()))
    });
    differing.truncate(first);
    out.first = differing;
    out
}

/// The fields whose values differ, or that one row lacks, sorted.
fn differing_fields(a: &Map<String, Json>, b: &Map<String, Json>) -> Vec<String> {
    let mut fields: Vec<String> = a
        .iter()
        .filter(|(name, value)| b.get(*name) != Some(value))
        .map(|(name, _)| name.clone())
        .chain(b.keys().filter(|name| !a.contains_key(*name)).cloned())
        .collect();
    fields.sort();
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::RowsEvent;
    use serde_json::json;

    fn view(is_final: bool, rows: Json) -> ResultsView {
        let rows = rows.as_array().unwrap().iter();
        let event = RowsEvent {
            is_final,
            rows: rows.map(|r| r.as_object().unwrap().clone()).collect(),
            key: Some("station".into()),
        };
        let mut view = ResultsView::default();
        view.apply(&event);
        view
    }

    #[test]
    fn compares_final_windows_field_by_field() {
        let baseline = view(
            true,
            json!([
                {"station": "A", "window_start": "w1", "entries": 10, "exits": 5},
                {"station": "A", "window_start": "w2", "entries": 7, "exits": 1},
                {"station": "B", "window_start": "w1", "entries": 3, "exits": 3},
                {"station": "C", "window_start": "w1", "entries": 1, "exits": 1},
            ]),
        );
        let mut candidate = view(
            true,
            json!([
                {"station": "A", "window_start": "w1", "entries": 10, "exits": 5, "traffic": 15},
                {"station": "A", "window_start": "w2", "entries": 8, "exits": 1, "traffic": 9},
                {"station": "B", "window_start": "w1", "entries": 3, "exits": 3, "traffic": 6},
                {"station": "D", "window_start": "w1", "entries": 2, "exits": 2, "traffic": 4},
            ]),
        );
        candidate.apply(&RowsEvent {
            is_final: false,
            rows: vec![
                json!({"station": "C", "window_start": "w1", "entries": 1, "exits": 1})
                    .as_object()
                    .unwrap()
                    .clone(),
            ],
            key: Some("station".into()),
        });
        let d = diff(&baseline, &candidate, 2);
        assert_eq!(d.key.as_deref(), Some("station"));
        assert_eq!(
            (d.windows_compared, d.windows_differing, d.windows_equal),
            (3, 3, 0)
        );
        assert_eq!(
            (d.only_baseline, d.only_candidate),
            (1, 1),
            "C is early there, D new"
        );
        assert_eq!(
            d.fields,
            BTreeMap::from([("entries".into(), 1), ("traffic".into(), 3)])
        );
        assert_eq!(d.first.len(), 2);
        assert_eq!(
            (d.first[0].key.as_str(), d.first[0].window_start.as_str()),
            ("A", "w1")
        );
        assert_eq!(d.first[1].key, "B", "window w1 first, then by key");
        assert_eq!(d.first[0].fields, ["traffic"]);
        let same = diff(&baseline, &baseline, 10);
        assert_eq!((same.windows_compared, same.windows_equal), (4, 4));
        assert!(same.first.is_empty() && same.fields.is_empty());
    }
}
