//! Typed views of one column: [`Fixed`] (8-byte values), [`Bits`] (booleans and validity)
//! and [`Var`] (text and bytes, plain or dictionary-encoded). The buffers were checked
//! against the row count by [`super::Columns::new`]; offsets and keys are checked here, where
//! they are read.

use std::marker::PhantomData;

/// A fixed-width value type of the layout.
pub trait FixedValue: Copy {
    /// The value from its 8 little-endian bytes.
    fn from_le(bytes: [u8; 8]) -> Self;
}

impl FixedValue for i64 {
    #[inline]
    fn from_le(bytes: [u8; 8]) -> Self {
        i64::from_le_bytes(bytes)
    }
}

impl FixedValue for f64 {
    #[inline]
    fn from_le(bytes: [u8; 8]) -> Self {
        f64::from_le_bytes(bytes)
    }
}

/// A bitmap of `len` bits, least significant bit first.
#[derive(Clone, Copy, Debug)]
pub struct Bits<'a> {
    bytes: &'a [u8],
    len: usize,
}

impl<'a> Bits<'a> {
    pub(super) fn new(bytes: &'a [u8], len: usize) -> Self {
        Bits { bytes, len }
    }

    /// Number of bits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bit `i` (false past the end).
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.bytes[i / 8] & (1 << (i % 8)) != 0
    }
}

/// `len` fixed-width values (`int64`, `timestamp`, `float64`).
#[derive(Clone, Copy, Debug)]
pub struct Fixed<'a, T> {
    values: &'a [u8],
    validity: Option<Bits<'a>>,
    ty: PhantomData<T>,
}

impl<'a, T: FixedValue> Fixed<'a, T> {
    pub(super) fn new(values: &'a [u8], validity: Option<Bits<'a>>) -> Self {
        Fixed {
            values,
            validity,
            ty: PhantomData,
        }
    }

    /// Number of values.
    #[inline]
    pub fn len(&self) -> usize {
        self.values.len() / 8
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value of row `i`, whatever its validity says (a null row holds a placeholder).
    /// Panics when `i` is past the last row.
    #[inline]
    pub fn get(&self, i: usize) -> T {
        let at = i * 8;
        let bytes: [u8; 8] = self.values[at..at + 8].try_into().expect("8 bytes");
        T::from_le(bytes)
    }

    /// The value of row `i`, or `None` when it is null or past the last row.
    #[inline]
    pub fn value(&self, i: usize) -> Option<T> {
        let valid = i < self.len() && self.validity.is_none_or(|v| v.get(i));
        valid.then(|| self.get(i))
    }

    /// The values in order (placeholders for nulls).
    pub fn iter(&self) -> impl Iterator<Item = T> + 'a {
        self.values
            .chunks_exact(8)
            .map(|c| T::from_le(c.try_into().expect("8 bytes")))
    }
}

/// `len` variable-width values (`str`, `bytes`), plain or dictionary-encoded.
#[derive(Clone, Copy, Debug)]
pub struct Var<'a> {
    /// Plain: `len + 1` offsets. Dictionary: the entries' `entries + 1` offsets.
    offsets: &'a [u8],
    /// Dictionary: one key per row.
    keys: Option<&'a [u8]>,
    data: &'a [u8],
    validity: Option<Bits<'a>>,
}

/// The `i`th little-endian `u32` of `buffer`, if it has one (`i * 4` checked: it can wrap
/// on wasm32).
#[inline]
fn u32_at(buffer: &[u8], i: usize) -> Option<u32> {
    let at = i.checked_mul(4)?;
    let bytes = buffer.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

impl<'a> Var<'a> {
    pub(super) fn plain(offsets: &'a [u8], data: &'a [u8]) -> Self {
        Var {
            offsets,
            keys: None,
            data,
            validity: None,
        }
    }

    pub(super) fn dictionary(keys: &'a [u8], offsets: &'a [u8], data: &'a [u8]) -> Self {
        Var {
            offsets,
            keys: Some(keys),
            data,
            validity: None,
        }
    }

    pub(super) fn with_validity(mut self, validity: Option<Bits<'a>>) -> Self {
        self.validity = validity;
        self
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self.keys {
            Some(keys) => keys.len() / 4,
            None => (self.offsets.len() / 4).saturating_sub(1),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether row `i` holds a value (not null, not past the end).
    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        i < self.len() && self.validity.is_none_or(|v| v.get(i))
    }

    /// The bytes of row `i`: `None` when it is null, past the end, or its offsets (or key)
    /// do not delimit bytes of the batch.
    #[inline]
    pub fn bytes(&self, i: usize) -> Option<&'a [u8]> {
        if !self.is_valid(i) {
            return None;
        }
        match self.keys {
            Some(keys) => self.entry(u32_at(keys, i)?),
            None => self.span(i),
        }
    }

    /// The text of row `i`, as [`Var::bytes`] and valid UTF-8.
    #[inline]
    pub fn str(&self, i: usize) -> Option<&'a str> {
        std::str::from_utf8(self.bytes(i)?).ok()
    }

    /// For a dictionary-encoded column, the key of row `i` (`None` when null or plain).
    #[inline]
    pub fn key(&self, i: usize) -> Option<u32> {
        if !self.is_valid(i) {
            return None;
        }
        u32_at(self.keys?, i)
    }

    /// For a dictionary-encoded column, its number of entries.
    pub fn entries(&self) -> Option<usize> {
        self.keys
            .map(|_| (self.offsets.len() / 4).saturating_sub(1))
    }

    /// For a dictionary-encoded column, the bytes of entry `key`.
    #[inline]
    pub fn entry(&self, key: u32) -> Option<&'a [u8]> {
        self.keys?;
        self.span(key as usize)
    }

    /// `data[offsets[i] .. offsets[i + 1]]`, if that is a range of the data.
    #[inline]
    fn span(&self, i: usize) -> Option<&'a [u8]> {
        let (start, end) = (u32_at(self.offsets, i)?, u32_at(self.offsets, i + 1)?);
        self.data.get(start as usize..end as usize)
    }
}
