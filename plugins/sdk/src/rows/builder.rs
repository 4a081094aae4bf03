//! Writing packed batches: [`BatchBuilder`] encodes values per `wit/README.md` and records
//! the end offset of each finished row.

use super::{Batch, Field, Value};

/// Builds a packed batch: write each field of a row with the `put_*` methods in schema
/// order, then call [`BatchBuilder::end_row`].
#[derive(Default, Debug, Clone)]
pub struct BatchBuilder {
    /// The encoded rows, back to back.
    pub data: Vec<u8>,
    /// End offset (exclusive) of each finished row in `data`.
    pub ends: Vec<u32>,
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder with room for `rows` rows and `bytes` bytes of data.
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        BatchBuilder {
            data: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(rows),
        }
    }

    /// Writes a `str` value.
    #[inline]
    pub fn put_str(&mut self, s: &str) {
        self.put_bytes(s.as_bytes());
    }

    /// Writes a `bytes` value. Panics if it is 4 GiB or longer.
    #[inline]
    pub fn put_bytes(&mut self, b: &[u8]) {
        let len = u32::try_from(b.len()).expect("a field value must be shorter than 4 GiB");
        self.data.extend_from_slice(&len.to_le_bytes());
        self.data.extend_from_slice(b);
    }

    /// Writes an `int64` value.
    #[inline]
    pub fn put_i64(&mut self, v: i64) {
        self.data.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes a `timestamp` value (ms since the epoch).
    #[inline]
    pub fn put_timestamp(&mut self, ms: i64) {
        self.put_i64(ms);
    }

    /// Writes a `float64` value.
    #[inline]
    pub fn put_f64(&mut self, v: f64) {
        self.data.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes a `boolean` value.
    #[inline]
    pub fn put_bool(&mut self, v: bool) {
        self.data.push(u8::from(v));
    }

    /// Writes the null of a nullable field (tag byte `0`).
    #[inline]
    pub fn put_null(&mut self) {
        self.data.push(0);
    }

    /// Writes the "a value follows" tag (`1`) of a nullable field; write the value next.
    #[inline]
    pub fn put_present(&mut self) {
        self.data.push(1);
    }

    /// Writes `v` as the value of `field`, with the tag byte when the field is nullable.
    ///
    /// Panics if `v` does not fit `field` (see [`Value::fits`]): that is a bug in the caller.
    #[inline]
    pub fn put_value(&mut self, field: &Field, v: Value<'_>) {
        assert!(
            v.fits(field),
            "value {v:?} does not fit field {:?}",
            field.name
        );
        if field.nullable {
            if matches!(v, Value::Null) {
                self.put_null();
                return;
            }
            self.put_present();
        }
        match v {
            Value::Null => {}
            Value::Str(s) => self.put_str(s),
            Value::Int64(i) => self.put_i64(i),
            Value::Float64(f) => self.put_f64(f),
            Value::Boolean(b) => self.put_bool(b),
            Value::Timestamp(t) => self.put_timestamp(t),
            Value::Bytes(b) => self.put_bytes(b),
        }
    }

    /// Finishes the current row. Panics if the batch data reaches 4 GiB.
    #[inline]
    pub fn end_row(&mut self) {
        let end = u32::try_from(self.data.len()).expect("a batch must be smaller than 4 GiB");
        self.ends.push(end);
    }

    /// Number of finished rows.
    #[inline]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no row has been finished.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Forgets every row, keeping the allocations.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// Drops any unfinished row (bytes written since the last [`BatchBuilder::end_row`]).
    pub fn discard_row(&mut self) {
        let end = self.ends.last().map_or(0, |&e| e as usize);
        self.data.truncate(end);
    }

    /// A view of the finished rows.
    pub fn as_batch(&self) -> Batch<'_> {
        let end = self.ends.last().map_or(0, |&e| e as usize);
        Batch::new(&self.data[..end], &self.ends)
    }

    /// The data and end offsets, as they travel in a WIT `batch`.
    pub fn into_parts(self) -> (Vec<u8>, Vec<u32>) {
        (self.data, self.ends)
    }
}
