//! Writing batches in the column layout: [`ColumnsBuilder`] takes one row at a time, a value
//! per column in schema order (`push_*`, then [`ColumnsBuilder::end_row`]), keeps one buffer
//! per column that is reused across batches, dictionary-encodes the text columns it is told
//! to, and lays everything out in one arena ([`ColumnsBuilder::finish`]).

use super::intern::Interner;
use super::{Column, Columns, Dictionary};
use crate::rows::{DecodeError, Field, FieldType, Value};

/// A bitmap under construction.
#[derive(Clone, Debug, Default)]
struct BitVec {
    bytes: Vec<u8>,
    len: usize,
}

impl BitVec {
    #[inline]
    fn push(&mut self, bit: bool) {
        if self.len.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if bit {
            self.bytes[self.len / 8] |= 1 << (self.len % 8);
        }
        self.len += 1;
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.len = 0;
    }
}

/// The buffers of one column.
#[derive(Clone, Debug)]
enum Buffers {
    /// 8-byte values.
    Fixed(Vec<u8>),
    /// Booleans.
    Bits(BitVec),
    /// Text or bytes: `len + 1` offsets and the data.
    Var { offsets: Vec<u32>, data: Vec<u8> },
    /// Dictionary-encoded text or bytes: a key per row, the entries' offsets and data, and
    /// the entries seen so far in this batch.
    Dict {
        keys: Vec<u32>,
        offsets: Vec<u32>,
        data: Vec<u8>,
        index: Interner,
    },
}

#[derive(Clone, Debug)]
struct ColumnBuffers {
    buffers: Buffers,
    /// Present from the first null on.
    validity: Option<BitVec>,
}

/// Builds one batch in the column layout; see the module docs.
#[derive(Clone, Debug)]
pub struct ColumnsBuilder {
    schema: Vec<Field>,
    columns: Vec<ColumnBuffers>,
    len: usize,
    /// The column the next `push_*` writes.
    next: usize,
}

impl ColumnsBuilder {
    /// A builder for rows of `schema`, no column dictionary-encoded.
    pub fn new(schema: &[Field]) -> Self {
        let columns = schema
            .iter()
            .map(|f| ColumnBuffers {
                buffers: match f.ty {
                    FieldType::Str | FieldType::Bytes => Buffers::Var {
                        offsets: vec![0],
                        data: Vec::new(),
                    },
                    FieldType::Boolean => Buffers::Bits(BitVec::default()),
                    _ => Buffers::Fixed(Vec::new()),
                },
                validity: None,
            })
            .collect();
        ColumnsBuilder {
            schema: schema.to_vec(),
            columns,
            len: 0,
            next: 0,
        }
    }

    /// Dictionary-encodes the text or bytes field `name` (for low-cardinality values: each
    /// distinct value is written once per batch, rows carry a `u32` key). Other fields are
    /// left as they are.
    pub fn dictionary(mut self, name: &str) -> Self {
        if let Some(i) = crate::rows::field_index(&self.schema, name)
            && matches!(self.schema[i].ty, FieldType::Str | FieldType::Bytes)
        {
            self.columns[i].buffers = Buffers::Dict {
                keys: Vec::new(),
                offsets: vec![0],
                data: Vec::new(),
                index: Interner::default(),
            };
        }
        self
    }

    /// The schema of the rows.
    pub fn schema(&self) -> &[Field] {
        &self.schema
    }

    /// Number of finished rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no row is finished.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every row, keeping the buffers' memory.
    pub fn clear(&mut self) {
        for column in &mut self.columns {
            match &mut column.buffers {
                Buffers::Fixed(values) => values.clear(),
                Buffers::Bits(bits) => bits.clear(),
                Buffers::Var { offsets, data } => {
                    offsets.truncate(1);
                    data.clear();
                }
                Buffers::Dict {
                    keys,
                    offsets,
                    data,
                    index,
                } => {
                    keys.clear();
                    offsets.truncate(1);
                    data.clear();
                    index.clear();
                }
            }
            column.validity = None;
        }
        self.len = 0;
        self.next = 0;
    }

    /// The column the next value goes to, marking it valid.
    #[inline]
    fn column(&mut self) -> &mut ColumnBuffers {
        let i = self.next;
        self.next += 1;
        let column = &mut self.columns[i];
        if let Some(validity) = &mut column.validity {
            validity.push(true);
        }
        column
    }

    /// Writes an `int64` or `timestamp` value (ms since the epoch) to the next column.
    #[inline]
    pub fn push_i64(&mut self, v: i64) {
        self.push_fixed(v.to_le_bytes());
    }

    /// Writes a `float64` value to the next column.
    #[inline]
    pub fn push_f64(&mut self, v: f64) {
        self.push_fixed(v.to_le_bytes());
    }

    #[inline]
    fn push_fixed(&mut self, bytes: [u8; 8]) {
        match &mut self.column().buffers {
            Buffers::Fixed(values) => values.extend_from_slice(&bytes),
            _ => panic!("a fixed-width value for a column of another type"),
        }
    }

    /// Writes a `boolean` value to the next column.
    #[inline]
    pub fn push_bool(&mut self, v: bool) {
        match &mut self.column().buffers {
            Buffers::Bits(bits) => bits.push(v),
            _ => panic!("a boolean for a column of another type"),
        }
    }

    /// Writes a `str` value to the next column.
    #[inline]
    pub fn push_str(&mut self, s: &str) {
        self.push_bytes(s.as_bytes());
    }

