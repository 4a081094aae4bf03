//! One transform step of a chain, with what is needed to restart it (the plugin, its limits,
//! its config and its input schema) and its policy when the plugin traps or breaks a limit
//! (`on_violation`): `dlq` bisects the batch on fresh instances to dead-letter only the
//! culprit records ([`super::bisect`]); `restart` first retries the whole batch once on a
//! fresh instance; `fail` stops the pipeline, naming the culprit record when one is found.

use std::sync::Arc;

use sluice_plugin_sdk::rows::Field;

use crate::spec::OnViolation;
use crate::wasm::{
    Limits, Plugin, PluginEngine, PluginError, PluginOutput, Rows, TransformInstance,
};

/// A transform step.
pub struct TransformStage {
    /// `steps[N] transform`.
    pub label: String,
    /// The plugin.
    pub plugin: Arc<Plugin>,
    /// What a trap or a broken limit does.
    pub policy: OnViolation,
    limits: Limits,
    config: String,
    input: Vec<Field>,
    pub(super) instance: TransformInstance,
    /// Whether its output stays columns for a 0.2 step after it (see `keep_columns`).
    columns: bool,
    /// Counters for status and metrics.
    pub counters: Arc<super::counters::StageCounters>,
}

/// Why a stage gave no output for a batch.
#[derive(Debug)]
pub enum StageError {
    /// The plugin returned an error for the whole batch: its records are dead-lettered.
    Batch(PluginError),
    /// A trap or a broken limit under `on_violation: fail`, with the input index of the
    /// record that causes it when bisecting the batch found one.
    Fatal {
        /// The violation.
        error: PluginError,
        /// Index of the culprit in the batch.
        index: Option<u32>,
    },
}

/// Whether `error` is a trap or a broken limit (not an error the plugin returned).
pub(super) fn is_violation(error: &PluginError) -> bool {
    matches!(error, PluginError::Trap { .. } | PluginError::Limit { .. })
}

impl TransformStage {
    /// Instantiates and initialises the plugin.
    pub fn new(
        engine: &PluginEngine,
        label: String,
        plugin: Arc<Plugin>,
        limits: Limits,
        policy: OnViolation,
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
            policy,
            limits,
            config,
            input,
            instance,
            columns: false,
            counters: Default::default(),
        })
    }

    /// Whether its plugin is built for `sluice:plugin@0.2` (column batches).
    pub fn takes_columns(&self) -> bool {
        self.instance.takes_columns()
    }

    /// Hands its output to the next step as columns (the next step is a 0.2 plugin) instead
    /// of packing it for the host.
    pub fn keep_columns(&mut self, keep: bool) {
        self.columns = keep;
        self.instance.keep_columns(keep);
    }

    /// The schema of its output rows.
    pub fn output_schema(&self) -> &[Field] {
        self.instance.output_schema()
    }

    /// Linear memory of its plugin instance (bytes).
    pub fn memory_bytes(&self) -> usize {
        self.instance.memory_bytes()
    }

    /// Processes a batch, applying the stage's policy when the plugin traps or breaks a
    /// limit. With `dlq` and `restart` the output's `failures` include the culprit records,
    /// indexed in `batch`, with the violation as the reason; the other rows keep their order.
    pub fn process(
        &mut self,
        engine: &PluginEngine,
        batch: &Rows,
    ) -> Result<PluginOutput, StageError> {
        let error = match self.instance.process(batch) {
            Ok(out) => return Ok(out),
            Err(e) if !is_violation(&e) => return Err(StageError::Batch(e)),
            Err(e) => e,
        };
        self.restart(engine);
        if self.policy == OnViolation::Restart {
            tracing::warn!(stage = %self.label, %error,
                "The plugin broke a limit; it was restarted and the batch is retried once.");
            match self.instance.process(batch) {
                Ok(out) => return Ok(out),
                Err(e) if !is_violation(&e) => return Err(StageError::Batch(e)),
                Err(_) => self.restart(engine),
            }
        }
        tracing::warn!(stage = %self.label, %error, records = batch.len(),
            "The plugin broke a limit; bisecting the batch to find the culprit records.");
        let packed = batch.to_packed().map_err(|e| {
            StageError::Batch(PluginError::Guest {
                plugin: self.plugin.id(),
                message: format!("its input does not read as rows: {}", e.message),
            })
        })?;
        // The parts come back packed, to be put together.
        let keep = self.columns;
        self.keep_columns(false);
        let out = self.bisect(engine, &packed, &error);
        self.keep_columns(keep);
        if self.policy == OnViolation::Fail {
            return Err(StageError::Fatal {
                index: out.culprits.first().map(|(i, _)| *i),
                error: out.culprits.into_iter().next().map_or(error, |(_, e)| e),
            });
        }
        Ok(out.output)
    }

    /// Replaces the instance by a fresh one (a trapped instance cannot be entered again).
    pub(super) fn restart(&mut self, engine: &PluginEngine) {
        let plugin = &self.plugin;
        match TransformInstance::new(
            engine,
            &plugin.component,
            &plugin.id(),
            &self.limits,
            &self.config,
            &self.input,
        ) {
            Ok(instance) => {
                self.instance = instance;
                self.instance.keep_columns(self.columns);
            }
            Err(error) => {
                tracing::error!(%error, stage = %self.label, "Could not restart the plugin.")
            }
        }
    }
}
