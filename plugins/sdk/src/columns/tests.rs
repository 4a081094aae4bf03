use super::convert::{from_rows, to_rows, value};
use super::*;
use crate::rows::{BatchBuilder, Value};

fn schema() -> Vec<Field> {
    vec![
        Field::new("station", FieldType::Str),
        Field::new("ts", FieldType::Timestamp),
        Field::nullable("entries", FieldType::Int64),
        Field::new("ok", FieldType::Boolean),
        Field::nullable("ratio", FieldType::Float64),
        Field::nullable("raw", FieldType::Bytes),
    ]
}

fn sample(builder: &mut ColumnsBuilder) {
    for i in 0..20i64 {
        builder.push_str(["59 ST", "TIMES SQ-42 ST", "ÆØÅ"][i as usize % 3]);
        builder.push_i64(1_704_067_200_000 + i);
        if i % 7 == 3 {
            builder.push_null();
        } else {
            builder.push_i64(i * 10);
        }
        builder.push_bool(i % 2 == 0);
        builder.push_f64(i as f64 / 4.0);
        if i == 5 {
            builder.push_null();
        } else {
            builder.push_bytes(&[i as u8; 3]);
        }
        builder.end_row();
    }
}

fn check(builder: &ColumnsBuilder) {
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    let batch = builder.view(&mut arena, &mut columns).unwrap();
    assert_eq!(batch.len(), 20);
    let (station, ts) = (
        batch.str("station").unwrap(),
        batch.timestamp("ts").unwrap(),
    );
    let (entries, ok) = (batch.i64("entries").unwrap(), batch.bool("ok").unwrap());
    let raw = batch.bytes("raw").unwrap();
    for i in 0..20 {
        assert_eq!(
            station.str(i),
            Some(["59 ST", "TIMES SQ-42 ST", "ÆØÅ"][i % 3])
        );
        assert_eq!(ts.get(i), 1_704_067_200_000 + i as i64);
        let expected = (i % 7 != 3).then_some(i as i64 * 10);
        assert_eq!(entries.value(i), expected, "row {i}");
        assert_eq!(ok.get(i), i % 2 == 0);
        assert_eq!(raw.bytes(i), (i != 5).then_some(&[i as u8; 3][..]));
    }
    assert_eq!(station.bytes(20), None);
    assert_eq!(entries.value(20), None);
    assert_eq!(batch.f64("ratio").unwrap().value(3), Some(0.75));
    // Every buffer starts at a multiple of 8.
    for column in &columns {
        assert_eq!(column.values % 8, 0);
        assert_eq!(column.data % 8, 0);
    }
}

#[test]
fn a_built_batch_reads_back_plain_and_dictionary_encoded() {
    let mut plain = ColumnsBuilder::new(&schema());
    sample(&mut plain);
    check(&plain);
    let mut dict = ColumnsBuilder::new(&schema()).dictionary("station");
    sample(&mut dict);
    check(&dict);
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    let batch = dict.view(&mut arena, &mut columns).unwrap();
    let station = batch.str("station").unwrap();
    assert_eq!(station.entries(), Some(3), "each distinct value once");
    assert_eq!(station.key(4), Some(1));
    assert_eq!(station.entry(2), Some("ÆØÅ".as_bytes()));
    assert_eq!(
        plain
            .view(&mut arena, &mut columns)
            .unwrap()
            .str("station")
            .unwrap()
            .key(0),
        None
    );
}

#[test]
fn clear_keeps_nothing_of_the_last_batch() {
    let mut builder = ColumnsBuilder::new(&schema()).dictionary("station");
    sample(&mut builder);
    builder.clear();
    assert!(builder.is_empty());
    sample(&mut builder);
    check(&builder);
}

#[test]
fn rows_and_columns_convert_both_ways_unchanged() {
    let mut builder = ColumnsBuilder::new(&schema()).dictionary("station");
    sample(&mut builder);
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    let batch = builder.view(&mut arena, &mut columns).unwrap();
    let mut rows = BatchBuilder::new();
    to_rows(&batch, &mut rows, usize::MAX).unwrap();
    assert_eq!(rows.len(), 20);
    let mut back = ColumnsBuilder::new(&schema());
    from_rows(rows.as_batch(), &mut back).unwrap();
    let (mut arena2, mut columns2) = (Vec::new(), Vec::new());
    let again = back.view(&mut arena2, &mut columns2).unwrap();
    for row in 0..20 {
        for column in 0..schema().len() {
            assert_eq!(
                value(&batch, column, row).unwrap(),
                value(&again, column, row).unwrap()
            );
        }
    }
    assert_eq!(value(&again, 2, 3).unwrap(), Value::Null);
}

#[test]
fn buffers_outside_the_arena_or_of_the_wrong_shape_are_refused_without_reading_rows() {
    let mut builder = ColumnsBuilder::new(&schema());
    sample(&mut builder);
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    builder.finish(&mut arena, &mut columns);
    let s = schema();
    let refused = |columns: &[Column], len: usize, arena: &[u8], what: &str| {
        let err = Columns::new(&s, len, arena, columns).unwrap_err();
        assert!(err.message.contains(what), "{what}: {err}");
    };
    refused(&columns, 1_000, &arena, "run past the arena");
    refused(&columns, usize::MAX, &arena, "run past the arena");
    refused(&columns[..2], 20, &arena, "2 column(s) for a schema of 6");
    refused(
        &columns,
        20,
        &arena[..arena.len() - 9],
        "run past the arena",
    );
    let mut bad = columns.clone();
    bad[1].values = u32::MAX;
    refused(&bad, 20, &arena, "values of field `ts`");
    let mut bad = columns.clone();
    bad[0].validity = Some(0);
    refused(&bad, 20, &arena, "`station` is not nullable");
    let mut bad = columns.clone();
    bad[1].dictionary = Some(Dictionary::default());
    refused(&bad, 20, &arena, "only str and bytes");
    let mut bad = columns.clone();
    bad[0].dictionary = Some(Dictionary {
        offsets: 0,
        entries: u32::MAX,
    });
    refused(&bad, 20, &arena, "dictionary offsets");
}

