//! Whether a pipeline's state splits by source partition, and so whether it may run as
//! parallel tasks (see `tasks`): every row of one window group must reach one task. That
//! holds when the pipeline keeps no window state, or when the window's `group_by` covers the
//! key the source declares (`source.kafka.key`, what `sluice produce --key` writes): records
//! with equal group values then have equal keys and share a partition. Anything else runs as
//! one task, and a spec that could run more (a Kafka source without `parallelism: 1`) is
//! refused with both fixes named: wrong sums are never an option.

use crate::spec::{Loaded, PipelineSpec, SpecError, StepSpec};

/// Where a pipeline's state lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateScope {
    /// One state per source partition: tasks over partitions, checkpoints per partition.
    Partition,
    /// One state for the whole pipeline: one task.
    Pipeline,
}

/// The `group_by` of the window step, if the spec has one and its config names it.
fn window_group_by(spec: &PipelineSpec) -> Option<(usize, Option<Vec<String>>)> {
    spec.steps
        .iter()
        .enumerate()
        .find_map(|(i, step)| match step {
            StepSpec::Window(w) => {
                let group_by = w.config.get("group_by").and_then(|g| {
                    g.as_array()?
                        .iter()
                        .map(|v| v.as_str().map(str::to_owned))
                        .collect()
                });
                Some((i, group_by))
            }
            StepSpec::Transform(_) => None,
        })
}

/// The key the source declares (empty: none).
fn declared_key(spec: &PipelineSpec) -> &[String] {
    spec.source
        .config()
        .kafka()
        .map_or(&[][..], |kafka| &kafka.key)
}

/// Where the state of `spec` lives.
pub fn scope(spec: &PipelineSpec) -> StateScope {
    let Some((_, group_by)) = window_group_by(spec) else {
        return StateScope::Partition;
    };
    let key = declared_key(spec);
    match group_by {
        Some(group_by) if !key.is_empty() && key.iter().all(|k| group_by.contains(k)) => {
            StateScope::Partition
        }
        _ => StateScope::Pipeline,
    }
}

/// Tasks a host runs `spec` as when it holds `partitions` source partitions.
pub fn tasks(spec: &PipelineSpec, partitions: usize) -> usize {
    if scope(spec) == StateScope::Pipeline {
        return 1;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    spec.parallelism
        .unwrap_or(cores)
        .min(partitions.max(1))
        .max(1)
}

/// The errors of `parallelism` and of a window over an undeclared key, at their place.
pub fn check(loaded: &Loaded) -> Vec<SpecError> {
    let spec = &loaded.spec;
    let mut errors = Vec::new();
    if spec.parallelism == Some(0) {
        errors.push(loaded.error(
            &["parallelism"],
            "`parallelism` must be at least 1 (or left out: one task per core)",
        ));
    }
    let could_be_parallel = spec.source.config().kafka().is_some() && spec.parallelism != Some(1);
    if scope(spec) == StateScope::Partition || !could_be_parallel {
        return errors;
    }
    let Some((i, group_by)) = window_group_by(spec) else {
        return errors;
    };
    let key = declared_key(spec);
    let grouped = match &group_by {
        Some(g) => format!("groups by [{}]", g.join(", ")),
        None => "names no `group_by` (one group over all rows)".to_owned(),
    };
    let declared = if key.is_empty() {
        "declares no key".to_owned()
    } else {
        format!("is keyed by [{}]", key.join(", "))
    };
    let fix = match group_by.as_deref() {
        Some([first, ..]) => format!("`source.kafka.key: [{first}]`"),
        _ => "`source.kafka.key: [...]` with fields of `group_by`".to_owned(),
    };
    let message = format!(
        "this window {grouped} but the source {declared}, so the rows of one group may be in \
         several partitions and reach several tasks, which would give wrong results. Either \
         declare what the topic is keyed by, covered by `group_by` ({fix}, as `sluice \
         produce --key` writes it), or run the pipeline as one task (`parallelism: 1`)"
    );
    let index = i.to_string();
    let at: &[&str] = match (spec.parallelism, &group_by) {
        (Some(_), _) => &["parallelism"],
        (None, Some(_)) => &["steps", &index, "window", "config", "group_by"],
        (None, None) => &["steps", &index, "window"],
    };
    errors.push(loaded.error(at, message));
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(source: &str, extra: &str) -> Loaded {
        let text = format!(
            "version: 1\nname: p\nsource:\n{source}\nsteps:\n  - window:\n      plugin: w@0.1.0\n      \
             event_time: timestamp\n      size: 4h\n      config:\n        group_by: [station]\n\
             sinks:\n  - stdout: {{}}\n{extra}"
        );
        crate::spec::load_str("p.yaml", &text, &|_: &str| None).unwrap()
    }

    const KAFKA: &str = "  kafka:\n    brokers: embedded\n    topic: t";

    #[test]
    fn a_window_over_the_declared_key_splits_by_partition() {
        let keyed = load(&format!("{KAFKA}\n    key: [station]"), "");
        assert_eq!(scope(&keyed.spec), StateScope::Partition);
        assert!(check(&keyed).is_empty());
        let parallel = load(&format!("{KAFKA}\n    key: [station]"), "parallelism: 3\n");
        assert_eq!(tasks(&parallel.spec, 6), 3);
        assert_eq!(
            tasks(&parallel.spec, 2),
            2,
            "never more than the partitions"
        );
    }

    #[test]
    fn an_undeclared_key_is_refused_naming_both_fixes() {
        for key in ["", "\n    key: [ca, unit, scp]"] {
            let loaded = load(&format!("{KAFKA}{key}"), "");
            assert_eq!(scope(&loaded.spec), StateScope::Pipeline);
            let errors = check(&loaded);
            assert_eq!(errors.len(), 1);
            let text = errors[0].to_string();
            assert!(text.contains("source.kafka.key: [station]"), "{text}");
            assert!(text.contains("parallelism: 1"), "{text}");
            assert!(text.contains("group_by"), "{text}");
        }
        let one = load(KAFKA, "parallelism: 1\n");
        assert!(check(&one).is_empty());
        assert_eq!(tasks(&one.spec, 6), 1);
        let file = load("  file:\n    paths: [a.csv]", "");
        assert!(check(&file).is_empty(), "one partition: one task");
        let zero = load(&format!("{KAFKA}\n    key: [station]"), "parallelism: 0\n");
        assert!(check(&zero)[0].to_string().contains("at least 1"));
    }
}
