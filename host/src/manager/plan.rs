//! Plan: what applying a set of spec texts (a pipelines folder, as `sluice plan` sends it, or
//! specs given to `POST /api/v1/pipelines:plan`) would do to the pipelines of this host,
//! without doing it: which would start, stop, switch plugins in place (only their steps
//! change, see [`super::switch`]), restart, or stay as they are; each change with its
//! field-level diff, and specs that would be refused with their errors. Applying is the folder
//! (the watcher) or the API, as before.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::state::SpecErrorView;
use super::{Manager, State};

/// One spec text to plan.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    /// Where it comes from (a file name), for the messages.
    #[serde(default)]
    pub file: Option<String>,
    /// The spec, YAML (or JSON) as written.
    pub text: String,
}

/// What applying a spec would do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A new pipeline starts.
    Create,
    /// The pipeline's file is gone: it stops and is removed.
    Delete,
    /// Only its steps change: the new chain takes over at a batch boundary, the source goes on.
    Switch,
    /// Other fields change: it stops (final flush, commit, checkpoint) and starts again.
    Restart,
    /// The spec would be refused; the running version (if any) stays.
    Invalid,
    /// No change.
    Unchanged,
}

/// One field that differs: its path (`sinks[0].lake.url`), old and new value (`null` when
/// absent).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    pub old: Json,
    pub new: Json,
}

/// The plan of one pipeline.
#[derive(Debug, Serialize)]
pub struct PlanItem {
    pub name: String,
    pub action: Action,
    /// Its spec file (given, or the one the host runs it from).
    pub file: Option<String>,
    /// Its state now, when the host has it.
    pub state: Option<State>,
    /// The field-level diff against the spec in force (create: every field; delete: none).
    pub diff: Vec<FieldChange>,
    /// Why the spec would be refused.
    pub errors: Vec<SpecErrorView>,
    /// A remark (a switch that cannot happen in place, a held pipeline).
    pub note: Option<String>,
}

/// The plan of a set of specs.
#[derive(Debug, Serialize)]
pub struct Plan {
    /// Items that change something (all but `unchanged`).
    pub changes: usize,
    pub items: Vec<PlanItem>,
}

