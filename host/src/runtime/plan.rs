//! Turning a loaded spec into a runnable plan: resolve each plugin, instantiate it with its
//! config and limits, check that each stage's output fits the next stage and the sinks, and
//! choose the dead-letter destination. Every problem is reported at once, at its place in
//! the file; `sluice validate` is exactly this.

use std::sync::Arc;
use std::time::Duration;

use sluice_plugin_sdk::rows::{Field, FieldType};

use super::Host;
use super::chain::{Chain, WindowStage};
use super::stage::TransformStage;
use super::watermark::Watermarks;
use crate::spec::{Loaded, OnViolation, SinkSpec, SpecError, SpecErrors, StepSpec, WindowStepSpec};
use crate::wasm::{Kind, Limits, Plugin, WindowInstance, WindowSpec, describe_schema};

/// The schema of raw source records.
pub fn source_schema() -> Vec<Field> {
    vec![Field {
        name: "value".into(),
        ty: FieldType::Bytes,
        nullable: false,
    }]
}

/// Builds the chain of `loaded`, for running (`once` decides how long a partition at its end
/// must stay silent to count as idle). `partitions` are the source partitions this chain holds
/// from the start (a source that assigns itself, or a single-partition one): each holds the
/// watermark back until it delivers data or proves idle; a consumer group's partitions are
/// taken on as the source reports them assigned.
pub fn chain(
    host: &Host,
    loaded: &Loaded,
    topic: &str,
    partitions: &[i32],
    once: bool,
) -> Result<Chain, SpecErrors> {
    chain_over(host, loaded, source_schema(), topic, partitions, once)
}

/// [`chain`] for rows of `input` rather than raw source records: what `sluice plugin test`
/// runs a window plugin's typed fixture rows through (see [`Chain::process_rows`]).
pub fn chain_over(
    host: &Host,
    loaded: &Loaded,
    input: Vec<Field>,
    topic: &str,
    partitions: &[i32],
    once: bool,
) -> Result<Chain, SpecErrors> {
    let mut errors = super::keys::check(loaded);
    let mut schema = input;
    let mut chain = Chain {
        pipeline: loaded.spec.name.clone(),
        topic: topic.to_owned(),
        pre: Vec::new(),
        window: None,
        post: Vec::new(),
        output: Arc::new(Vec::new()),
        engine: host.engine.clone(),
        pending_early: Default::default(),
    };
    for (i, step) in loaded.spec.steps.iter().enumerate() {
        if let (StepSpec::Window(_), Some(error)) = (step, key_fields(loaded, &schema)) {
            errors.push(error);
        }
        let built = match step {
            StepSpec::Transform(t) => transform(host, loaded, i, t, &schema).map(|stage| {
                schema = stage.output_schema().to_vec();
                let list = if chain.window.is_some() {
                    &mut chain.post
                } else {
                    &mut chain.pre
                };
                list.push(stage);
            }),
            StepSpec::Window(w) => window(host, loaded, i, w, &schema, once).map(|mut stage| {
                for &p in partitions {
                    stage.watermarks.assign(p);
                }
                schema = stage.instance.output_schema().to_vec();
                chain.window = Some(stage);
            }),
        };
        if let Err(error) = built {
            errors.push(error);
            return Err(SpecErrors(errors));
        }
    }
    for (i, sink) in loaded.spec.sinks.iter().enumerate() {
        if let Err(message) = check_sink(sink, &schema) {
            errors.push(loaded.error(&["sinks", &i.to_string(), sink_key(sink)], message));
        }
    }
    chain.output = Arc::new(schema);
    chain.link_columns();
    if errors.is_empty() {
        Ok(chain)
    } else {
        Err(SpecErrors(errors))
    }
}

/// An error when a field of the source's declared key is not in `schema` (the rows reaching
/// the window).
fn key_fields(loaded: &Loaded, schema: &[Field]) -> Option<SpecError> {
    let kafka = loaded.spec.source.config().kafka()?;
    let missing = kafka
        .key
        .iter()
        .find(|k| !schema.iter().any(|f| &f.name == *k))?;
    Some(loaded.error(
        &["source", "kafka", "key"],
        format!(
            "key field `{missing}` is not a field of the rows reaching the window {}",
            describe_schema(schema)
        ),
    ))
}

/// The YAML key of a sink kind.
pub fn sink_key(sink: &SinkSpec) -> &'static str {
    sink.key()
}

fn check_sink(sink: &SinkSpec, schema: &[Field]) -> Result<(), String> {
    crate::sinks::Sink::check(sink, schema, "")
}