    /// Writes a `bytes` value (or text as bytes) to the next column. Panics when a batch's
    /// data of one column passes 4 GiB.
    #[inline]
    pub fn push_bytes(&mut self, b: &[u8]) {
        let end = |data: &Vec<u8>| u32::try_from(data.len()).expect("column data under 4 GiB");
        match &mut self.column().buffers {
            Buffers::Var { offsets, data } => {
                data.extend_from_slice(b);
                offsets.push(end(data));
            }
            Buffers::Dict {
                keys,
                offsets,
                data,
                index,
            } => {
                // Neighbouring rows often repeat a value (readings of one station in a row):
                // the previous row's entry is compared before any hashing.
                if let Some(&last) = keys.last() {
                    let (start, end) = (offsets[last as usize], offsets[last as usize + 1]);
                    if bytes_eq(&data[start as usize..end as usize], b) {
                        keys.push(last);
                        return;
                    }
                }
                let key = index.intern(b, offsets, data);
                keys.push(key);
            }
            _ => panic!("text or bytes for a column of another type"),
        }
    }

    /// Writes a null to the next column (which must be nullable: checked when the batch is
    /// read). The column keeps a placeholder value, as Arrow does.
    pub fn push_null(&mut self) {
        let (i, len) = (self.next, self.len);
        let column = &mut self.columns[i];
        let validity = column.validity.get_or_insert_with(|| {
            let mut bits = BitVec::default();
            (0..len).for_each(|_| bits.push(true));
            bits
        });
        validity.push(false);
        self.next += 1;
        match &mut column.buffers {
            Buffers::Fixed(values) => values.extend_from_slice(&[0; 8]),
            Buffers::Bits(bits) => bits.push(false),
            Buffers::Var { offsets, .. } => offsets.push(*offsets.last().unwrap_or(&0)),
            Buffers::Dict { keys, .. } => keys.push(0),
        }
        // A key must name an entry even for a null: make sure entry 0 exists.
        if let Buffers::Dict { offsets, .. } = &mut column.buffers
            && offsets.len() == 1
        {
            offsets.push(0);
        }
    }

    /// Writes `value` to the next column; an error when it does not fit the field.
    pub fn push_value(&mut self, value: Value<'_>) -> Result<(), DecodeError> {
        let field = &self.schema[self.next];
        if !value.fits(field) {
            let message = format!(
                "{value:?} does not fit field `{}` ({})",
                field.name, field.ty
            );
            return Err(DecodeError { offset: 0, message });
        }
        match value {
            Value::Null => self.push_null(),
            Value::Str(s) => self.push_str(s),
            Value::Bytes(b) => self.push_bytes(b),
            Value::Int64(v) | Value::Timestamp(v) => self.push_i64(v),
            Value::Float64(v) => self.push_f64(v),
            Value::Boolean(v) => self.push_bool(v),
        }
        Ok(())
    }

    /// Finishes a row: every column must have had its value. Panics otherwise (a plugin bug
    /// caught where it happens, not as a malformed batch later).
    #[inline]
    pub fn end_row(&mut self) {
        assert_eq!(
            self.next,
            self.columns.len(),
            "a row needs one value per column"
        );
        self.next = 0;
        self.len += 1;
    }

    /// Lays the finished rows out as `arena` and `columns` (both cleared first, their
    /// memory reused), each buffer starting at a multiple of 8.
    pub fn finish(&self, arena: &mut Vec<u8>, columns: &mut Vec<Column>) {
        arena.clear();
        columns.clear();
        for column in &self.columns {
            let validity = column.validity.as_ref().map(|v| put(arena, &v.bytes));
            let (values, data, dictionary) = match &column.buffers {
                Buffers::Fixed(values) => (put(arena, values), 0, None),
                Buffers::Bits(bits) => (put(arena, &bits.bytes), 0, None),
                Buffers::Var { offsets, data } => {
                    (put_u32s(arena, offsets), put(arena, data), None)
                }
                Buffers::Dict {
                    keys,
                    offsets,
                    data,
                    ..
                } => {
                    let keys = put_u32s(arena, keys);
                    let dictionary = Dictionary {
                        offsets: put_u32s(arena, offsets),
                        entries: (offsets.len() - 1) as u32,
                    };
                    (keys, put(arena, data), Some(dictionary))
                }
            };
            columns.push(Column {
                validity,
                values,
                data,
                dictionary,
            });
        }
    }

    /// The finished rows as a checked view over `arena` and `columns` (filled by
    /// [`ColumnsBuilder::finish`]); for callers that link a plugin natively.
    pub fn view<'a>(
        &'a self,
        arena: &'a mut Vec<u8>,
        columns: &'a mut Vec<Column>,
    ) -> Result<Columns<'a>, DecodeError> {
        self.finish(arena, columns);
        Columns::new(&self.schema, self.len, arena, columns)
    }
}

/// Whether two byte strings are equal, eight bytes at a time (a `memcmp` call is a byte loop
/// on wasm32).
#[inline]
pub fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut ca, mut cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or_default());
    let tail = |c: &[u8]| c.iter().fold(0u64, |w, &x| (w << 8) | u64::from(x));
    (&mut ca).zip(&mut cb).all(|(x, y)| word(x) == word(y))
        && tail(ca.remainder()) == tail(cb.remainder())
}

/// Appends `bytes` at the next multiple of 8; returns where they start.
fn put(arena: &mut Vec<u8>, bytes: &[u8]) -> u32 {
    arena.resize(arena.len().next_multiple_of(8), 0);
    let at = u32::try_from(arena.len()).expect("a batch under 4 GiB");
    arena.extend_from_slice(bytes);
    at
}

fn put_u32s(arena: &mut Vec<u8>, values: &[u32]) -> u32 {
    arena.resize(arena.len().next_multiple_of(8), 0);
    let at = u32::try_from(arena.len()).expect("a batch under 4 GiB");
    arena.reserve(values.len() * 4);
    for v in values {
        arena.extend_from_slice(&v.to_le_bytes());
    }
    at
}
