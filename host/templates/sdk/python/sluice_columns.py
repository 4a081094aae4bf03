"""A mini SDK for sluice plugins in Python: the column layout of `sluice:plugin@0.2`.

See `wit/README.md`, "Batches (0.2): columns". A batch is one byte arena plus one column
descriptor per schema field; buffers follow Arrow's layout:

- int64, timestamp, float64: `len` 8-byte little-endian values at `values`.
- boolean: a bitmap of `len` bits (least significant bit first) at `values`.
- str, bytes: `len + 1` little-endian u32 offsets at `values`; value i is
  `arena[data + off[i] : data + off[i + 1]]`. With a dictionary, `values` holds `len` u32
  keys and the dictionary's `entries + 1` offsets delimit the entries in `data`.
- validity (nullable fields only): a bitmap of `len` bits, set where the row has a value.

Reading: `decode(schema, batch)` checks every buffer against the arena (per column, like
the Rust SDK's `Columns::new`), then decodes each column into a Python list (`None` for
nulls). Malformed values (offsets out of range or decreasing, keys past the dictionary,
invalid UTF-8) raise `ColumnError` naming the field and row.

Writing: `OutputBuilder(schema)`; `push(row, origin)` per output row (a sequence in schema
order or a dict by field name), `fail(index, reason)` per failed input row, then
`finish()` returns a `types.Output` whose arena is laid out like the Rust SDK's
`ColumnsBuilder::finish` (each buffer at a multiple of 8, validity only when a row is null).

Works in both worlds (`transform` and `window`): it only uses `wit_world.imports.types`.
"""

import math
import struct

from wit_world.imports import types

FieldType = types.FieldType

_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1
_U32_MAX = (1 << 32) - 1
_FIXED = (FieldType.INT64, FieldType.TIMESTAMP, FieldType.FLOAT64)
_VAR = (FieldType.STR, FieldType.BYTES)
_TYPE_NAMES = {
    FieldType.STR: "str",
    FieldType.INT64: "int64",
    FieldType.FLOAT64: "float64",
    FieldType.BOOLEAN: "boolean",
    FieldType.TIMESTAMP: "timestamp",
    FieldType.BYTES: "bytes",
}


class ColumnError(ValueError):
    """A batch that does not follow the layout, or a value that does not fit its field.

    `field` is the field's name, `row` the row index when one value is at fault (else None).
    """

    def __init__(self, message, field=None, row=None):
        super().__init__(message)
        self.field = field
        self.row = row


def type_name(ty):
    return _TYPE_NAMES.get(ty, str(ty))


def field_index(schema, name):
    """Index of the field called `name`, or None."""
    for i, f in enumerate(schema):
        if f.name == name:
            return i
    return None


# --------------------------------------------------------------------------- reading


