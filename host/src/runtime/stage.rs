//! One plugin step of a chain, with what is needed to restart it: the plugin, its limits,
//! its config and its input schema. A transform that traps or breaks a limit is replaced
//! by a fresh instance (it holds no state); its batch is dead-lettered.

use std::sync::Arc;

use sluice_plugin_sdk::rows::Field;

use crate::wasm::{
    Batch, Limits, Plugin, PluginEngine, PluginError, PluginOutput, TransformInstance,
};

/// A transform step.
pub struct TransformStage {
    /// `steps[N] transform`.
    pub label: String,
    /// The plugin.
    pub plugin: Arc<Plugin>,
    limits: Limits,
    config: String,
    input: Vec<Field>,
    instance: TransformInstance,
    /// Counters for status and metrics.
    pub counters: Arc<super::counters::StageCounters>,
}

impl TransformStage {
    /// Instantiates and initialises the plugin.
    pub fn new(
        engine: &PluginEngine,
        label: String,
        plugin: Arc<Plugin>,
        limits: Limits,
        config: String,
        input: Vec<Field>,
    ) -> Result<Self, PluginError> {
        let instance = TransformInstance::new(
            engine,
            &plugin.component,
            &plugin.id(),
            &limits,
            &config,
            &input,
        )?;
        Ok(Self {
            label,
            plugin,
            limits,
            config,
            input,
            instance,
            counters: Default::default(),
        })
    }

    /// The schema of its output rows.
    pub fn output_schema(&self) -> &[Field] {
        self.instance.output_schema()
    }

    /// Linear memory of its plugin instance (bytes).
    pub fn memory_bytes(&self) -> usize {
        self.instance.memory_bytes()
    }

    /// Processes a batch; after a trap or a limit the instance is replaced.
    pub fn process(
        &mut self,
        engine: &PluginEngine,
        batch: &Batch,
    ) -> Result<PluginOutput, PluginError> {
        let result = self.instance.process(batch);
        if let Err(PluginError::Trap { .. } | PluginError::Limit { .. }) = &result {
            let plugin = &self.plugin;
            match TransformInstance::new(
                engine,
                &plugin.component,
                &plugin.id(),
                &self.limits,
                &self.config,
                &self.input,
            ) {
                Ok(instance) => self.instance = instance,
                Err(error) => {
                    tracing::error!(%error, stage = %self.label, "Could not restart the plugin.")
                }
            }
        }
        result
    }
}
