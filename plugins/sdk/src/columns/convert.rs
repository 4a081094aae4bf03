//! Between the column layout (`sluice:plugin@0.2`) and the row encoding (`sluice:plugin@0.1`):
//! the host adapts 0.1 plugins with these, and writes rows for sinks. Both directions check
//! every value (offsets, keys, UTF-8, nulls) and return an error naming the row and field.

use super::{Columns, ColumnsBuilder};
use crate::rows::{Batch, BatchBuilder, DecodeError, FieldType, RowReader, Value};

/// The value of row `row` in column `column` of `batch`.
pub fn value<'a>(batch: &Columns<'a>, column: usize, row: usize) -> Result<Value<'a>, DecodeError> {
    let field = &batch.schema()[column];
    let bad = |what: &str| DecodeError {
        offset: 0,
        message: format!("row {row}, field `{}`: {what}", field.name),
    };
    let null = batch.validity(column).is_some_and(|v| !v.get(row));
    if null {
        return Ok(Value::Null);
    }
    Ok(match field.ty {
        FieldType::Int64 => Value::Int64(batch.fixed::<i64>(column)?.get(row)),
        FieldType::Timestamp => Value::Timestamp(batch.fixed::<i64>(column)?.get(row)),
        FieldType::Float64 => Value::Float64(batch.fixed::<f64>(column)?.get(row)),
        FieldType::Boolean => Value::Boolean(batch.bits_at(column).get(row)),
        FieldType::Str => {
            let bytes = batch
                .var_at(column)
                .bytes(row)
                .ok_or_else(|| bad("its offsets or key point outside the batch"))?;
            Value::Str(std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?)
        }
        FieldType::Bytes => Value::Bytes(
            batch
                .var_at(column)
                .bytes(row)
                .ok_or_else(|| bad("its offsets or key point outside the batch"))?,
        ),
    })
}

/// Appends every row of `batch` to `out` in the row encoding, as long as `out` stays within
/// `max_bytes`: a batch of a few bytes can name the same large value on every row (through
/// dictionary keys, or offsets between null rows), so its rows can be far larger than it.
pub fn to_rows(
    batch: &Columns<'_>,
    out: &mut BatchBuilder,
    max_bytes: usize,
) -> Result<(), DecodeError> {
    let schema = batch.schema();
    for row in 0..batch.len() {
        for (column, field) in schema.iter().enumerate() {
            let v = value(batch, column, row)?;
            if out.data.len().saturating_add(value_len(&v)) > max_bytes {
                return Err(over(row, max_bytes));
            }
            out.put_value(field, v);
        }
        out.end_row();
    }
    Ok(())
}

/// About the bytes a value takes in a row (its text or bytes and their length).
pub fn value_len(v: &Value<'_>) -> usize {
    match v {
        Value::Str(s) => s.len() + 4,
        Value::Bytes(b) => b.len() + 4,
        _ => 9,
    }
}

/// The error of rows that grew past `max_bytes` at `row`.
pub fn over(row: usize, max_bytes: usize) -> DecodeError {
    DecodeError {
        offset: 0,
        message: format!(
            "row {row}: the rows take more than {max_bytes} bytes once read (values repeated \
             through dictionary keys or offsets)"
        ),
    }
}

/// Appends every row of `rows` (row-encoded under `out`'s schema) to `out`.
pub fn from_rows(rows: Batch<'_>, out: &mut ColumnsBuilder) -> Result<(), DecodeError> {
    let schema = out.schema().to_vec();
    for (i, row) in rows.rows().enumerate() {
        let mut reader = RowReader::new(row);
        for field in &schema {
            let value = reader.value(field).map_err(|e| DecodeError {
                offset: e.offset,
                message: format!("row {i}, field `{}`: {}", field.name, e.message),
            })?;
            out.push_value(value)?;
        }
        if reader.remaining() > 0 {
            let message = format!(
                "row {i}: {} bytes follow the last field",
                reader.remaining()
            );
            return Err(DecodeError {
                offset: reader.position(),
                message,
            });
        }
        out.end_row();
    }
    Ok(())
}

impl ColumnsBuilder {
    /// The finished rows in the row encoding (for tests and for hosts that need rows).
    pub fn to_rows(&self) -> Result<BatchBuilder, DecodeError> {
        let (mut arena, mut columns) = (Vec::new(), Vec::new());
        let batch = self.view(&mut arena, &mut columns)?;
        let mut rows = BatchBuilder::new();
        to_rows(&batch, &mut rows, usize::MAX)?;
        Ok(rows)
    }
}
