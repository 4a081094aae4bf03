//! `hostile-window`: a `window` plugin that counts rows per window and panics (a wasm trap)
//! on a row whose bytes contain `BOOM`, for the fault-tolerance tests of the window step.
//! It emits nothing: its state is only the row count, which `snapshot` and `restore` keep.
//! Config `{"leak_kib": "6144"}` keeps that much memory per `process` call (not part of the
//! state), so an instance runs out of memory after a few calls while a fresh one restored
//! from a checkpoint goes on: a transient failure.

use sluice_plugin_sdk::{Batch, Field, FieldType, Metadata, Output, Window, WindowSpec};

/// The plugin instance.
pub struct HostileWindow {
    rows: u64,
    leak_kib: usize,
    leaked: Vec<Vec<u8>>,
}

impl Window for HostileWindow {
    fn metadata() -> Metadata {
        sluice_plugin_sdk::metadata!(
            "Counts rows and traps on a row containing BOOM.",
            r#"{"type":"object","properties":{"leak_kib":{"type":"string"},"group_by":{"type":"array"}}}"#,
            "{}"
        )
    }

    fn init(
        config: &str,
        _input: &[Field],
        _window: &WindowSpec,
    ) -> Result<(Self, Vec<Field>), String> {
        let mut cfg = sluice_plugin_sdk::json::parse_config(config)?;
        let leak_kib = match cfg.take_str("leak_kib")? {
            Some(n) => n.parse().map_err(|e| format!("leak_kib: {e}"))?,
            None => 0,
        };
        // `group_by` names the window's groups for the host's key check; this plugin counts
        // all rows together.
        let _ = cfg.take_str_list("group_by")?;
        cfg.finish(&["leak_kib", "group_by"])?;
        let me = Self {
            rows: 0,
            leak_kib,
            leaked: Vec::new(),
        };
        Ok((me, vec![Field::new("rows", FieldType::Int64)]))
    }

    fn process(
        &mut self,
        input: Batch<'_>,
        _watermark: i64,
        _out: &mut Output,
    ) -> Result<(), String> {
        for row in input.rows() {
            if row.windows(4).any(|w| w == b"BOOM") {
                panic!("BOOM");
            }
            self.rows += 1;
        }
        if self.leak_kib > 0 {
            self.leaked.push(vec![1u8; self.leak_kib * 1024]);
        }
        Ok(())
    }

    fn advance(&mut self, _watermark: i64, _out: &mut Output) -> Result<(), String> {
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        self.rows.to_le_bytes().to_vec()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let bytes: [u8; 8] = state.try_into().map_err(|_| "state must be 8 bytes")?;
        self.rows = u64::from_le_bytes(bytes);
        Ok(())
    }
}

sluice_plugin_sdk::export_window!(HostileWindow);
