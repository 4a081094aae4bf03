//! Rows as they pass between the steps of a chain ([`Rows`]): packed rows (the 0.1 layout,
//! which the host's sinks, its late-record filter and 0.1 plugins read), or the column batch
//! a 0.2 plugin returned ([`ColumnRows`]), handed as it is to a 0.2 plugin after it, so
//! that two 0.2 steps in a row exchange their arena without the host re-encoding a row. A
//! column batch was checked per column at the boundary; [`Rows::into_packed`] checks every
//! value as it reads it.

use sluice_plugin_sdk::columns::{Column, Columns, ColumnsBuilder, Dictionary, convert};
use sluice_plugin_sdk::rows::{BatchBuilder, DecodeError, Field};

use super::bindings::{Batch, v0_2};

/// Rows between two steps.
#[derive(Debug)]
pub enum Rows {
    /// Packed rows (`wit/README.md`, "Batches (0.1)").
    Packed(Batch),
    /// A 0.2 column batch, with its schema.
    Columns(ColumnRows),
}

/// A column batch a 0.2 plugin returned, checked per column.
#[derive(Debug)]
pub struct ColumnRows {
    /// The batch as it travels (and is passed to the next 0.2 plugin).
    pub batch: v0_2::Batch,
    /// Its descriptors in SDK types, for reading it.
    columns: Vec<Column>,
    /// The schema of its rows.
    schema: Vec<Field>,
    /// The most bytes its rows may take once read (the producing plugin's output limit): a
    /// small arena can name one large value on every row.
    max_bytes: usize,
}

impl ColumnRows {
    /// Checks `batch` against `schema` in time per column (see `Columns::new`); its rows
    /// may take `max_bytes` once read.
    pub fn new(
        batch: v0_2::Batch,
        schema: &[Field],
        max_bytes: usize,
    ) -> Result<Self, DecodeError> {
        let columns: Vec<Column> = batch.columns.iter().map(sdk_column).collect();
        Columns::new(schema, batch.len as usize, &batch.arena, &columns)?;
        Ok(ColumnRows {
            batch,
            columns,
            schema: schema.to_vec(),
            max_bytes,
        })
    }

    /// The rows packed, every value checked, within the byte budget.
    fn pack(&self) -> Result<Batch, DecodeError> {
        let mut rows = BatchBuilder::with_capacity(self.batch.len as usize, self.batch.arena.len());
        convert::to_rows(&self.view(), &mut rows, self.max_bytes)?;
        let (data, ends) = rows.into_parts();
        Ok(Batch { data, ends })
    }

    /// The checked view of the batch.
    pub fn view(&self) -> Columns<'_> {
        Columns::new(
            &self.schema,
            self.batch.len as usize,
            &self.batch.arena,
            &self.columns,
        )
        .expect("checked when made")
    }

    /// The rows at `keep` (indices into this batch, ascending), as a new batch; a row with a
    /// value that does not read (offsets or key outside the batch, text that is not UTF-8),
    /// or past the byte budget, is left out and returned with the reason instead (ascending).
    pub fn select(&self, keep: &[u32]) -> (Rows, Vec<(u32, String)>) {
        let view = self.view();
        let mut out = ColumnsBuilder::new(&self.schema);
        let mut bad = Vec::new();
        let mut values = Vec::with_capacity(self.schema.len());
        let mut bytes = 0usize;
        for &row in keep {
            values.clear();
            let read: Result<(), DecodeError> = (0..self.schema.len()).try_for_each(|c| {
                let v = convert::value(&view, c, row as usize)?;
                bytes = bytes.saturating_add(convert::value_len(&v));
                if bytes > self.max_bytes {
                    return Err(convert::over(row as usize, self.max_bytes));
                }
                values.push(v);
                Ok(())
            });
            match read {
                Ok(()) => {
                    for v in values.drain(..) {
                        out.push_value(v).expect("a value of its own column fits");
                    }
                    out.end_row();
                }
                Err(e) => bad.push((row, e.message)),
            }
        }
        let mut batch = v0_2::Batch {
            len: out.len() as u32,
            arena: Vec::new(),
            columns: Vec::new(),
        };
        let mut columns = Vec::new();
        out.finish(&mut batch.arena, &mut columns);
        batch.columns = columns.iter().map(wit_column).collect();
        let rows = ColumnRows {
            batch,
            columns,
            schema: self.schema.clone(),
            max_bytes: self.max_bytes,
        };
        (Rows::Columns(rows), bad)
    }
}

impl Rows {
    /// No rows.
    pub fn empty() -> Self {
        Rows::Packed(Batch {
            data: Vec::new(),
            ends: Vec::new(),
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Rows::Packed(b) => b.ends.len(),
            Rows::Columns(c) => c.batch.len as usize,
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the rows take (the packed data, or the arena).
    pub fn byte_len(&self) -> usize {
        match self {
            Rows::Packed(b) => b.data.len(),
            Rows::Columns(c) => c.batch.arena.len(),
        }
    }

    /// The rows packed, every value checked and within the producing plugin's output limit;
    /// an error names the row and field that does not read.
    pub fn into_packed(self) -> Result<Batch, DecodeError> {
        match self {
            Rows::Packed(b) => Ok(b),
            Rows::Columns(c) => c.pack(),
        }
    }

    /// [`Rows::into_packed`] without giving the rows up.
    pub fn to_packed(&self) -> Result<std::borrow::Cow<'_, Batch>, DecodeError> {
        match self {
            Rows::Packed(b) => Ok(std::borrow::Cow::Borrowed(b)),
            Rows::Columns(c) => c.pack().map(std::borrow::Cow::Owned),
        }
    }
}

/// A descriptor of the bindings as the SDK's.
pub fn sdk_column(c: &v0_2::Column) -> Column {
    Column {
        validity: c.validity,
        values: c.values,
        data: c.data,
        dictionary: c.dictionary.as_ref().map(|d| Dictionary {
            offsets: d.offsets,
            entries: d.entries,
        }),
    }
}

/// A descriptor of the SDK as the bindings'.
pub fn wit_column(c: &Column) -> v0_2::Column {
    v0_2::Column {
        validity: c.validity,
        values: c.values,
        data: c.data,
        dictionary: c.dictionary.map(|d| v0_2::Dictionary {
            offsets: d.offsets,
            entries: d.entries,
        }),
    }
}