#[test]
fn bad_offsets_keys_and_text_are_errors_at_the_value() {
    let s = vec![Field::new("name", FieldType::Str)];
    let mut builder = ColumnsBuilder::new(&s);
    for name in ["a", "bc"] {
        builder.push_str(name);
        builder.end_row();
    }
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    builder.finish(&mut arena, &mut columns);
    // Offsets 0, 1, 3: make the second end before it starts, then past the data.
    let at = columns[0].values as usize;
    arena[at + 8..at + 12].copy_from_slice(&0u32.to_le_bytes());
    let batch = Columns::new(&s, 2, &arena, &columns).unwrap();
    assert_eq!(batch.str("name").unwrap().bytes(1), None);
    assert!(
        value(&batch, 0, 1)
            .unwrap_err()
            .message
            .contains("row 1, field `name`")
    );
    // The last offset past the data is refused up front; one in the middle where it is read.
    arena[at + 8..at + 12].copy_from_slice(&1_000u32.to_le_bytes());
    let err = Columns::new(&s, 2, &arena, &columns).unwrap_err();
    assert!(err.message.contains("the data of field `name`"), "{err}");
    arena[at + 8..at + 12].copy_from_slice(&3u32.to_le_bytes());
    arena[at + 4..at + 8].copy_from_slice(&1_000u32.to_le_bytes());
    let batch = Columns::new(&s, 2, &arena, &columns).unwrap();
    assert_eq!(batch.str("name").unwrap().bytes(0), None);
    assert_eq!(batch.str("name").unwrap().bytes(1), None);
    // Not UTF-8.
    arena[at + 4..at + 8].copy_from_slice(&1u32.to_le_bytes());
    let data = columns[0].data as usize;
    arena[data + 1] = 0xff;
    let batch = Columns::new(&s, 2, &arena, &columns).unwrap();
    assert_eq!(batch.str("name").unwrap().str(1), None);
    assert!(
        value(&batch, 0, 1)
            .unwrap_err()
            .message
            .contains("not UTF-8")
    );
    // A dictionary key past its entries.
    let mut dict = ColumnsBuilder::new(&s).dictionary("name");
    dict.push_str("x");
    dict.end_row();
    dict.finish(&mut arena, &mut columns);
    let keys = columns[0].values as usize;
    arena[keys..keys + 4].copy_from_slice(&7u32.to_le_bytes());
    let batch = Columns::new(&s, 1, &arena, &columns).unwrap();
    assert_eq!(batch.str("name").unwrap().bytes(0), None);
}

#[test]
fn typed_access_names_the_field_and_its_type() {
    let builder = ColumnsBuilder::new(&schema());
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    let batch = builder.view(&mut arena, &mut columns).unwrap();
    assert!(batch.is_empty());
    let err = batch.i64("station").unwrap_err();
    assert_eq!(err.message, "field `station` is str, not int64");
    let err = batch.str("nowhere").unwrap_err();
    assert_eq!(err.message, "no field `nowhere` in the input schema");
}

#[test]
#[should_panic(expected = "one value per column")]
fn a_row_short_of_values_panics_where_it_is_written() {
    let mut builder = ColumnsBuilder::new(&schema());
    builder.push_str("x");
    builder.end_row();
}

#[test]
fn rows_read_from_a_small_batch_stay_within_a_budget() {
    // One 1 KiB entry named by 10,000 keys: 10 MB of rows out of an arena of 41 KB.
    let s = vec![Field::new("v", FieldType::Bytes)];
    let mut b = ColumnsBuilder::new(&s).dictionary("v");
    for _ in 0..10_000 {
        b.push_bytes(&[7; 1024]);
        b.end_row();
    }
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    b.finish(&mut arena, &mut columns);
    assert!(arena.len() < 50_000);
    let batch = Columns::new(&s, 10_000, &arena, &columns).unwrap();
    let mut rows = BatchBuilder::new();
    let e = to_rows(&batch, &mut rows, 1 << 20).unwrap_err();
    assert!(
        e.message.contains("more than 1048576 bytes once read"),
        "{e}"
    );
    assert!(rows.data.len() <= 1 << 20);
    let mut all = BatchBuilder::new();
    to_rows(&batch, &mut all, 20 << 20).unwrap();
    assert_eq!(all.len(), 10_000);
}

#[test]
fn keys_that_would_wrap_a_32_bit_offset_read_nothing() {
    let s = vec![Field::new("v", FieldType::Str)];
    let mut b = ColumnsBuilder::new(&s).dictionary("v");
    b.push_str("a");
    b.end_row();
    let (mut arena, mut columns) = (Vec::new(), Vec::new());
    b.finish(&mut arena, &mut columns);
    let keys = columns[0].values as usize;
    for key in [0x4000_0000u32, 0x4000_0001, u32::MAX] {
        arena[keys..keys + 4].copy_from_slice(&key.to_le_bytes());
        let batch = Columns::new(&s, 1, &arena, &columns).unwrap();
        assert_eq!(batch.str("v").unwrap().bytes(0), None, "{key:#x}");
        assert_eq!(batch.str("v").unwrap().entry(key), None, "{key:#x}");
    }
}
