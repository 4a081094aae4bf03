//! The row codec of `wit/README.md`: schemas ([`Field`], [`FieldType`]), values ([`Value`]),
//! packed batches ([`BatchBuilder`] to write, [`Batch`] to read) and the per-row reader
//! ([`RowReader`]). This is the one implementation of the encoding; the host uses it too
//! (with the SDK's `guest` feature off). Decoding never panics: malformed input is a
//! [`DecodeError`].

mod builder;
mod reader;
#[cfg(test)]
mod tests;

pub use builder::BatchBuilder;
pub use reader::{Accessor, RowReader, decode_row};
use std::fmt;

/// The type of one field; mirrors `field-type` in `wit/plugin.wit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// UTF-8 text.
    Str,
    /// Signed 64-bit integer.
    Int64,
    /// IEEE-754 double.
    Float64,
    /// Boolean.
    Boolean,
    /// Milliseconds since the Unix epoch, UTC.
    Timestamp,
    /// Opaque bytes.
    Bytes,
}

impl FieldType {
    /// The WIT name of the type (`str`, `int64`, ...), for messages.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Str => "str",
            FieldType::Int64 => "int64",
            FieldType::Float64 => "float64",
            FieldType::Boolean => "boolean",
            FieldType::Timestamp => "timestamp",
            FieldType::Bytes => "bytes",
        }
    }

    /// The encoded width of a value of this type, if it is fixed.
    #[inline]
    pub fn fixed_width(self) -> Option<usize> {
        match self {
            FieldType::Int64 | FieldType::Float64 | FieldType::Timestamp => Some(8),
            FieldType::Boolean => Some(1),
            FieldType::Str | FieldType::Bytes => None,
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One field of a schema.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    /// Field name.
    pub name: String,
    /// Field type.
    pub ty: FieldType,
    /// Whether the value may be null (encoded with a tag byte).
    pub nullable: bool,
}

impl Field {
    /// A non-nullable field.
    pub fn new(name: &str, ty: FieldType) -> Self {
        Field {
            name: name.to_string(),
            ty,
            nullable: false,
        }
    }

    /// A nullable field.
    pub fn nullable(name: &str, ty: FieldType) -> Self {
        Field {
            name: name.to_string(),
            ty,
            nullable: true,
        }
    }
}

/// Index of the field called `name` in `schema`.
pub fn field_index(schema: &[Field], name: &str) -> Option<usize> {
    schema.iter().position(|f| f.name == name)
}

/// One decoded value, borrowing text and bytes from the row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// The null of a nullable field.
    Null,
    /// A `str` value.
    Str(&'a str),
    /// An `int64` value.
    Int64(i64),
    /// A `float64` value.
    Float64(f64),
    /// A `boolean` value.
    Boolean(bool),
    /// A `timestamp` value (ms since the epoch, UTC).
    Timestamp(i64),
    /// A `bytes` value.
    Bytes(&'a [u8]),
}

impl Value<'_> {
    /// Whether this value can be written for `field` (right type, or null for a nullable one).
    pub fn fits(&self, field: &Field) -> bool {
        matches!(
            (self, field.ty),
            (Value::Str(_), FieldType::Str)
                | (Value::Int64(_), FieldType::Int64)
                | (Value::Float64(_), FieldType::Float64)
                | (Value::Boolean(_), FieldType::Boolean)
                | (Value::Timestamp(_), FieldType::Timestamp)
                | (Value::Bytes(_), FieldType::Bytes)
        ) || (field.nullable && matches!(self, Value::Null))
    }
}

/// Why a row could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the row where decoding failed.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed row at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for DecodeError {}

/// Borrowed view of a packed batch: row `i` is `data[ends[i-1]..ends[i]]`.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// The encoded rows, back to back.
    pub data: &'a [u8],
    /// End offset (exclusive) of each row in `data`.
    pub ends: &'a [u32],
}

impl<'a> Batch<'a> {
    /// A view over `data` and `ends`.
    pub fn new(data: &'a [u8], ends: &'a [u32]) -> Self {
        Batch { data, ends }
    }

    /// Number of rows.
    #[inline]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch has no rows.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of row `i`; an empty slice if `i` is out of range or the offsets are bad.
    #[inline]
    pub fn row(&self, i: usize) -> &'a [u8] {
        let Some(&end) = self.ends.get(i) else {
            return &[];
        };
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data.get(start as usize..end as usize).unwrap_or(&[])
    }

    /// The rows in order.
    pub fn rows(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let this = *self;
        (0..this.len()).map(move |i| this.row(i))
    }

    /// Checks that the end offsets never decrease and stay within the data, and that the
    /// last one is the end of the data.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let mut prev = 0u32;
        for (i, &end) in self.ends.iter().enumerate() {
            if end < prev || end as usize > self.data.len() {
                let message = format!(
                    "row {i} ends at {end}, after {prev} in {} bytes",
                    self.data.len()
                );
                return Err(DecodeError {
                    offset: prev as usize,
                    message,
                });
            }
            prev = end;
        }
        if prev as usize != self.data.len() {
            let message = format!(
                "{} bytes follow the last row",
                self.data.len() - prev as usize
            );
            return Err(DecodeError {
                offset: prev as usize,
                message,
            });
        }
        Ok(())
    }
}
