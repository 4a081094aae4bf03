//! Unit tests of the row codec.

use super::*;

fn all_types_schema(nullable: bool) -> Vec<Field> {
    let mk = if nullable {
        Field::nullable
    } else {
        Field::new
    };
    vec![
        mk("s", FieldType::Str),
        mk("i", FieldType::Int64),
        mk("f", FieldType::Float64),
        mk("b", FieldType::Boolean),
        mk("t", FieldType::Timestamp),
        mk("y", FieldType::Bytes),
    ]
}

fn sample_values() -> Vec<Value<'static>> {
    vec![
        Value::Str("héllo, wörld"),
        Value::Int64(-42),
        Value::Float64(1.5e300),
        Value::Boolean(true),
        Value::Timestamp(1_704_067_200_000),
        Value::Bytes(&[0, 255, 10, 13]),
    ]
}

fn encode(schema: &[Field], rows: &[Vec<Value<'_>>]) -> BatchBuilder {
    let mut b = BatchBuilder::new();
    for row in rows {
        for (f, v) in schema.iter().zip(row) {
            b.put_value(f, *v);
        }
        b.end_row();
    }
    b
}

#[test]
fn round_trips_every_type() {
    let schema = all_types_schema(false);
    let b = encode(&schema, &[sample_values(), sample_values()]);
    let batch = b.as_batch();
    assert_eq!(batch.len(), 2);
    batch.validate().unwrap();
    for row in batch.rows() {
        assert_eq!(decode_row(&schema, row).unwrap(), sample_values());
    }
}

#[test]
fn round_trips_extremes_and_empty_values() {
    let schema = all_types_schema(false);
    let row = vec![
        Value::Str(""),
        Value::Int64(i64::MIN),
        Value::Float64(f64::NEG_INFINITY),
        Value::Boolean(false),
        Value::Timestamp(i64::MAX),
        Value::Bytes(&[]),
    ];
    let b = encode(&schema, std::slice::from_ref(&row));
    assert_eq!(decode_row(&schema, b.as_batch().row(0)).unwrap(), row);
}

#[test]
fn encoding_matches_the_readme() {
    let mut b = BatchBuilder::new();
    b.put_str("ab");
    b.put_i64(1);
    b.put_bool(true);
    b.put_null();
    b.put_present();
    b.put_timestamp(-1);
    b.end_row();
    let expected: Vec<u8> = [
        &[2, 0, 0, 0, b'a', b'b'][..],
        &[1, 0, 0, 0, 0, 0, 0, 0],
        &[1, 0, 1],
        &[0xff; 8],
    ]
    .concat();
    assert_eq!(b.data, expected);
    assert_eq!(b.ends, vec![expected.len() as u32]);
}

#[test]
fn round_trips_nullable_fields() {
    let schema = all_types_schema(true);
    let nulls = vec![Value::Null; 6];
    let b = encode(&schema, &[nulls.clone(), sample_values()]);
    let batch = b.as_batch();
    assert_eq!(batch.row(0), &[0u8; 6]);
    assert_eq!(decode_row(&schema, batch.row(0)).unwrap(), nulls);
    assert_eq!(decode_row(&schema, batch.row(1)).unwrap(), sample_values());
}

#[test]
fn truncated_rows_are_errors_not_panics() {
    for nullable in [false, true] {
        let schema = all_types_schema(nullable);
        let b = encode(&schema, &[sample_values()]);
        let row = b.as_batch().row(0);
        for cut in 0..row.len() {
            let err = decode_row(&schema, &row[..cut]).unwrap_err();
            assert!(err.offset <= cut, "{err}");
        }
    }
}

#[test]
fn garbage_is_an_error() {
    let schema = all_types_schema(true);
    assert!(
        decode_row(&schema, &[7])
            .unwrap_err()
            .message
            .contains("null tag")
    );
    let bad_bool = [0u8, 0, 0, 1, 2];
    assert!(
        decode_row(&schema, &bad_bool)
            .unwrap_err()
            .message
            .contains("boolean")
    );
    let schema = [Field::new("s", FieldType::Str)];
    let err = decode_row(&schema, &[2, 0, 0, 0, 0xc3, 0x28]).unwrap_err();
    assert_eq!(err.offset, 4);
    assert!(decode_row(&schema, &[0xff, 0xff, 0xff, 0xff, 1]).is_err());
    let trailing = decode_row(&schema, &[0, 0, 0, 0, 9]).unwrap_err();
    assert!(trailing.message.contains("1 bytes follow"), "{trailing}");
    assert!(!trailing.to_string().is_empty());
}

#[test]
fn batch_rows_out_of_range_or_bad_offsets_are_empty() {
    let data = [1u8, 2, 3];
    let ends = [2u32, 1, 9];
    let batch = Batch::new(&data, &ends);
    assert_eq!(batch.row(0), &[1, 2]);
    assert_eq!(batch.row(1), &[] as &[u8]);
    assert_eq!(batch.row(2), &[] as &[u8]);
    assert_eq!(batch.row(3), &[] as &[u8]);
    assert!(batch.validate().is_err());
    assert!(Batch::new(&data, &[2]).validate().is_err());
    assert!(Batch::new(&data, &[0, 3]).validate().is_ok());
    assert!(Batch::new(&[], &[]).is_empty());
}

#[test]
fn builder_clear_and_discard() {
    let mut b = BatchBuilder::with_capacity(4, 64);
    b.put_i64(1);
    b.end_row();
    b.put_i64(2);
    assert_eq!(b.len(), 1);
    assert_eq!(b.as_batch().data.len(), 8);
    b.discard_row();
    assert_eq!(b.data.len(), 8);
    b.clear();
    assert!(b.is_empty());
    let (data, ends) = b.into_parts();
    assert!(data.is_empty() && ends.is_empty());
}

#[test]
#[should_panic(expected = "does not fit")]
fn put_value_rejects_a_mismatch() {
    BatchBuilder::new().put_value(&Field::new("i", FieldType::Int64), Value::Str("x"));
}

#[test]
fn reader_reads_fields_in_sequence() {
    let mut b = BatchBuilder::new();
    b.put_present();
    b.put_f64(2.5);
    b.put_bytes(b"xyz");
    b.put_bool(false);
    b.end_row();
    let mut r = RowReader::new(b.as_batch().row(0));
    assert!(r.is_present().unwrap());
    assert_eq!(r.f64().unwrap(), 2.5);
    r.skip(&Field::new("y", FieldType::Bytes)).unwrap();
    assert!(!r.bool().unwrap());
    assert_eq!(r.remaining(), 0);
    assert_eq!(r.position(), 17);
    assert!(r.i64().is_err());
}

#[test]
fn accessor_reads_one_field() {
    let schema = all_types_schema(false);
    let b = encode(&schema, &[sample_values()]);
    let row = b.as_batch().row(0);
    for (i, f) in schema.iter().enumerate() {
        let acc = Accessor::new(&schema, &f.name).unwrap();
        assert_eq!(acc.field(), f);
        assert_eq!(acc.read(row).unwrap(), sample_values()[i]);
    }
    let fixed = [
        Field::new("a", FieldType::Int64),
        Field::new("s", FieldType::Str),
    ];
    let mut b = BatchBuilder::new();
    b.put_i64(5);
    b.put_str("k");
    b.end_row();
    let acc = Accessor::new(&fixed, "s").unwrap();
    assert_eq!(acc.read(b.as_batch().row(0)).unwrap(), Value::Str("k"));
    assert!(acc.read(&[1, 2]).is_err());
    assert!(Accessor::new(&fixed, "nope").is_none());
}

#[test]
fn field_helpers() {
    let schema = all_types_schema(false);
    assert_eq!(field_index(&schema, "t"), Some(4));
    assert_eq!(field_index(&schema, "zz"), None);
    assert_eq!(FieldType::Timestamp.to_string(), "timestamp");
    assert_eq!(FieldType::Str.fixed_width(), None);
    assert!(Value::Null.fits(&Field::nullable("x", FieldType::Str)));
    assert!(!Value::Null.fits(&Field::new("x", FieldType::Str)));
}
