//! The column layout of `sluice:plugin@0.2` (`wit/README.md`, "Columns"): a batch is one
//! byte arena plus one [`Column`] descriptor per schema field, Arrow-compatible in its
//! buffers (validity bitmaps, fixed-width little-endian values, `u32` offsets plus data for
//! text and bytes, dictionary keys for low-cardinality text). [`Columns`] reads a batch with
//! typed access by field name; [`ColumnsBuilder`] writes one row at a time, column by column,
//! reusing its buffers across batches. This is the one implementation of the layout: plugins
//! use it through the SDK, the host uses it too (with the `guest` feature off), and
//! [`convert`] moves batches between it and the row encoding of `sluice:plugin@0.1`.
//!
//! Checking a batch ([`Columns::new`]) costs time in proportion to its columns, not its rows:
//! every buffer must lie inside the arena and have the length its type and the row count
//! imply, and the data of text and bytes must reach as far as their last offset. Other
//! offsets and dictionary keys are checked where they are read, so a malformed value
//! is an error at that value and never a panic or an out-of-bounds read.

mod build;
pub mod convert;
mod intern;
mod read;
#[cfg(test)]
mod tests;

pub use build::{ColumnsBuilder, bytes_eq};
pub use read::{Bits, Fixed, Var};

use crate::rows::{DecodeError, Field, FieldType};

/// Where one column's buffers lie in a batch's arena (byte offsets); mirrors `column` in
/// `wit/plugin.wit`.
///
/// - `int64`, `timestamp`, `float64`: `values` holds one 8-byte little-endian value per row.
/// - `boolean`: `values` holds a bitmap, one bit per row (least significant bit first).
/// - `str`, `bytes`: `values` holds `rows + 1` little-endian `u32` offsets relative to
///   `data`; value `i` is `arena[data + offsets[i] .. data + offsets[i + 1]]`. With a
///   `dictionary`, `values` holds one `u32` key per row instead, and the dictionary's
///   offsets delimit its entries the same way.
/// - `validity`: a bitmap with bit `i` set when row `i` has a value; absent when every row
///   has one, and allowed on nullable fields only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Column {
    /// Offset of the validity bitmap, if any row is null.
    pub validity: Option<u32>,
    /// Offset of the values, the offsets or the dictionary keys.
    pub values: u32,
    /// Offset of the bytes that text and bytes offsets point into (0 for other types).
    pub data: u32,
    /// For dictionary-encoded text and bytes: where the entries' offsets lie.
    pub dictionary: Option<Dictionary>,
}

/// The entries of a dictionary-encoded column; mirrors `dictionary` in `wit/plugin.wit`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dictionary {
    /// Offset of the `entries + 1` little-endian `u32` offsets of the entries.
    pub offsets: u32,
    /// Number of entries.
    pub entries: u32,
}

/// A checked, borrowed batch in the column layout.
#[derive(Clone, Copy, Debug)]
pub struct Columns<'a> {
    schema: &'a [Field],
    len: usize,
    arena: &'a [u8],
    columns: &'a [Column],
}

impl<'a> Columns<'a> {
    /// Checks that `columns` describe `len` rows of `schema` inside `arena` (in time
    /// proportional to the number of columns) and returns the view.
    pub fn new(
        schema: &'a [Field],
        len: usize,
        arena: &'a [u8],
        columns: &'a [Column],
    ) -> Result<Self, DecodeError> {
        if columns.len() != schema.len() {
            return Err(layout(format!(
                "{} column(s) for a schema of {} field(s)",
                columns.len(),
                schema.len()
            )));
        }
        let this = Columns {
            schema,
            len,
            arena,
            columns,
        };
        for i in 0..columns.len() {
            this.check(i)?;
        }
        Ok(this)
    }

