//! Parquet encoding of lake objects (`format: parquet` and the Delta table's data files):
//! one typed column per field (`str` → UTF-8, `int64` → INT64, `float64` → DOUBLE,
//! `boolean` → BOOLEAN, `timestamp` → TIMESTAMP(MICROS, UTC), `bytes` → BINARY), nullable
//! where the field is, compressed with zstd (level 3) or Snappy, in row groups of at most
//! [`ROW_GROUP_ROWS`] rows. Also the per-file statistics a Delta `add` action carries.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as Codec, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::{Map, Value as Json};
use sluice_plugin_sdk::rows::{Field, FieldType, Value};

use super::spec::Compression;

/// Rows per row group. A lake object holds one batch's rows of one folder (at most
/// `batch.max_records`, 8,192 by default), so most objects are one row group; bigger
/// batches are cut at 128 Ki rows, which keeps a reader's unit of work near 1-8 MB for
/// rows like the turnstile windows' and bounds the writer's buffered rows.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Encodes rows of one schema, leaving out some columns (a Delta table's partition
/// columns, which live in the log, not in the files).
pub struct ParquetEncoder {
    schema: SchemaRef,
    /// Index and field of each column written.
    columns: Vec<(usize, Field)>,
    properties: WriterProperties,
}

/// An encoded file and its statistics.
pub struct Encoded {
    /// The Parquet file.
    pub bytes: Vec<u8>,
    /// Delta statistics: `{"numRecords", "minValues", "maxValues", "nullCount"}`.
    pub stats: Json,
}

impl ParquetEncoder {
    /// For rows of `fields`, without the fields at `skip`.
    pub fn new(fields: &[Field], skip: &[usize], compression: Compression) -> Self {
        let columns: Vec<(usize, Field)> = fields
            .iter()
            .cloned()
            .enumerate()
            .filter(|(i, _)| !skip.contains(i))
            .collect();
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(_, f)| arrow_schema::Field::new(&f.name, data_type(f.ty), f.nullable))
                .collect::<Vec<_>>(),
        ));
        let codec = match compression {
            Compression::Zstd => Codec::ZSTD(ZstdLevel::try_new(3).expect("3 is a zstd level")),
            Compression::Snappy => Codec::SNAPPY,
            Compression::None | Compression::Gzip => Codec::UNCOMPRESSED,
        };
        let properties = WriterProperties::builder()
            .set_compression(codec)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(concat!("sluice ", env!("CARGO_PKG_VERSION")).into())
            .build();
        Self {
            schema,
            columns,
            properties,
        }
    }

    /// Encodes `rows` (each the values of every field, in schema order) as one file.
    pub fn encode(&self, rows: &[&[Value<'_>]]) -> anyhow::Result<Encoded> {
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        let mut stats = Stats::default();
        for (i, field) in &self.columns {
            let values = rows.iter().map(|row| row[*i]);
            arrays.push(column(field, values.clone())?);
            stats.add(field, values);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(
            &mut bytes,
            self.schema.clone(),
            Some(self.properties.clone()),
        )?;
        writer.write(&batch)?;
        writer.close()?;
        Ok(Encoded {
            bytes,
            stats: stats.json(rows.len()),
        })
    }
}

fn data_type(ty: FieldType) -> DataType {
    match ty {
        FieldType::Str => DataType::Utf8,
        FieldType::Int64 => DataType::Int64,
        FieldType::Float64 => DataType::Float64,
        FieldType::Boolean => DataType::Boolean,
        FieldType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        FieldType::Bytes => DataType::Binary,
    }
}

/// One column of `values` (which match `field`: rows decoded against the same schema).
fn column<'a>(field: &Field, values: impl Iterator<Item = Value<'a>>) -> anyhow::Result<ArrayRef> {
    let mismatch = |v: Value<'_>| anyhow::anyhow!("`{}` holds {v:?}", field.name);
    Ok(match field.ty {
        FieldType::Str => {
            let mut b = StringBuilder::new();
            for v in values {
                match v {
                    Value::Str(s) => b.append_value(s),
                    Value::Null => b.append_null(),
                    other => return Err(mismatch(other)),
                }
            }
            Arc::new(b.finish())
        }
        FieldType::Int64 => {
            let mut b = Int64Builder::new();
            for v in values {
                match v {
                    Value::Int64(x) => b.append_value(x),
                    Value::Null => b.append_null(),
                    other => return Err(mismatch(other)),
                }
            }
            Arc::new(b.finish())
        }
        FieldType::Float64 => {
            let mut b = Float64Builder::new();
            for v in values {
                match v {
                    Value::Float64(x) => b.append_value(x),
                    Value::Null => b.append_null(),
                    other => return Err(mismatch(other)),
                }
            }
            Arc::new(b.finish())
        }
        FieldType::Boolean => {
            let mut b = BooleanBuilder::new();
            for v in values {
                match v {
                    Value::Boolean(x) => b.append_value(x),
                    Value::Null => b.append_null(),
                    other => return Err(mismatch(other)),
                }
            }
            Arc::new(b.finish())
        }
        FieldType::Timestamp => {
            let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
            for v in values {
                match v {
                    Value::Timestamp(ms) => {
                        b.append_value(ms.checked_mul(1000).ok_or_else(|| {
                            anyhow::anyhow!("`{}`: {ms} ms is out of Parquet's range", field.name)
                        })?)
                    }
                    Value::Null => b.append_null(),
                    other => return Err(mismatch(other)),
                }
            }
            Arc::new(b.finish())
        }
        FieldType::Bytes => {
            let mut b = BinaryBuilder::new();
            for v in values {
                match v {
                    Value::Bytes(x) => b.append_value(x),
                    Value::Null => b.append_null(),
                    other => return Err(mismatch(other)),
                }
            }
            Arc::new(b.finish())
        }
    })
}

/// Delta file statistics: nulls of every column, and minimum and maximum of the numeric
/// and timestamp columns (text is left out: a truncated maximum would be wrong).
#[derive(Default)]
struct Stats {
    min: Map<String, Json>,
    max: Map<String, Json>,
    nulls: Map<String, Json>,
}

impl Stats {
    fn add<'a>(&mut self, field: &Field, values: impl Iterator<Item = Value<'a>>) {
        let (mut nulls, mut low, mut high) = (0u64, None::<Value<'a>>, None::<Value<'a>>);
        for v in values {
            let (lower, higher) = match (v, low, high) {
                (Value::Null, ..) => {
                    nulls += 1;
                    continue;
                }
                (Value::Int64(x), Some(Value::Int64(l)), Some(Value::Int64(h))) => (x < l, x > h),
                (Value::Timestamp(x), Some(Value::Timestamp(l)), Some(Value::Timestamp(h))) => {
                    (x < l, x > h)
                }
                (Value::Float64(x), Some(Value::Float64(l)), Some(Value::Float64(h))) => {
                    (x < l, x > h)
                }
                (Value::Int64(_) | Value::Timestamp(_), None, None) => (true, true),
                (Value::Float64(x), None, None) => (x.is_finite(), x.is_finite()),
                _ => (false, false),
            };
            if lower {
                low = Some(v);
            }
            if higher {
                high = Some(v);
            }
        }
        self.nulls.insert(field.name.clone(), nulls.into());
        for (bound, map) in [(low, &mut self.min), (high, &mut self.max)] {
            let json = match bound {
                Some(Value::Int64(x)) => x.into(),
                Some(Value::Float64(x)) => x.into(),
                Some(Value::Timestamp(ms)) => iso_timestamp(ms).into(),
                _ => continue,
            };
            map.insert(field.name.clone(), json);
        }
    }

    fn json(self, rows: usize) -> Json {
        serde_json::json!({
            "numRecords": rows,
            "minValues": self.min,
            "maxValues": self.max,
            "nullCount": self.nulls,
        })
    }
}

