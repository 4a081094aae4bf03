//! What the `sluice:plugin@0.1` export macros call: converts between the generated WIT
//! types and the SDK's (whole buffers moved or borrowed, never per row), keeps the plugin
//! instance in the macro's thread-local slot, and calls the [`Transform`] / [`Window`] trait
//! of [`crate::v0_1`].

use super::types as wit;
use sluice_plugin_sdk::rows::{Batch, Field, FieldType};
use sluice_plugin_sdk::v0_1::{Metadata, Output, Transform, Window, WindowSpec};
use std::cell::RefCell;
use std::thread::LocalKey;

/// The slot holding a plugin instance between calls.
pub type Slot<T> = LocalKey<RefCell<Option<T>>>;

const NOT_INITIALISED: &str = "not initialised";

sluice_plugin_sdk::bindings::conversions!();

fn output_to_wit(mut out: Output) -> wit::Output {
    out.rows.discard_row();
    let (data, ends) = out.rows.into_parts();
    let failures = out
        .failures
        .into_iter()
        .map(|(index, reason)| wit::Failure { index, reason });
    wit::Output {
        rows: wit::Batch { data, ends },
        origins: out.origins,
        failures: failures.collect(),
    }
}

/// Runs `f` on the initialised instance in `slot` and converts its output.
fn with_instance<T: 'static>(
    slot: &'static Slot<T>,
    f: impl FnOnce(&mut T, &mut Output) -> Result<(), String>,
) -> Result<wit::Output, String> {
    slot.with(|cell| {
        let mut guard = cell.borrow_mut();
        let instance = guard.as_mut().ok_or(NOT_INITIALISED)?;
        let mut out = Output::default();
        f(instance, &mut out)?;
        Ok(output_to_wit(out))
    })
}

/// `metadata` of the transform world.
pub fn transform_metadata<T: Transform>() -> wit::Metadata {
    metadata_to_wit(T::metadata())
}

/// `init` of the transform world: replaces any previous instance (none is left on error).
pub fn transform_init<T: Transform>(
    slot: &'static Slot<T>,
    config: String,
    input: Vec<wit::Field>,
) -> Result<Vec<wit::Field>, String> {
    slot.with(|cell| cell.borrow_mut().take());
    let (instance, schema) = T::init(&config, &schema_from_wit(input))?;
    slot.with(|cell| *cell.borrow_mut() = Some(instance));
    Ok(schema_to_wit(schema))
}

/// `process` of the transform world.
pub fn transform_process<T: Transform>(
    slot: &'static Slot<T>,
    input: wit::Batch,
) -> Result<wit::Output, String> {
    with_instance(slot, |t, out| {
        t.process(Batch::new(&input.data, &input.ends), out)
    })
}

/// `metadata` of the window world.
pub fn window_metadata<T: Window>() -> wit::Metadata {
    metadata_to_wit(T::metadata())
}

/// `init` of the window world: replaces any previous instance (none is left on error).
pub fn window_init<T: Window>(
    slot: &'static Slot<T>,
    config: String,
    input: Vec<wit::Field>,
    window: wit::WindowSpec,
) -> Result<Vec<wit::Field>, String> {
    slot.with(|cell| cell.borrow_mut().take());
    let spec = WindowSpec {
        event_time: window.event_time,
        size: window.size,
        slide: window.slide,
    };
    let (instance, schema) = T::init(&config, &schema_from_wit(input), &spec)?;
    slot.with(|cell| *cell.borrow_mut() = Some(instance));
    Ok(schema_to_wit(schema))
}

/// `process` of the window world.
pub fn window_process<T: Window>(
    slot: &'static Slot<T>,
    input: wit::Batch,
    watermark: i64,
) -> Result<wit::Output, String> {
    with_instance(slot, |t, out| {
        t.process(Batch::new(&input.data, &input.ends), watermark, out)
    })
}

/// `advance` of the window world.
pub fn window_advance<T: Window>(
    slot: &'static Slot<T>,
    watermark: i64,
) -> Result<wit::Output, String> {
    with_instance(slot, |t, out| t.advance(watermark, out))
}

/// `snapshot` of the window world; empty before `init`.
pub fn window_snapshot<T: Window>(slot: &'static Slot<T>) -> Vec<u8> {
    slot.with(|cell| cell.borrow().as_ref().map(T::snapshot).unwrap_or_default())
}

/// `restore` of the window world.
pub fn window_restore<T: Window>(slot: &'static Slot<T>, state: Vec<u8>) -> Result<(), String> {
    slot.with(|cell| {
        cell.borrow_mut()
            .as_mut()
            .ok_or(NOT_INITIALISED)?
            .restore(&state)
    })
}