    /// Number of rows.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The schema of the rows.
    pub fn schema(&self) -> &'a [Field] {
        self.schema
    }

    /// The arena and descriptors, as they travel.
    pub fn parts(&self) -> (&'a [u8], &'a [Column]) {
        (self.arena, self.columns)
    }

    /// Index of the field called `name`.
    pub fn index(&self, name: &str) -> Result<usize, DecodeError> {
        crate::rows::field_index(self.schema, name)
            .ok_or_else(|| layout(format!("no field `{name}` in the input schema")))
    }

    /// The `int64` column called `name`.
    pub fn i64(&self, name: &str) -> Result<Fixed<'a, i64>, DecodeError> {
        self.fixed(self.typed(name, FieldType::Int64)?)
    }

    /// The `timestamp` column called `name` (ms since the epoch, UTC).
    pub fn timestamp(&self, name: &str) -> Result<Fixed<'a, i64>, DecodeError> {
        self.fixed(self.typed(name, FieldType::Timestamp)?)
    }

    /// The `float64` column called `name`.
    pub fn f64(&self, name: &str) -> Result<Fixed<'a, f64>, DecodeError> {
        self.fixed(self.typed(name, FieldType::Float64)?)
    }

    /// The `boolean` column called `name`.
    pub fn bool(&self, name: &str) -> Result<Bits<'a>, DecodeError> {
        let i = self.typed(name, FieldType::Boolean)?;
        Ok(self.bits_at(i))
    }

    /// The `str` column called `name` (text is checked as UTF-8 where it is read as `&str`).
    pub fn str(&self, name: &str) -> Result<Var<'a>, DecodeError> {
        Ok(self.var_at(self.typed(name, FieldType::Str)?))
    }

    /// The `bytes` column called `name`.
    pub fn bytes(&self, name: &str) -> Result<Var<'a>, DecodeError> {
        Ok(self.var_at(self.typed(name, FieldType::Bytes)?))
    }

    /// Column `i` as fixed-width values (`int64`, `timestamp`, `float64`).
    pub fn fixed<T: read::FixedValue>(&self, i: usize) -> Result<Fixed<'a, T>, DecodeError> {
        match self.schema[i].ty.fixed_width() {
            Some(8) => Ok(Fixed::new(
                self.slice(self.columns[i].values, self.len * 8),
                self.validity(i),
            )),
            _ => Err(layout(format!(
                "field `{}` is {}, not 8-byte values",
                self.schema[i].name, self.schema[i].ty
            ))),
        }
    }

    /// Column `i` as a bitmap (`boolean`).
    pub fn bits_at(&self, i: usize) -> Bits<'a> {
        Bits::new(
            self.slice(self.columns[i].values, self.len.div_ceil(8)),
            self.len,
        )
    }

    /// Column `i` as variable-width values (`str`, `bytes`).
    pub fn var_at(&self, i: usize) -> Var<'a> {
        let column = &self.columns[i];
        let data = &self.arena[column.data as usize..];
        match column.dictionary {
            None => Var::plain(self.slice(column.values, (self.len + 1) * 4), data),
            Some(d) => Var::dictionary(
                self.slice(column.values, self.len * 4),
                self.slice(d.offsets, (d.entries as usize + 1) * 4),
                data,
            ),
        }
        .with_validity(self.validity(i))
    }

    /// The validity bitmap of column `i`, if it has one.
    pub fn validity(&self, i: usize) -> Option<Bits<'a>> {
        self.columns[i]
            .validity
            .map(|at| Bits::new(self.slice(at, self.len.div_ceil(8)), self.len))
    }

    fn typed(&self, name: &str, ty: FieldType) -> Result<usize, DecodeError> {
        let i = self.index(name)?;
        if self.schema[i].ty != ty {
            return Err(layout(format!(
                "field `{name}` is {}, not {ty}",
                self.schema[i].ty
            )));
        }
        Ok(i)
    }

    /// A buffer [`Columns::check`] has found inside the arena.
    fn slice(&self, at: u32, len: usize) -> &'a [u8] {
        &self.arena[at as usize..at as usize + len]
    }

    /// Checks the buffers of column `i` against the arena, its type and the row count.
    fn check(&self, i: usize) -> Result<(), DecodeError> {
        let (field, column) = (&self.schema[i], &self.columns[i]);
        let within = |what: &str, at: u32, len: Option<usize>| {
            let end = len.and_then(|n| (at as usize).checked_add(n));
            match end {
                Some(end) if end <= self.arena.len() => Ok(()),
                _ => Err(layout(format!(
                    "the {what} of field `{}` ({} row(s)) run past the arena of {} bytes",
                    field.name,
                    self.len,
                    self.arena.len()
                ))),
            }
        };
        if column.validity.is_some() && !field.nullable {
            return Err(layout(format!(
                "field `{}` is not nullable but has a validity bitmap",
                field.name
            )));
        }
        if let Some(at) = column.validity {
            within("validity bitmap", at, Some(self.len.div_ceil(8)))?;
        }
        match (field.ty, column.dictionary) {
            (FieldType::Str | FieldType::Bytes, None) => {
                let n = self.len.checked_add(1).and_then(|n| n.checked_mul(4));
                within("offsets", column.values, n)?;
                let last = self.u32_at(column.values, self.len);
                within("data", column.data, Some(last))
            }
            (FieldType::Str | FieldType::Bytes, Some(d)) => {
                within("dictionary keys", column.values, self.len.checked_mul(4))?;
                let n = (d.entries as usize)
                    .checked_add(1)
                    .and_then(|n| n.checked_mul(4));
                within("dictionary offsets", d.offsets, n)?;
                let last = self.u32_at(d.offsets, d.entries as usize);
                within("data", column.data, Some(last))
            }
            (ty, Some(_)) => Err(layout(format!(
                "field `{}` is {ty}: only str and bytes may be dictionary-encoded",
                field.name
            ))),
            (FieldType::Boolean, None) => {
                within("values", column.values, Some(self.len.div_ceil(8)))
            }
            (_, None) => within("values", column.values, self.len.checked_mul(8)),
        }
    }
}

impl Columns<'_> {
    /// The `i`th little-endian `u32` of the buffer at `at` (inside the arena: checked).
    fn u32_at(&self, at: u32, i: usize) -> usize {
        let at = at as usize + i * 4;
        u32::from_le_bytes(self.arena[at..at + 4].try_into().expect("4 bytes")) as usize
    }
}

fn layout(message: String) -> DecodeError {
    DecodeError { offset: 0, message }
}
