//! Which pipelines use which plugin: the plugin ids a spec resolves to, and a simple record
//! of the pipelines `sluice run` started (until a pipeline manager answers instead).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::state::PluginUsers;
use crate::spec::{PipelineSpec, StepSpec};
use crate::wasm::Registry;

/// The ids (`name@version`) of the plugins the steps of `spec` resolve to now; references
/// that resolve to nothing are left out.
pub fn plugins_of(registry: &Registry, spec: &PipelineSpec) -> Vec<String> {
    let mut ids: Vec<String> = spec
        .steps
        .iter()
        .map(|step| match step {
            StepSpec::Transform(t) => &t.plugin,
            StepSpec::Window(w) => &w.plugin,
        })
        .filter_map(|reference| registry.resolve(reference).ok())
        .map(|plugin| plugin.id())
        .collect();
    ids.dedup();
    ids
}

/// The plugin ids of each started pipeline.
#[derive(Clone, Default)]
pub struct StartedPlugins {
    by_pipeline: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
}

impl StartedPlugins {
    /// Records that `pipeline` runs with `plugins`.
    pub fn started(&self, pipeline: &str, plugins: Vec<String>) {
        self.lock().insert(pipeline.to_owned(), plugins);
    }

    /// Forgets `pipeline`.
    pub fn stopped(&self, pipeline: &str) {
        self.lock().remove(pipeline);
    }

    /// The lookup the API uses: pipelines whose plugins include the id.
    pub fn lookup(&self) -> PluginUsers {
        let this = self.clone();
        Arc::new(move |id: &str| {
            this.lock()
                .iter()
                .filter(|(_, plugins)| plugins.iter().any(|p| p == id))
                .map(|(name, _)| name.clone())
                .collect()
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<String>>> {
        self.by_pipeline.lock().unwrap_or_else(|e| e.into_inner())
    }
}
