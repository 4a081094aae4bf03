//! `hostile`: a pass-through `transform` plugin that misbehaves on purpose, for the
//! fault-tolerance tests. Each row goes out unchanged unless its bytes contain a marker:
//!
//! - `BOOM`: panics (a wasm trap),
//! - `LOOP`: never returns (the host's per-call deadline stops it),
//! - `BOMB`: allocates until the memory limit stops it,
//! - `HUGE`: emits a 4 MiB row (over a small `max_output`).
//!
//! Config: `{"init": "trap"}` panics in `init`, `{"init": "loop"}` never returns from it;
//! `{"leak_kib": "4096"}` keeps that much memory
//! per `process` call, so an instance runs out of memory after a few calls while a fresh
//! one succeeds (a transient failure that `on_violation: restart` recovers from).

use sluice_plugin_sdk::v0_1::{Metadata, Output, Transform};
use sluice_plugin_sdk::{Batch, Field};

/// The plugin instance.
pub struct Hostile {
    leak_kib: usize,
    leaked: Vec<Vec<u8>>,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl Hostile {
    fn misbehave(row: &[u8], out: &mut Output) {
        if contains(row, b"BOOM") {
            panic!("BOOM");
        }
        if contains(row, b"LOOP") {
            let mut n = 0u64;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        if contains(row, b"BOMB") {
            let mut hoard = Vec::new();
            loop {
                hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
            }
        }
        if contains(row, b"HUGE") {
            out.rows.put_bytes(&vec![b'x'; 4 << 20]);
            out.rows.end_row();
        }
    }
}

impl Transform for Hostile {
    fn metadata() -> Metadata {
        sluice_plugin_sdk::metadata!(
            "Passes rows through, except marked ones: BOOM traps, LOOP loops, BOMB eats memory, HUGE emits 4 MiB.",
            r#"{"type":"object","properties":{"init":{"enum":["ok","trap","loop"]},"leak_kib":{"type":"string"}}}"#,
            "{}"
        )
    }

    fn init(config: &str, input: &[Field]) -> Result<(Self, Vec<Field>), String> {
        let mut cfg = sluice_plugin_sdk::json::parse_config(config)?;
        match cfg.take_str("init")?.as_deref() {
            Some("trap") => panic!("init trap requested by the config"),
            Some("loop") => loop {
                std::hint::spin_loop();
            },
            _ => {}
        }
        let leak_kib = match cfg.take_str("leak_kib")? {
            Some(n) => n.parse().map_err(|e| format!("leak_kib: {e}"))?,
            None => 0,
        };
        cfg.finish(&["init", "leak_kib"])?;
        let me = Self {
            leak_kib,
            leaked: Vec::new(),
        };
        Ok((me, input.to_vec()))
    }

    fn process(&mut self, input: Batch<'_>, out: &mut Output) -> Result<(), String> {
        if self.leak_kib > 0 {
            self.leaked
                .push(std::hint::black_box(vec![1u8; self.leak_kib << 10]));
        }
        for (i, row) in input.rows().enumerate() {
            let rows = out.rows.len();
            Self::misbehave(row, out);
            if out.rows.len() > rows {
                out.origins.push(i as u32);
            }
            out.rows.data.extend_from_slice(row);
            out.rows.end_row();
            out.origins.push(i as u32);
        }
        Ok(())
    }
}

sluice_plugin_sdk_v0_1::export_transform!(Hostile);
