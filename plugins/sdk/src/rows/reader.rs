//! Reading rows: the sequential [`RowReader`], [`decode_row`] for a whole row, and the
//! precomputed [`Accessor`] for one field of many rows. Every read is bounds-checked.

use super::{DecodeError, Field, FieldType, Value};

/// Sequential reader over the fields of one row.
#[derive(Clone, Debug)]
pub struct RowReader<'a> {
    row: &'a [u8],
    pos: usize,
}

impl<'a> RowReader<'a> {
    /// A reader at the start of `row`.
    pub fn new(row: &'a [u8]) -> Self {
        RowReader { row, pos: 0 }
    }

    /// The current byte offset in the row.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.row.len() - self.pos
    }

    fn error(&self, message: String) -> DecodeError {
        DecodeError {
            offset: self.pos,
            message,
        }
    }

    #[inline]
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            let have = self.remaining();
            return Err(self.error(format!("{what} needs {n} bytes, {have} left")));
        }
        let out = &self.row[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    #[inline]
    fn fixed<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// Reads a `bytes` value.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = u32::from_le_bytes(self.fixed::<4>("a length")?);
        self.take(len as usize, "a value")
    }

    /// Reads a `str` value, checking it is UTF-8.
    #[inline]
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|e| DecodeError {
            offset: start + 4 + e.valid_up_to(),
            message: "text is not UTF-8".to_string(),
        })
    }

    /// Reads an `int64` value.
    #[inline]
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.fixed::<8>("an int64")?))
    }

    /// Reads a `timestamp` value (ms since the epoch).
    #[inline]
    pub fn timestamp(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.fixed::<8>("a timestamp")?))
    }

    /// Reads a `float64` value.
    #[inline]
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.fixed::<8>("a float64")?))
    }

    /// Reads a `boolean` value (byte `0` or `1`).
    #[inline]
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.fixed::<1>("a boolean")?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => {
                self.pos -= 1;
                Err(self.error(format!("boolean byte is {b}, not 0 or 1")))
            }
        }
    }

    /// Reads the tag byte of a nullable field: `true` when a value follows.
    #[inline]
    pub fn is_present(&mut self) -> Result<bool, DecodeError> {
        match self.fixed::<1>("a null tag")?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => {
                self.pos -= 1;
                Err(self.error(format!("null tag is {b}, not 0 or 1")))
            }
        }
    }

    /// Reads the value of `field` (with its tag when the field is nullable).
    #[inline]
    pub fn value(&mut self, field: &Field) -> Result<Value<'a>, DecodeError> {
        if field.nullable && !self.is_present()? {
            return Ok(Value::Null);
        }
        Ok(match field.ty {
            FieldType::Str => Value::Str(self.str()?),
            FieldType::Int64 => Value::Int64(self.i64()?),
            FieldType::Float64 => Value::Float64(self.f64()?),
            FieldType::Boolean => Value::Boolean(self.bool()?),
            FieldType::Timestamp => Value::Timestamp(self.timestamp()?),
            FieldType::Bytes => Value::Bytes(self.bytes()?),
        })
    }

    /// Skips the value of `field` without validating text.
    #[inline]
    pub fn skip(&mut self, field: &Field) -> Result<(), DecodeError> {
        if field.nullable && !self.is_present()? {
            return Ok(());
        }
        match field.ty.fixed_width() {
            Some(n) => self.take(n, field.ty.name()).map(|_| ()),
            None => self.bytes().map(|_| ()),
        }
    }
}

/// Decodes every field of `row` per `schema`; bytes left over are an error.
pub fn decode_row<'a>(schema: &[Field], row: &'a [u8]) -> Result<Vec<Value<'a>>, DecodeError> {
    let mut r = RowReader::new(row);
    let values = schema
        .iter()
        .map(|f| r.value(f))
        .collect::<Result<Vec<_>, _>>()?;
    if r.remaining() > 0 {
        let n = r.remaining();
        return Err(r.error(format!("{n} bytes follow the last field")));
    }
    Ok(values)
}

/// Reads one field of many rows of the same schema: when every field before it has a fixed
/// width and no tag, it jumps straight to the field; otherwise it skips the fields before it.
#[derive(Clone, Debug)]
pub struct Accessor {
    field: Field,
    fixed_offset: Option<usize>,
    before: Vec<Field>,
}

impl Accessor {
    /// An accessor for the field called `name`, or `None` if `schema` has no such field.
    pub fn new(schema: &[Field], name: &str) -> Option<Self> {
        let index = super::field_index(schema, name)?;
        let before = schema[..index].to_vec();
        let fixed_offset = before
            .iter()
            .map(|f| if f.nullable { None } else { f.ty.fixed_width() })
            .sum::<Option<usize>>();
        Some(Accessor {
            field: schema[index].clone(),
            fixed_offset,
            before,
        })
    }

    /// The field this accessor reads.
    pub fn field(&self) -> &Field {
        &self.field
    }

    /// Reads the field from `row`.
    pub fn read<'a>(&self, row: &'a [u8]) -> Result<Value<'a>, DecodeError> {
        let mut r = RowReader::new(row);
        match self.fixed_offset {
            Some(off) => {
                r.take(off, "the fields before")?;
            }
            None => {
                for f in &self.before {
                    r.skip(f)?;
                }
            }
        }
        r.value(&self.field)
    }
}