fn resolve(
    host: &Host,
    loaded: &Loaded,
    i: usize,
    key: &str,
    reference: &str,
    kind: Kind,
) -> Result<Arc<Plugin>, SpecError> {
    let index = i.to_string();
    let at = |message: String| loaded.error(&["steps", &index, key, "plugin"], message);
    let plugin = host.registry.resolve(reference).map_err(at)?;
    if plugin.kind != kind {
        return Err(at(format!(
            "plugin {} implements the `{:?}` world, but a `{key}` step needs `{kind:?}`",
            plugin.id(),
            plugin.kind
        )));
    }
    Ok(plugin)
}

fn config_text(config: &serde_json::Value) -> String {
    if config.is_null() {
        "{}".into()
    } else {
        config.to_string()
    }
}

/// The limits of step `i` (a `key` step), refused when over the host's ceilings.
fn limits(
    host: &Host,
    loaded: &Loaded,
    i: usize,
    key: &str,
    spec: &crate::spec::LimitsSpec,
) -> Result<Limits, SpecError> {
    let default = Limits::default();
    let limits = Limits {
        memory_bytes: spec.memory.map_or(default.memory_bytes, |b| {
            usize::try_from(b.0).unwrap_or(usize::MAX)
        }),
        call_timeout: spec.call_timeout.map_or(default.call_timeout, |d| d.0),
        max_output_bytes: spec.max_output.map_or(default.max_output_bytes, |b| {
            usize::try_from(b.0).unwrap_or(usize::MAX)
        }),
    };
    match limits.over(&host.ceilings).into_iter().next() {
        None => Ok(limits),
        Some((field, message)) => Err(loaded.error(
            &["steps", &i.to_string(), key, "limits", field],
            format!("`{field}`: {message}"),
        )),
    }
}

fn transform(
    host: &Host,
    loaded: &Loaded,
    i: usize,
    spec: &crate::spec::TransformSpec,
    input: &[Field],
) -> Result<TransformStage, SpecError> {
    let plugin = resolve(host, loaded, i, "transform", &spec.plugin, Kind::Transform)?;
    let label = format!("steps[{i}] transform {}", plugin.id());
    TransformStage::new(
        &host.engine,
        label,
        plugin,
        limits(host, loaded, i, "transform", &spec.limits)?,
        spec.limits.on_violation.unwrap_or(OnViolation::Dlq),
        config_text(&spec.config),
        input.to_vec(),
    )
    .map_err(|e| {
        loaded.error(
            &["steps", &i.to_string(), "transform", "config"],
            e.to_string(),
        )
    })
}

fn window(
    host: &Host,
    loaded: &Loaded,
    i: usize,
    spec: &WindowStepSpec,
    input: &[Field],
    once: bool,
) -> Result<WindowStage, SpecError> {
    let index = i.to_string();
    let plugin = resolve(host, loaded, i, "window", &spec.plugin, Kind::Window)?;
    let event_time = input
        .iter()
        .position(|f| f.name == spec.event_time && f.ty == FieldType::Timestamp);
    let Some(event_time) = event_time else {
        return Err(loaded.error(
            &["steps", &index, "window", "event_time"],
            format!(
                "`{}` is not a timestamp field of the rows reaching this step {}",
                spec.event_time,
                describe_schema(input)
            ),
        ));
    };
    let size = spec.size.millis();
    let slide = spec.slide.map_or(size, |s| s.millis());
    let window_spec = WindowSpec {
        event_time: spec.event_time.clone(),
        size,
        slide,
    };
    let instance = WindowInstance::new(
        &host.engine,
        &plugin.component,
        &plugin.id(),
        &limits(host, loaded, i, "window", &spec.limits)?,
        &config_text(&early_config(spec)),
        input,
        &window_spec,
    )
    .map_err(|e| loaded.error(&["steps", &index, "window", "config"], e.to_string()))?;
    let delay = spec.delay.map_or(0, |d| d.millis());
    let idle_after = if once {
        Duration::ZERO
    } else {
        Duration::from_secs(10)
    };
    Ok(WindowStage {
        label: format!("steps[{i}] window {}", plugin.id()),
        plugin,
        instance,
        event_time,
        input: input.to_vec(),
        size,
        slide,
        late: spec.late,
        policy: spec.limits.on_violation.unwrap_or(OnViolation::Restart),
        early: spec.emit.as_ref().map(|e| e.early.0),
        watermarks: Watermarks::new(delay, idle_after),
        counters: Default::default(),
    })
}

/// The window's config, with `emit_early: true` added when the step asks for early results
/// (the plugin then returns the current value of every window a batch touches).
fn early_config(spec: &WindowStepSpec) -> serde_json::Value {
    let mut config = spec.config.clone();
    if spec.emit.is_some() {
        match &mut config {
            serde_json::Value::Object(map) => {
                map.insert("emit_early".into(), true.into());
            }
            serde_json::Value::Null => config = serde_json::json!({ "emit_early": true }),
            _ => {}
        }
    }
    config
}
