//! The host's boundary check of what a plugin call returns (`wasm::check_output`) on
//! arbitrary output: rows under a schema, origins, failures and an output limit. The input
//! is `[n] [type byte; n] [inputs] [max u16 LE] [k] [u16 LE end; k] [m] [origin; m]
//! [f] ([index] [len] [reason byte; len]; f) data`; a type byte is `type % 6`, high bit for
//! nullable, and a reason is its bytes repeated `len` times (to reach the length cap).
//! Whatever the input, the check returns, never panics, and what it accepts is what the host
//! relies on: rows that decode under the schema, origins and failures inside the input,
//! failures in order with one per record and reasons within the cap, and the whole within
//! the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_host::wasm::{Batch, Failure, MAX_REASON_BYTES, Output, Rows, check_output};
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

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }
}

/// Schema, input count, output limit and the plugin's output.
fn parse(input: &[u8]) -> Option<(Vec<Field>, usize, usize, Output)> {
    let mut input = Input(input);
    let n = usize::from(input.byte()? % 8);
    let schema = input
        .take(n)?
        .iter()
        .enumerate()
        .map(|(i, &t)| Field {
            name: format!("f{i}"),
            ty: TYPES[usize::from(t & 0x7f) % TYPES.len()],
            nullable: t & 0x80 != 0,
        })
        .collect();
    let inputs = usize::from(input.byte()?);
    let max_bytes = usize::from(input.u16()?);
    let k = usize::from(input.byte()? % 16);
    let ends = (0..k)
        .map(|_| input.u16().map(u32::from))
        .collect::<Option<Vec<u32>>>()?;
    let m = usize::from(input.byte()? % 16);
    let origins = input.take(m)?.iter().map(|&o| u32::from(o)).collect();
    let f = usize::from(input.byte()? % 8);
    let mut failures = Vec::with_capacity(f);
    for _ in 0..f {
        let index = u32::from(input.byte()?);
        let len = usize::from(input.byte()? % 32);
        let times = usize::from(input.byte()?);
        let reason = String::from_utf8_lossy(input.take(len)?).repeat(times);
        failures.push(Failure { index, reason });
    }
    let data = input.0.to_vec();
    let output = Output {
        rows: Batch { data, ends },
        origins,
        failures,
    };
    Some((schema, inputs, max_bytes, output))
}

fuzz_target!(|input: &[u8]| {
    let Some((schema, inputs, max_bytes, output)) = parse(input) else {
        return;
    };
    let rows = output.rows.ends.len();
    let checked = match check_output(output, Some(inputs), max_bytes, &schema) {
        Ok(checked) => checked,
        Err(why) => {
            assert!(why.starts_with("returned "), "{why}");
            return;
        }
    };
    let Rows::Packed(packed) = &checked.rows else {
        panic!("the output of a 0.1 call stays packed")
    };
    assert_eq!(packed.ends.len(), rows);
    let mut start = 0usize;
    for &end in &packed.ends {
        let row = &packed.data[start..end as usize];
        decode_row(&schema, row).expect("an accepted row decodes");
        start = end as usize;
    }
    assert!(checked.origins.is_empty() || checked.origins.len() == rows);
    assert!(checked.origins.iter().all(|&o| (o as usize) < inputs));
    let indices: Vec<u32> = checked.failures.iter().map(|(i, _)| *i).collect();
    assert!(indices.windows(2).all(|w| w[0] < w[1]), "{indices:?}");
    assert!(indices.iter().all(|&i| (i as usize) < inputs));
    assert!(checked.failures.len() <= inputs);
    for (_, reason) in &checked.failures {
        assert!(
            reason.len() <= MAX_REASON_BYTES + '…'.len_utf8(),
            "{}",
            reason.len()
        );
    }
    let bytes = packed.data.len() + checked.failures.iter().map(|(_, r)| r.len()).sum::<usize>();
    assert!(bytes <= max_bytes);
});