def _bitmap(arena, at, n):
    """The `n` bits at byte offset `at` (checked by the caller) as a list of bools."""
    raw = arena[at : at + (n + 7) // 8]
    return [(raw[i >> 3] >> (i & 7)) & 1 == 1 for i in range(n)]


def _u32s(arena, at, n):
    return struct.unpack_from("<%dI" % n, arena, at) if n else ()


def _within(field, n_rows, arena_len, what, at, size):
    if at < 0 or size < 0 or at + size > arena_len:
        raise ColumnError(
            "the %s of field `%s` (%d row(s)) run past the arena of %d bytes"
            % (what, field.name, n_rows, arena_len),
            field=field.name,
        )


def check(schema, batch):
    """Checks every buffer of `batch` against its arena, in time per column (not per row)."""
    n, arena, columns = batch.len, batch.arena, batch.columns
    if len(columns) != len(schema):
        raise ColumnError(
            "%d column(s) for a schema of %d field(s)" % (len(columns), len(schema))
        )
    size = len(arena)
    for field, col in zip(schema, columns):
        if col.validity is not None:
            if not field.nullable:
                raise ColumnError(
                    "field `%s` is not nullable but has a validity bitmap" % field.name,
                    field=field.name,
                )
            _within(field, n, size, "validity bitmap", col.validity, (n + 7) // 8)
        ty = field.ty
        if ty in _VAR:
            if col.dictionary is None:
                _within(field, n, size, "offsets", col.values, (n + 1) * 4)
                last = _u32s(arena, col.values + n * 4, 1)[0]
            else:
                d = col.dictionary
                _within(field, n, size, "dictionary keys", col.values, n * 4)
                _within(field, n, size, "dictionary offsets", d.offsets, (d.entries + 1) * 4)
                last = _u32s(arena, d.offsets + d.entries * 4, 1)[0]
            _within(field, n, size, "data", col.data, last)
        elif col.dictionary is not None:
            raise ColumnError(
                "field `%s` is %s: only str and bytes may be dictionary-encoded"
                % (field.name, type_name(ty)),
                field=field.name,
            )
        elif ty == FieldType.BOOLEAN:
            _within(field, n, size, "values", col.values, (n + 7) // 8)
        else:
            _within(field, n, size, "values", col.values, n * 8)


def _spans(field, arena, data, offsets, count, what):
    """The `count` byte strings delimited by `offsets` (count + 1 of them) in the data."""
    out = []
    limit = len(arena)
    for i in range(count):
        start, end = offsets[i], offsets[i + 1]
        if start > end or data + end > limit:
            raise ColumnError(
                "field `%s`: %s %d has offsets %d..%d outside its data"
                % (field.name, what, i, start, end),
                field=field.name,
                row=i if what == "row" else None,
            )
        out.append(bytes(arena[data + start : data + end]))
    return out


def _text(field, raw, row):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ColumnError(
            "field `%s`, row %d: invalid UTF-8 (%s)" % (field.name, row, e.reason),
            field=field.name,
            row=row,
        ) from None


def decode_column(field, batch, column):
    """One column as a list of `batch.len` Python values (None where null).

    int64/timestamp -> int, float64 -> float, boolean -> bool, str -> str, bytes -> bytes.
    The batch must have passed `check`.
    """
    n, arena = batch.len, batch.arena
    valid = _bitmap(arena, column.validity, n) if column.validity is not None else None
    ty = field.ty
    if ty == FieldType.INT64 or ty == FieldType.TIMESTAMP:
        values = list(struct.unpack_from("<%dq" % n, arena, column.values)) if n else []
    elif ty == FieldType.FLOAT64:
        values = list(struct.unpack_from("<%dd" % n, arena, column.values)) if n else []
    elif ty == FieldType.BOOLEAN:
        values = _bitmap(arena, column.values, n)
    elif ty in _VAR:
        d = column.dictionary
        if d is None:
            offsets = _u32s(arena, column.values, n + 1)
            if valid is None:
                values = _spans(field, arena, column.data, offsets, n, "row")
            else:
                # Null rows hold placeholder offsets; only valid rows are checked.
                values = [None] * n
                limit = len(arena)
                for i in range(n):
                    if valid[i]:
                        s, e = offsets[i], offsets[i + 1]
                        if s > e or column.data + e > limit:
                            raise ColumnError(
                                "field `%s`: row %d has offsets %d..%d outside its data"
                                % (field.name, i, s, e),
                                field=field.name,
                                row=i,
                            )
                        values[i] = bytes(arena[column.data + s : column.data + e])
        else:
            entries = _spans(
                field, arena, column.data, _u32s(arena, d.offsets, d.entries + 1),
                d.entries, "dictionary entry",
            )
            if ty == FieldType.STR:
                # Each entry is decoded once per batch; a bad one fails only rows using it.
                decoded = []
                for raw in entries:
                    try:
                        decoded.append(raw.decode("utf-8"))
                    except UnicodeDecodeError:
                        decoded.append(raw)
                entries = decoded
            keys = _u32s(arena, column.values, n)
            values = [None] * n
            for i in range(n):
                if valid is not None and not valid[i]:
                    continue
                k = keys[i]
                if k >= d.entries:
                    raise ColumnError(
                        "field `%s`, row %d: key %d past the dictionary's %d entries"
                        % (field.name, i, k, d.entries),
                        field=field.name,
                        row=i,
                    )
                v = entries[k]
                if ty == FieldType.STR and isinstance(v, bytes):
                    _text(field, v, i)  # raises
                values[i] = v
            return values
        if ty == FieldType.STR:
            values = [
                None if v is None else _text(field, v, i) for i, v in enumerate(values)
            ]
    else:
        raise ColumnError("field `%s` has unknown type %r" % (field.name, ty), field=field.name)
    if valid is not None:
        for i in range(n):
            if not valid[i]:
                values[i] = None
    return values


def decode(schema, batch):
    """The columns of `batch` as lists of Python values, in schema order (checked first)."""
    check(schema, batch)
    return [decode_column(f, batch, c) for f, c in zip(schema, batch.columns)]


def rows(schema, batch):
    """The rows of `batch` as tuples in schema order."""
    cols = decode(schema, batch)
    if not cols:
        return [()] * batch.len
    return list(zip(*cols))


# --------------------------------------------------------------------------- writing


def _pad(arena):
    arena.extend(b"\0" * (-len(arena) % 8))
    return len(arena)


def _put(arena, raw):
    at = _pad(arena)
    arena += raw
    return at


def _bits(bools):
    out = bytearray((len(bools) + 7) // 8)
    for i, b in enumerate(bools):
        if b:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


class OutputBuilder:
    """Builds a `types.Output`: rows in `schema`, their origins, and per-record failures.

    `dictionary` names str/bytes fields to dictionary-encode (low-cardinality text).
    """

    def __init__(self, schema, dictionary=()):
        self.schema = list(schema)
        self._names = {f.name: i for i, f in enumerate(self.schema)}
        self._cols = [[] for _ in self.schema]
        self._dict = set()
        for name in dictionary:
            i = self._names.get(name)
            if i is None:
                raise ColumnError("no field `%s` to dictionary-encode" % name, field=name)
            if self.schema[i].ty in _VAR:
                self._dict.add(i)
        self.origins = []
        self.failures = []
        self._rows = 0

    def __len__(self):
        return self._rows

    def _fit(self, field, v):
        ty = field.ty
        if v is None:
            if not field.nullable:
                raise ColumnError("null for field `%s`, which is not nullable" % field.name,
                                  field=field.name)
            return None
        if ty == FieldType.INT64 or ty == FieldType.TIMESTAMP:
            if isinstance(v, bool) or not isinstance(v, int) or not _I64_MIN <= v <= _I64_MAX:
                raise ColumnError("%r does not fit field `%s` (%s)" % (v, field.name, type_name(ty)),
                                  field=field.name)
            return v
        if ty == FieldType.FLOAT64:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ColumnError("%r does not fit field `%s` (float64)" % (v, field.name),
                                  field=field.name)
            return float(v)
        if ty == FieldType.BOOLEAN:
            if not isinstance(v, bool):
                raise ColumnError("%r does not fit field `%s` (boolean)" % (v, field.name),
                                  field=field.name)
            return v
        if ty == FieldType.STR:
            if not isinstance(v, str):
                raise ColumnError("%r does not fit field `%s` (str)" % (v, field.name),
                                  field=field.name)
            return v.encode("utf-8")
        if ty == FieldType.BYTES:
            if not isinstance(v, (bytes, bytearray, memoryview)):
                raise ColumnError("%r does not fit field `%s` (bytes)" % (v, field.name),
                                  field=field.name)
            return bytes(v)
        raise ColumnError("field `%s` has unknown type %r" % (field.name, ty), field=field.name)

    def push(self, row, origin):
        """Adds one output row (sequence in schema order, or dict by field name) that came
        from input row `origin`, or from state (`origin` None: a window result; a call's
        rows are all one or the other). Checks every value first: a bad row adds nothing."""
        if isinstance(row, dict):
            unknown = set(row) - set(self._names)
            if unknown:
                raise ColumnError("no field(s) %s in the output schema" % sorted(unknown))
            row = [row.get(f.name) for f in self.schema]
        elif len(row) != len(self.schema):
            raise ColumnError("a row of %d value(s) for a schema of %d field(s)"
                              % (len(row), len(self.schema)))
        if origin is not None and (not isinstance(origin, int) or not 0 <= origin <= _U32_MAX):
            raise ColumnError("origin %r is not a u32 row index" % (origin,))
        if self._rows and (origin is None) != (not self.origins):
            raise ColumnError("a call's rows come all from input rows or all from state")
        fitted = [self._fit(f, v) for f, v in zip(self.schema, row)]
        for col, v in zip(self._cols, fitted):
            col.append(v)
        if origin is not None:
            self.origins.append(origin)
        self._rows += 1

    def fail(self, index, reason):
        """Dead-letters input row `index` with `reason`."""
        self.failures.append(types.Failure(index=index, reason=str(reason)))

    def batch(self):
        """The rows as a `types.Batch`."""
        n = self._rows
        arena = bytearray()
        columns = []
        for i, (field, col) in enumerate(zip(self.schema, self._cols)):
            validity = None
            if any(v is None for v in col):
                validity = _put(arena, _bits([v is not None for v in col]))
            ty = field.ty
            data, dictionary = 0, None
            if ty == FieldType.INT64 or ty == FieldType.TIMESTAMP:
                values = _put(arena, struct.pack("<%dq" % n, *[0 if v is None else v for v in col]))
            elif ty == FieldType.FLOAT64:
                values = _put(arena, struct.pack("<%dd" % n, *[0.0 if v is None else v for v in col]))
            elif ty == FieldType.BOOLEAN:
                values = _put(arena, _bits([bool(v) for v in col]))
            elif i in self._dict:
                index, entries, keys = {}, [], []
                for v in col:
                    if v is None:
                        keys.append(0)
                        continue
                    k = index.get(v)
                    if k is None:
                        k = index[v] = len(entries)
                        entries.append(v)
                    keys.append(k)
                if not entries and n:
                    entries.append(b"")  # a null's key must still name an entry
                offsets = [0]
                for e in entries:
                    offsets.append(offsets[-1] + len(e))
                if offsets[-1] > _U32_MAX:
                    raise ColumnError("field `%s`: over 4 GiB of data" % field.name, field=field.name)
                values = _put(arena, struct.pack("<%dI" % n, *keys))
                dictionary = types.Dictionary(
                    offsets=_put(arena, struct.pack("<%dI" % len(offsets), *offsets)),
                    entries=len(entries),
                )
                data = _put(arena, b"".join(entries))
            else:
                offsets = [0]
                for v in col:
                    offsets.append(offsets[-1] + (0 if v is None else len(v)))
                if offsets[-1] > _U32_MAX:
                    raise ColumnError("field `%s`: over 4 GiB of data" % field.name, field=field.name)
                values = _put(arena, struct.pack("<%dI" % (n + 1), *offsets))
                data = _put(arena, b"".join(v for v in col if v is not None))
            columns.append(types.Column(validity=validity, values=values, data=data,
                                        dictionary=dictionary))
        if len(arena) > _U32_MAX:
            raise ColumnError("a batch over 4 GiB")
        return types.Batch(len=n, arena=bytes(arena), columns=columns)

    def finish(self):
        """The `types.Output` for a `process` (or `advance`) call."""
        return types.Output(rows=self.batch(), origins=list(self.origins),
                            failures=list(self.failures))


def encode(schema, rows_, origins=None, dictionary=()):
    """`rows_` (sequences or dicts) as a `types.Batch` of `schema`."""
    b = OutputBuilder(schema, dictionary)
    for i, r in enumerate(rows_):
        b.push(r, i if origins is None else origins[i])
    return b.batch()
