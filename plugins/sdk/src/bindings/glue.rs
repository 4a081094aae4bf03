//! What the `sluice:plugin@0.2` export macros call: keeps the plugin instance, its input
//! schema and its reused [`Output`] in the macro's thread-local slot, checks each input batch
//! ([`Columns::new`], per column), calls the [`Transform`] / [`Window`] trait, and lays the
//! output out as one arena (the only per-call allocation the canonical ABI needs).

use super::types as wit;
use crate::columns::{Column, Columns, Dictionary};
use crate::plugin::{Metadata, Output, Transform, Window, WindowSpec};
use crate::rows::{Field, FieldType};
use std::cell::RefCell;
use std::thread::LocalKey;

/// A plugin instance with its input schema and output.
pub struct Instance<T> {
    plugin: T,
    input: Vec<Field>,
    out: Output,
}

/// The slot holding a plugin instance between calls.
pub type Slot<T> = LocalKey<RefCell<Option<Instance<T>>>>;

const NOT_INITIALISED: &str = "not initialised";

super::conversions!();

fn column_from_wit(c: &wit::Column) -> Column {
    Column {
        validity: c.validity,
        values: c.values,
        data: c.data,
        dictionary: c.dictionary.as_ref().map(|d| Dictionary {
            offsets: d.offsets,
            entries: d.entries,
        }),
    }
}

fn column_to_wit(c: &Column) -> wit::Column {
    wit::Column {
        validity: c.validity,
        values: c.values,
        data: c.data,
        dictionary: c.dictionary.map(|d| wit::Dictionary {
            offsets: d.offsets,
            entries: d.entries,
        }),
    }
}

/// The output of a call as the WIT record, leaving `out` empty for the next call.
fn output_to_wit(out: &mut Output) -> Result<wit::Output, String> {
    out.check()?;
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    out.rows.finish(&mut arena, &mut columns);
    let failures = out
        .failures
        .drain(..)
        .map(|(index, reason)| wit::Failure { index, reason });
    let output = wit::Output {
        rows: wit::Batch {
            len: out.rows.len() as u32,
            arena,
            columns: columns.iter().map(column_to_wit).collect(),
        },
        origins: std::mem::take(&mut out.origins),
        failures: failures.collect(),
    };
    out.clear();
    Ok(output)
}

/// Runs `f` on the initialised instance in `slot` with `input` (if any) and converts its
/// output.
fn call<T: 'static>(
    slot: &'static Slot<T>,
    input: Option<&wit::Batch>,
    f: impl FnOnce(&mut T, Option<&Columns<'_>>, &mut Output) -> Result<(), String>,
) -> Result<wit::Output, String> {
    slot.with(|cell| {
        let mut guard = cell.borrow_mut();
        let instance = guard.as_mut().ok_or(NOT_INITIALISED)?;
        instance.out.clear();
        let columns: Vec<Column> = input
            .map(|b| b.columns.iter().map(column_from_wit).collect())
            .unwrap_or_default();
        let batch = input
            .map(|b| Columns::new(&instance.input, b.len as usize, &b.arena, &columns))
            .transpose()
            .map_err(|e| format!("the host sent a malformed batch: {}", e.message))?;
        let result = f(&mut instance.plugin, batch.as_ref(), &mut instance.out);
        match result {
            Ok(()) => output_to_wit(&mut instance.out),
            Err(e) => {
                instance.out.clear();
                Err(e)
            }
        }
    })
}

/// `metadata` of the transform world.
pub fn transform_metadata<T: Transform>() -> wit::Metadata {
    metadata_to_wit(T::metadata())
}

/// `metadata` of the window world.
pub fn window_metadata<T: Window>() -> wit::Metadata {
    metadata_to_wit(T::metadata())
}

/// `init` of the transform world: replaces any previous instance (none is left on error).
pub fn transform_init<T: Transform>(
    slot: &'static Slot<T>,
    config: String,
    input: Vec<wit::Field>,
) -> Result<Vec<wit::Field>, String> {
    slot.with(|cell| cell.borrow_mut().take());
    let input = schema_from_wit(input);
    let (plugin, schema) = T::init(&config, &input)?;
    let out = plugin.output(&schema);
    slot.with(|cell| *cell.borrow_mut() = Some(Instance { plugin, input, out }));
    Ok(schema_to_wit(schema))
}

/// `process` of the transform world.
pub fn transform_process<T: Transform>(
    slot: &'static Slot<T>,
    input: wit::Batch,
) -> Result<wit::Output, String> {
    call(slot, Some(&input), |t, batch, out| {
        t.process(batch.expect("an input batch"), out)
    })
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
    let input = schema_from_wit(input);
    let (plugin, schema) = T::init(&config, &input, &spec)?;
    let out = plugin.output(&schema);
    slot.with(|cell| *cell.borrow_mut() = Some(Instance { plugin, input, out }));
    Ok(schema_to_wit(schema))
}

/// `process` of the window world.
pub fn window_process<T: Window>(
    slot: &'static Slot<T>,
    input: wit::Batch,
    watermark: i64,
) -> Result<wit::Output, String> {
    call(slot, Some(&input), |t, batch, out| {
        t.process(batch.expect("an input batch"), watermark, out)
    })
}

/// `advance` of the window world.
pub fn window_advance<T: Window>(
    slot: &'static Slot<T>,
    watermark: i64,
) -> Result<wit::Output, String> {
    call(slot, None, |t, _, out| t.advance(watermark, out))
}

/// `snapshot` of the window world; empty before `init`.
pub fn window_snapshot<T: Window>(slot: &'static Slot<T>) -> Vec<u8> {
    slot.with(|cell| {
        cell.borrow()
            .as_ref()
            .map(|i| i.plugin.snapshot())
            .unwrap_or_default()
    })
}

/// `restore` of the window world.
pub fn window_restore<T: Window>(slot: &'static Slot<T>, state: Vec<u8>) -> Result<(), String> {
    slot.with(|cell| {
        cell.borrow_mut()
            .as_mut()
            .ok_or(NOT_INITIALISED)?
            .plugin
            .restore(&state)
    })
}