impl Manager {
    /// The plan of `specs`. `complete`: they are the whole folder, so pipelines of the host
    /// that none of them names would be deleted.
    pub async fn plan(&self, specs: Vec<PlanSpec>, complete: bool) -> Plan {
        let mut items = Vec::new();
        let mut named = Vec::new();
        for (i, spec) in specs.into_iter().enumerate() {
            let origin = spec.file.clone().unwrap_or_else(|| format!("specs[{i}]"));
            let item = match self.validated(&origin, &spec.text).await {
                Ok(loaded) => {
                    named.push(loaded.spec.name.clone());
                    self.plan_valid(&loaded.spec.name, spec.file, &spec.text)
                }
                Err(errors) => {
                    let name = name_in(&spec.text).unwrap_or(origin);
                    named.push(name.clone());
                    PlanItem {
                        state: self.state(&name),
                        name,
                        action: Action::Invalid,
                        file: spec.file,
                        diff: Vec::new(),
                        errors: errors.0.iter().map(SpecErrorView::from).collect(),
                        note: None,
                    }
                }
            };
            items.push(item);
        }
        if complete {
            for name in self.names().into_iter().filter(|n| !named.contains(n)) {
                let file = self
                    .entries()
                    .get(&name)
                    .map(|e| e.file.display().to_string());
                items.push(PlanItem {
                    state: self.state(&name),
                    name,
                    action: Action::Delete,
                    file,
                    diff: Vec::new(),
                    errors: Vec::new(),
                    note: None,
                });
            }
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        Plan {
            changes: items
                .iter()
                .filter(|i| i.action != Action::Unchanged)
                .count(),
            items,
        }
    }

    fn plan_valid(&self, name: &str, file: Option<String>, text: &str) -> PlanItem {
        let current = self
            .entries()
            .get(name)
            .map(|e| (e.raw.clone(), e.state, e.held, e.file.clone()));
        let new = as_json(text);
        let Some((raw, state, held, own_file)) = current else {
            return PlanItem {
                name: name.to_owned(),
                action: Action::Create,
                file,
                state: None,
                diff: diff(&Json::Null, &new),
                errors: Vec::new(),
                note: None,
            };
        };
        let changes = diff(&as_json(&raw), &new);
        let (action, note) = if changes.is_empty() {
            (Action::Unchanged, None)
        } else if super::switch::only_steps_differ(&raw, text) {
            if state == State::Running && !held {
                (Action::Switch, None)
            } else {
                let note = format!(
                    "Only its steps change, but it is {}: the new spec is kept and takes effect when it runs again.",
                    state.as_str()
                );
                (Action::Switch, Some(note))
            }
        } else if held {
            let note = format!("It is {} and stays so with the new spec.", state.as_str());
            (Action::Restart, Some(note))
        } else {
            (Action::Restart, None)
        };
        PlanItem {
            name: name.to_owned(),
            action,
            file: file.or_else(|| Some(own_file.display().to_string())),
            state: Some(state),
            diff: changes,
            errors: Vec::new(),
            note,
        }
    }
}

/// The spec as JSON (YAML and JSON texts compare by value); `null` when it does not parse.
fn as_json(text: &str) -> Json {
    serde_yaml::from_str(text).unwrap_or(Json::Null)
}

/// The `name:` of a spec text, if it has one.
fn name_in(text: &str) -> Option<String> {
    as_json(text)["name"].as_str().map(str::to_owned)
}

/// The leaves that differ between `old` and `new`, by path.
pub fn diff(old: &Json, new: &Json) -> Vec<FieldChange> {
    let mut out = BTreeMap::new();
    walk("", old, new, &mut out);
    out.into_values().collect()
}

fn walk(path: &str, old: &Json, new: &Json, out: &mut BTreeMap<String, FieldChange>) {
    if old == new {
        return;
    }
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (old, new) {
        (Json::Object(a), Json::Object(b)) => {
            for key in a.keys().chain(b.keys()) {
                let (x, y) = (
                    a.get(key).unwrap_or(&Json::Null),
                    b.get(key).unwrap_or(&Json::Null),
                );
                walk(&join(key), x, y, out);
            }
        }
        (Json::Array(a), Json::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let (x, y) = (
                    a.get(i).unwrap_or(&Json::Null),
                    b.get(i).unwrap_or(&Json::Null),
                );
                walk(&format!("{path}[{i}]"), x, y, out);
            }
        }
        // A new spec: one change per top-level field.
        (Json::Null, Json::Object(b)) if path.is_empty() => {
            for (key, y) in b {
                walk(&join(key), &Json::Null, y, out);
            }
        }
        _ => {
            let change = FieldChange {
                path: path.to_owned(),
                old: old.clone(),
                new: new.clone(),
            };
            out.insert(path.to_owned(), change);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_diff_names_each_changed_leaf() {
        let old = json!({"name": "p", "steps": [{"window": {"size": "4h"}}], "sinks": [{"lake": {"url": "a"}}]});
        let new = json!({"name": "p", "steps": [{"window": {"size": "1h"}}], "sinks": [{"lake": {"url": "a"}}, {"live": {}}]});
        let paths: Vec<(String, Json, Json)> = diff(&old, &new)
            .into_iter()
            .map(|c| (c.path, c.old, c.new))
            .collect();
        assert_eq!(
            paths,
            [
                ("sinks[1]".to_owned(), Json::Null, json!({"live": {}})),
                ("steps[0].window.size".to_owned(), json!("4h"), json!("1h")),
            ]
        );
        assert!(diff(&old, &old).is_empty());
        assert_eq!(diff(&Json::Null, &json!({"name": "p"}))[0].path, "name");
    }
}
