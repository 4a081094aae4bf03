//! The host's packed rows as the column batch of a `sluice:plugin@0.2` call
//! ([`ColumnInput`]): raw source records (one `bytes` or `str` field) are laid out directly as
//! offsets plus data; other schemas go through the SDK's column builder. The buffers are
//! kept and reused from call to call.

use sluice_plugin_sdk::columns::{Column, ColumnsBuilder, convert};
use sluice_plugin_sdk::rows::{Batch as Rows, Field, FieldType};

use super::bindings::{Batch, v0_2};

/// The input of one 0.2 instance: its schema and the reused buffers of its calls.
pub struct ColumnInput {
    schema: Vec<Field>,
    builder: ColumnsBuilder,
    columns: Vec<Column>,
    batch: v0_2::Batch,
}

impl ColumnInput {
    /// Buffers for batches of `schema`.
    pub fn new(schema: &[Field]) -> Self {
        ColumnInput {
            schema: schema.to_vec(),
            builder: ColumnsBuilder::new(schema),
            columns: Vec::new(),
            batch: v0_2::Batch {
                len: 0,
                arena: Vec::new(),
                columns: Vec::new(),
            },
        }
    }

    /// `rows` as a column batch; an error names a row that does not decode under the schema.
    pub fn fill(&mut self, rows: &Batch) -> Result<&v0_2::Batch, String> {
        let packed = Rows::new(&rows.data, &rows.ends);
        match self.schema.as_slice() {
            [f] if !f.nullable && matches!(f.ty, FieldType::Bytes | FieldType::Str) => {
                self.raw_records(packed)?
            }
            _ => self.any_rows(packed)?,
        }
        self.batch.len = packed.len() as u32;
        Ok(&self.batch)
    }

    /// One bytes field: each row is a `u32` length and the value; the arena is the `n + 1`
    /// offsets, then the values back to back (8-aligned).
    fn raw_records(&mut self, rows: Rows<'_>) -> Result<(), String> {
        let n = rows.len();
        let values = rows.data.len().saturating_sub(4 * n);
        let data_at = ((n + 1) * 4).next_multiple_of(8);
        let arena = &mut self.batch.arena;
        arena.clear();
        arena.resize(data_at, 0);
        arena.reserve(values);
        let mut end = 0u32;
        for (i, row) in rows.rows().enumerate() {
            let value = row
                .get(4..)
                .filter(|v| row[..4] == (v.len() as u32).to_le_bytes())
                .ok_or_else(|| format!("input row {i} is not one length-prefixed value"))?;
            arena.extend_from_slice(value);
            end += value.len() as u32;
            arena[(i + 1) * 4..(i + 2) * 4].copy_from_slice(&end.to_le_bytes());
        }
        self.batch.columns.clear();
        self.batch.columns.push(v0_2::Column {
            validity: None,
            values: 0,
            data: data_at as u32,
            dictionary: None,
        });
        Ok(())
    }

    /// Any schema: each value decoded and pushed into its column.
    fn any_rows(&mut self, rows: Rows<'_>) -> Result<(), String> {
        self.builder.clear();
        let converted = convert::from_rows(rows, &mut self.builder);
        if let Err(e) = converted {
            self.builder.clear();
            return Err(format!("input {}", e.message));
        }
        self.builder
            .finish(&mut self.batch.arena, &mut self.columns);
        self.batch.columns.clear();
        self.batch
            .columns
            .extend(self.columns.iter().map(|c| v0_2::Column {
                validity: c.validity,
                values: c.values,
                data: c.data,
                dictionary: c.dictionary.map(|d| v0_2::Dictionary {
                    offsets: d.offsets,
                    entries: d.entries,
                }),
            }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin_sdk::columns::{Columns, Dictionary};
    use sluice_plugin_sdk::rows::BatchBuilder;

    fn packed(schema: &[Field], values: &[&[u8]]) -> Batch {
        let mut b = BatchBuilder::new();
        for v in values {
            for _ in schema {
                b.put_bytes(v);
            }
            b.end_row();
        }
        Batch {
            data: b.data,
            ends: b.ends,
        }
    }

    fn read(schema: &[Field], batch: &v0_2::Batch) -> Vec<Vec<u8>> {
        let columns: Vec<Column> = (batch.columns.iter())
            .map(|c| Column {
                validity: c.validity,
                values: c.values,
                data: c.data,
                dictionary: c.dictionary.map(|d| Dictionary {
                    offsets: d.offsets,
                    entries: d.entries,
                }),
            })
            .collect();
        let view = Columns::new(schema, batch.len as usize, &batch.arena, &columns).unwrap();
        let last = view.var_at(schema.len() - 1);
        (0..view.len())
            .map(|i| last.bytes(i).unwrap().to_vec())
            .collect()
    }

    #[test]
    fn raw_records_and_other_schemas_give_the_same_values() {
        let values: [&[u8]; 4] = [b"a,b", b"", b"xyz", &[0xff; 9]];
        let raw = [Field::new("value", FieldType::Bytes)];
        let mut input = ColumnInput::new(&raw);
        for _ in 0..2 {
            let batch = input.fill(&packed(&raw, &values)).unwrap();
            assert_eq!(read(&raw, batch), values.map(<[u8]>::to_vec));
        }
        let two = [
            Field::new("a", FieldType::Bytes),
            Field::new("b", FieldType::Bytes),
        ];
        let mut input = ColumnInput::new(&two);
        let batch = input.fill(&packed(&two, &values)).unwrap();
        assert_eq!(read(&two, batch), values.map(<[u8]>::to_vec));
    }

    #[test]
    fn rows_that_do_not_decode_are_named() {
        let raw = [Field::new("value", FieldType::Bytes)];
        let mut bad = packed(&raw, &[b"ok", b"also"]);
        bad.data[6] = 9; // row 1 claims 9 bytes
        let e = ColumnInput::new(&raw).fill(&bad).unwrap_err();
        assert_eq!(e, "input row 1 is not one length-prefixed value");
        let two = [
            Field::new("a", FieldType::Int64),
            Field::new("b", FieldType::Bytes),
        ];
        let e = ColumnInput::new(&two).fill(&bad).unwrap_err();
        assert!(e.starts_with("input row 0, field `a`"), "{e}");
    }
}
