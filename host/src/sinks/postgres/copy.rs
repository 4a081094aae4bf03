//! Rows in PostgreSQL's binary COPY format, straight from the row codec, one tuple per row.
//! Text and bytes go as they are, numbers big-endian, timestamps as microseconds since
//! 2000-01-01 UTC (the wire form of `TIMESTAMP`), so no time zone is ever applied. Only the
//! last row of each key is kept: one upsert statement may not touch a key twice.

use std::collections::HashSet;

use bytes::{BufMut, Bytes, BytesMut};
use sluice_plugin_sdk::rows::{Batch, DecodeError, Field, RowReader, Value};

/// Signature, flags and header extension length of a binary COPY stream.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Milliseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_MS: i64 = 946_684_800_000;

/// Encodes the rows of `batch` (of `schema`) as one binary COPY stream, keeping the last row
/// of each key (`in_key` marks the key fields). Returns the stream and the rows in it.
pub fn encode(
    schema: &[Field],
    in_key: &[bool],
    batch: &Batch<'_>,
) -> Result<(Bytes, usize), String> {
    let keep = last_of_each_key(schema, in_key, batch)?;
    let columns = i16::try_from(schema.len()).map_err(|_| "too many fields".to_string())?;
    let per_row = 2 + 4 * schema.len();
    let mut out = BytesMut::with_capacity(HEADER.len() + batch.data.len() + batch.len() * per_row);
    out.put_slice(HEADER);
    let mut rows = 0;
    for (i, row) in batch.rows().enumerate().filter(|(i, _)| keep[*i]) {
        out.put_i16(columns);
        encode_row(&mut out, schema, row).map_err(|e| format!("row {i} of the batch: {e}"))?;
        rows += 1;
    }
    out.put_i16(-1);
    Ok((out.freeze(), rows))
}

/// For each row, whether no later row of the batch has the same key.
fn last_of_each_key(
    schema: &[Field],
    in_key: &[bool],
    batch: &Batch<'_>,
) -> Result<Vec<bool>, String> {
    let mut seen: HashSet<Vec<u8>> = HashSet::with_capacity(batch.len());
    let mut keep = vec![false; batch.len()];
    let mut key = Vec::new();
    for i in (0..batch.len()).rev() {
        key.clear();
        key_bytes(schema, in_key, batch.row(i), &mut key)
            .map_err(|e| format!("row {i} of the batch: {e}"))?;
        if !seen.contains(key.as_slice()) {
            seen.insert(key.clone());
            keep[i] = true;
        }
    }
    Ok(keep)
}

/// Appends the encoded key fields of `row` (self-delimiting, so concatenation is unique).
fn key_bytes(
    schema: &[Field],
    in_key: &[bool],
    row: &[u8],
    key: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    let mut reader = RowReader::new(row);
    for (field, in_key) in schema.iter().zip(in_key) {
        let start = reader.position();
        reader.skip(field)?;
        if *in_key {
            key.extend_from_slice(&row[start..reader.position()]);
        }
    }
    Ok(())
}

/// Appends the fields of one row.
fn encode_row(out: &mut BytesMut, schema: &[Field], row: &[u8]) -> Result<(), String> {
    let mut reader = RowReader::new(row);
    for field in schema {
        let value = reader.value(field).map_err(|e| e.to_string())?;
        encode_value(out, value).map_err(|e| format!("field `{}`: {e}", field.name))?;
    }
    if reader.remaining() > 0 {
        return Err(format!(
            "{} bytes follow the last field",
            reader.remaining()
        ));
    }
    Ok(())
}

/// Appends one value with its length.
fn encode_value(out: &mut BytesMut, value: Value<'_>) -> Result<(), String> {
    match value {
        Value::Null => out.put_i32(-1),
        Value::Str(s) => put_bytes(out, s.as_bytes())?,
        Value::Bytes(b) => put_bytes(out, b)?,
        Value::Int64(v) => {
            out.put_i32(8);
            out.put_i64(v);
        }
        Value::Float64(v) => {
            out.put_i32(8);
            out.put_f64(v);
        }
        Value::Boolean(v) => {
            out.put_i32(1);
            out.put_u8(u8::from(v));
        }
        Value::Timestamp(ms) => {
            out.put_i32(8);
            out.put_i64(pg_micros(ms)?);
        }
    }
    Ok(())
}

/// Appends a length-prefixed value.
fn put_bytes(out: &mut BytesMut, b: &[u8]) -> Result<(), String> {
    let len =
        i32::try_from(b.len()).map_err(|_| format!("a value of {} bytes is too long", b.len()))?;
    out.put_i32(len);
    out.put_slice(b);
    Ok(())
}

/// Milliseconds since the Unix epoch as microseconds since 2000-01-01.
fn pg_micros(ms: i64) -> Result<i64, String> {
    ms.checked_sub(PG_EPOCH_MS)
        .and_then(|v| v.checked_mul(1000))
        .ok_or_else(|| format!("timestamp {ms} ms is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin_sdk::rows::{BatchBuilder, FieldType};

    #[test]
    fn encodes_header_tuples_and_trailer() {
        let schema = vec![
            Field::new("s", FieldType::Str),
            Field::nullable("n", FieldType::Int64),
            Field::new("t", FieldType::Timestamp),
        ];
        let mut b = BatchBuilder::new();
        b.put_value(&schema[0], Value::Str("ab"));
        b.put_value(&schema[1], Value::Null);
        b.put_value(&schema[2], Value::Timestamp(PG_EPOCH_MS + 2));
        b.end_row();
        let (out, rows) = encode(&schema, &[true, false, false], &b.as_batch()).unwrap();
        assert_eq!(rows, 1);
        let mut want = HEADER.to_vec();
        want.extend_from_slice(&3i16.to_be_bytes());
        want.extend_from_slice(&[0, 0, 0, 2, b'a', b'b']);
        want.extend_from_slice(&(-1i32).to_be_bytes());
        want.extend_from_slice(&[0, 0, 0, 8]);
        want.extend_from_slice(&2000i64.to_be_bytes());
        want.extend_from_slice(&(-1i16).to_be_bytes());
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn keeps_the_last_row_of_each_key() {
        let schema = vec![
            Field::new("k", FieldType::Str),
            Field::new("v", FieldType::Int64),
        ];
        let mut b = BatchBuilder::new();
        for (k, v) in [("a", 1), ("b", 2), ("a", 3), ("ab", 4), ("b", 5)] {
            b.put_str(k);
            b.put_i64(v);
            b.end_row();
        }
        let keep = last_of_each_key(&schema, &[true, false], &b.as_batch()).unwrap();
        assert_eq!(keep, [false, false, true, true, true]);
        let (_, rows) = encode(&schema, &[true, false], &b.as_batch()).unwrap();
        assert_eq!(rows, 3);
        let keep = last_of_each_key(&schema, &[true, true], &b.as_batch()).unwrap();
        assert_eq!(keep, [true; 5]);
    }

    #[test]
    fn timestamps_before_2000_and_out_of_range() {
        assert_eq!(pg_micros(0).unwrap(), -PG_EPOCH_MS * 1000);
        assert!(
            pg_micros(i64::MAX / 10)
                .unwrap_err()
                .contains("out of range")
        );
    }

    #[test]
    fn malformed_rows_are_errors() {
        let schema = vec![Field::new("n", FieldType::Int64)];
        let data = [1u8, 2, 3];
        let ends = [3u32];
        let err = encode(&schema, &[true], &Batch::new(&data, &ends)).unwrap_err();
        assert!(err.starts_with("row 0 of the batch"), "{err}");
    }
}