/// `2024-01-01T08:00:00.000Z`: a timestamp in Delta statistics.
pub fn iso_timestamp(ms: i64) -> String {
    let text = sluice_plugin_sdk::time::format_timestamp(ms);
    format!("{}.{:03}Z", text.replacen(' ', "T", 1), ms.rem_euclid(1000))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    #[test]
    fn typed_columns_read_back_with_their_types_and_statistics() {
        let fields = vec![
            Field::new("station", FieldType::Str),
            Field::new("window_start", FieldType::Timestamp),
            Field::new("entries", FieldType::Int64),
            Field::nullable("ratio", FieldType::Float64),
        ];
        let rows = [
            vec![
                Value::Str("59 ST"),
                Value::Timestamp(1_704_096_000_000),
                Value::Int64(12),
                Value::Float64(0.5),
            ],
            vec![
                Value::Str("ASTOR PL"),
                Value::Timestamp(1_704_110_400_000),
                Value::Int64(-3),
                Value::Null,
            ],
        ];
        let refs: Vec<&[Value<'_>]> = rows.iter().map(Vec::as_slice).collect();
        let encoder = ParquetEncoder::new(&fields, &[], Compression::Zstd);
        let encoded = encoder.encode(&refs).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(encoded.bytes))
            .unwrap()
            .build()
            .unwrap();
        let batch = reader.into_iter().next().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(
            batch.schema().field(1).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        let starts = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(starts.value(1), 1_704_110_400_000_000);
        assert_eq!(batch.column(3).null_count(), 1);
        let stats = encoded.stats;
        assert_eq!(stats["numRecords"], 2);
        assert_eq!(stats["minValues"]["entries"], -3);
        assert_eq!(
            stats["maxValues"]["window_start"],
            "2024-01-01T12:00:00.000Z"
        );
        assert_eq!(stats["nullCount"]["ratio"], 1);
        assert!(stats["minValues"].get("station").is_none());
    }

    #[test]
    fn left_out_columns_are_not_written() {
        let fields = vec![
            Field::new("window_start", FieldType::Timestamp),
            Field::new("entries", FieldType::Int64),
        ];
        let row = [Value::Timestamp(0), Value::Int64(1)];
        let encoder = ParquetEncoder::new(&fields, &[0], Compression::Snappy);
        let encoded = encoder.encode(&[&row[..]]).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(encoded.bytes)).unwrap();
        let names: Vec<&str> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["entries"]);
    }
}
