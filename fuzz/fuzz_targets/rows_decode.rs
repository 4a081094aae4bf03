//! The row codec's readers (`Batch::validate`, `Batch::rows`, `decode_row`, `Accessor`) on
//! arbitrary plugin output. The input is a schema, row end offsets and the row data:
//! `[n] [type byte; n] [k] [u16 LE end; k] data`, where a type byte is `type % 6`, with the
//! high bit for nullable. A row that decodes must encode back to the same bytes, and each
//! field read alone must equal the field of the whole row.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_plugin_sdk::rows::{Accessor, Batch, BatchBuilder, Field, FieldType, Value, decode_row};

const TYPES: [FieldType; 6] = [
    FieldType::Str,
    FieldType::Int64,
    FieldType::Float64,
    FieldType::Boolean,
    FieldType::Timestamp,
    FieldType::Bytes,
];

/// Splits the input into schema, end offsets and data.
fn split(input: &[u8]) -> Option<(Vec<Field>, Vec<u32>, &[u8])> {
    let (&n, rest) = input.split_first()?;
    let n = usize::from(n % 16);
    let (types, rest) = rest.split_at_checked(n)?;
    let schema = types
        .iter()
        .enumerate()
        .map(|(i, &t)| Field {
            name: format!("f{i}"),
            ty: TYPES[usize::from(t & 0x7f) % TYPES.len()],
            nullable: t & 0x80 != 0,
        })
        .collect();
    let (&k, rest) = rest.split_first()?;
    let (ends, data) = rest.split_at_checked(usize::from(k % 16) * 2)?;
    let ends = ends
        .chunks_exact(2)
        .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    Some((schema, ends, data))
}

fn encode(field: &Field, value: Value<'_>) -> Vec<u8> {
    let mut builder = BatchBuilder::new();
    builder.put_value(field, value);
    builder.data
}

fn check_row(schema: &[Field], row: &[u8]) {
    let values = match decode_row(schema, row) {
        Ok(values) => values,
        Err(e) => {
            assert!(e.offset <= row.len(), "{e}");
            return;
        }
    };
    assert_eq!(values.len(), schema.len());
    let mut again = Vec::with_capacity(row.len());
    for (field, &value) in schema.iter().zip(&values) {
        let alone = Accessor::new(schema, &field.name)
            .expect("the field is in the schema")
            .read(row)
            .expect("a field of a decodable row reads alone");
        assert_eq!(encode(field, alone), encode(field, value));
        again.extend(encode(field, value));
    }
    assert_eq!(again, row);
}

fuzz_target!(|input: &[u8]| {
    let Some((schema, ends, data)) = split(input) else {
        return;
    };
    check_row(&schema, data);
    let batch = Batch::new(data, &ends);
    let valid = batch.validate().is_ok();
    let rows: Vec<&[u8]> = batch.rows().collect();
    assert_eq!(rows.len(), ends.len());
    if valid {
        assert_eq!(rows.concat(), data);
    }
    for row in rows {
        check_row(&schema, row);
        for field in &schema {
            let _ = Accessor::new(&schema, &field.name).map(|a| a.read(row));
        }
    }
});
