//! Switching the steps of a running pipeline in place: when a new spec changes only its
//! `steps` (a plugin upgrade, a new config), the new chain is built beside the running one
//! and handed to its processing thread at the next batch boundary, where it takes over the
//! window state through the checkpoint taken there (snapshot → restore). The source keeps
//! consuming and nothing is re-read; if the new chain cannot take over (another output, a
//! state it refuses) the caller restarts the pipeline with the new spec instead.

use std::time::Duration;

use serde_json::Value as Json;

use super::Manager;
use super::run::last_batch_ms;
use super::state::State;
use crate::spec::Loaded;

/// How long a switch waits for the processing thread to reach a batch boundary (an idle
/// Kafka source ticks about once a second).
const SWITCH_WAIT: Duration = Duration::from_secs(30);

impl Manager {
    /// Puts the steps of `loaded` (text `raw`) in force in the running pipeline `name`
    /// without stopping its source. False when that is not possible; the caller then
    /// restarts the run.
    pub(super) async fn switch_in_place(&self, name: &str, loaded: &Loaded, raw: &str) -> bool {
        let target = self.with(name, |e| {
            let running = e.state == State::Running && !e.held;
            let target = e.run.as_ref().and_then(|r| r.swap.clone());
            target.filter(|_| running && only_steps_differ(&e.raw, raw))
        });
        let Some(Some(target)) = target else {
            return false;
        };
        let (host, once, spec) = (self.inner.host.clone(), self.inner.once, loaded.clone());
        let (topic, partitions) = (target.topic.clone(), target.partitions.clone());
        let built =
            tokio::task::spawn_blocking(move || host.chain(&spec, &topic, &partitions, once)).await;
        let chain = match built {
            Ok(Ok(chain)) => chain,
            Ok(Err(errors)) => {
                tracing::warn!(pipeline = name, %errors, "The new steps could not be built beside the running ones; restarting the pipeline.");
                return false;
            }
            Err(error) => {
                tracing::error!(pipeline = name, %error, "Building the new steps panicked.");
                return false;
            }
        };
        let stages = chain.stages();
        let asked_ms = crate::runtime::now_ms();
        let outcome = target.swap.request(chain);
        let waited = tokio::task::spawn_blocking(move || outcome.recv_timeout(SWITCH_WAIT)).await;
        match waited {
            Ok(Ok(Ok(held))) => {
                // The pause (from the old chain's last batch, or the request when it was
                // idle, to the new chain's first batch) is measured once the new chain has
                // processed a batch, and shown as `switch`.
                let generation = self.with(name, |e| {
                    let previous = last_batch_ms(&e.stages).max(asked_ms);
                    e.stages = stages;
                    (e.generation, previous)
                });
                tracing::info!(
                    pipeline = name,
                    held_us = held.as_micros() as u64,
                    "The new steps took over the running pipeline at a checkpoint; the source did not stop."
                );
                if let Some((generation, previous)) = generation {
                    let manager = self.clone();
                    let name = name.to_owned();
                    tokio::spawn(async move {
                        manager.measure_pause(&name, generation, previous).await
                    });
                }
                true
            }
            Ok(Ok(Err(reason))) => {
                tracing::warn!(pipeline = name, %reason, "The running steps cannot hand over to the new ones; restarting the pipeline with the new spec.");
                false
            }
            _ => {
                target.swap.cancel();
                tracing::warn!(
                    pipeline = name,
                    "The running pipeline reached no batch boundary in {SWITCH_WAIT:?}; restarting it with the new spec."
                );
                false
            }
        }
    }
}

/// True when two spec texts (YAML or JSON) are the same but for their `steps`.
pub(super) fn only_steps_differ(old: &str, new: &str) -> bool {
    let parse = |text: &str| {
        let mut value = serde_yaml::from_str::<Json>(text).ok()?;
        let steps = value.as_object_mut()?.remove("steps");
        Some((value, steps))
    };
    match (parse(old), parse(new)) {
        (Some((old, old_steps)), Some((new, new_steps))) => old == new && old_steps != new_steps,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::only_steps_differ;

    #[test]
    fn only_a_change_of_steps_switches_in_place() {
        let a = "name: p\nsource: { file: { paths: [a] } }\nsteps: [ { transform: { plugin: x@=0.1.0 } } ]\n";
        let b = "name: p\nsource: { file: { paths: [a] } }\nsteps: [ { transform: { plugin: x@=0.1.1 } } ]\n";
        let c = "name: p\nsource: { file: { paths: [b] } }\nsteps: [ { transform: { plugin: x@=0.1.1 } } ]\n";
        let json = r#"{"name":"p","source":{"file":{"paths":["a"]}},"steps":[{"transform":{"plugin":"x@=0.1.1"}}]}"#;
        assert!(only_steps_differ(a, b));
        assert!(
            only_steps_differ(a, json),
            "YAML and JSON bodies compare by value"
        );
        assert!(!only_steps_differ(a, a), "nothing changed");
        assert!(!only_steps_differ(a, c), "the source changed");
        assert!(!only_steps_differ(a, "not: [valid"), "unparsable");
    }
}
