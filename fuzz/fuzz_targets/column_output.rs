//! The host's boundary check of what a `sluice:plugin@0.2` call returns
//! (`wasm::check_column_output`) on arbitrary column batches: a schema, a row count, one
//! descriptor per column pointing anywhere, and an arena of any bytes. The input is
//! `[n] [type byte; n] [packed] [max u16 LE] [len u24 LE] ([flags] [validity u16] [values u16]
//! [data u16] [dict offsets u16] [entries u16]; n) arena`; a type byte is `type % 6`, high bit
//! for nullable; flag bit 0 sets `validity`, bit 1 `dictionary`. Whatever the input, the check
//! returns and never panics; what it accepts packed decodes row by row under the schema, and
//! what it accepts as columns reads back as rows (or a selection of them) or fails with an
//! error, never a panic; rows read back never take more than the output limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_host::wasm::{Rows, check_column_output, v0_2};
use sluice_plugin_sdk::rows::{Field, FieldType, decode_row};

const TYPES: [FieldType; 6] = [
    FieldType::Str,
    FieldType::Int64,
    FieldType::Float64,
    FieldType::Boolean,
    FieldType::Timestamp,
    FieldType::Bytes,
];

/// A cursor over the fuzz input.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(2)?;
        Some(u32::from(u16::from_le_bytes([b[0], b[1]])))
    }

    /// A row count: up to 2^24, so that small arenas can claim many rows.
    fn count(&mut self) -> Option<u32> {
        let b = self.take(3)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }
}

/// Schema, whether to pack, output limit and the plugin's output.
fn parse(input: &[u8]) -> Option<(Vec<Field>, bool, usize, v0_2::Output)> {
    let mut input = Input(input);
    let n = usize::from(input.byte()? % 6);
    let schema: Vec<Field> = input
        .take(n)?
        .iter()
        .enumerate()
        .map(|(i, &t)| Field {
            name: format!("f{i}"),
            ty: TYPES[usize::from(t & 0x7f) % TYPES.len()],
            nullable: t & 0x80 != 0,
        })
        .collect();
    let packed = input.byte()? & 1 == 1;
    let max_bytes = input.u32()? as usize;
    let len = input.count()?;
    let mut columns = Vec::with_capacity(n);
    for _ in 0..n {
        let flags = input.byte()?;
        let validity = input.u32()?;
        let values = input.u32()?;
        let data = input.u32()?;
        let offsets = input.u32()?;
        let entries = input.u32()?;
        columns.push(v0_2::Column {
            validity: (flags & 1 == 1).then_some(validity),
            values,
            data,
            dictionary: (flags & 2 == 2).then_some(v0_2::Dictionary { offsets, entries }),
        });
    }
    let output = v0_2::Output {
        rows: v0_2::Batch {
            len,
            arena: input.0.to_vec(),
            columns,
        },
        origins: Vec::new(),
        failures: Vec::new(),
    };
    Some((schema, packed, max_bytes, output))
}

fuzz_target!(|input: &[u8]| {
    let Some((schema, packed, max_bytes, output)) = parse(input) else {
        return;
    };
    let rows = output.rows.len as usize;
    let checked = match check_column_output(output, None, max_bytes, &schema, packed) {
        Ok(checked) => checked,
        Err(why) => {
            assert!(why.starts_with("returned "), "{why}");
            return;
        }
    };
    assert_eq!(checked.rows.len(), rows);
    assert_eq!(matches!(checked.rows, Rows::Packed(_)), packed);
    if let Rows::Columns(columns) = &checked.rows {
        let every_other: Vec<u32> = (0..rows as u32).step_by(2).collect();
        let (selected, bad) = columns.select(&every_other);
        assert_eq!(selected.len() + bad.len(), every_other.len());
    }
    let Ok(batch) = checked.rows.into_packed() else {
        return;
    };
    assert_eq!(batch.ends.len(), rows);
    assert!(
        batch.data.len() <= max_bytes,
        "{} > {max_bytes}",
        batch.data.len()
    );
    let mut start = 0usize;
    for &end in &batch.ends {
        decode_row(&schema, &batch.data[start..end as usize]).expect("a packed row decodes");
        start = end as usize;
    }
});
