//! `hostile-window`: a `window` plugin that counts rows per window and panics (a wasm trap)
//! on a row whose bytes contain `BOOM`, for the fault-tolerance tests of the window step.
//! It emits nothing: its state is only the row count, which `snapshot` and `restore` keep.

use sluice_plugin_sdk::{Batch, Field, FieldType, Metadata, Output, Window, WindowSpec};

/// The plugin instance.
pub struct HostileWindow {
    rows: u64,
}

impl Window for HostileWindow {
    fn metadata() -> Metadata {
        sluice_plugin_sdk::metadata!(
            "Counts rows and traps on a row containing BOOM.",
            r#"{"type":"object"}"#,
            "{}"
        )
    }

    fn init(
        _config: &str,
        _input: &[Field],
        _window: &WindowSpec,
    ) -> Result<(Self, Vec<Field>), String> {
        Ok((Self { rows: 0 }, vec![Field::new("rows", FieldType::Int64)]))
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
