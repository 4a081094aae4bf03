// sluice-columns.js — a mini JS SDK for the column layout of `sluice:plugin@0.2`
// (wit/README.md, "Batches (0.2): columns"). Plain ES module, no dependencies; runs inside a
// componentize-js (StarlingMonkey) component and under Node (host-side tests).
//
// Types as jco / componentize-js present them to the guest:
//   field  = { name: string, ty: 'str'|'int64'|'float64'|'boolean'|'timestamp'|'bytes', nullable: boolean }
//   column = { validity: number|undefined, values: number, data: number,
//              dictionary: { offsets: number, entries: number } | undefined }
//   batch  = { len: number, arena: Uint8Array, columns: column[] }
//   output = { rows: batch, origins: Uint32Array (a plain Array works but is lowered
//              element by element), failures: { index: number, reason: string }[] }
//
// Reading:  const cols = readBatch(schema, batch);  // checks every buffer lies in the arena
//           cols.values('entries')  -> Array of JS values (null where null)
//           cols.get('entries', i)  -> one value;   cols.rows() -> Array of objects
// Writing:  const out = new BatchBuilder(outSchema, { dictionary: ['station'] });
//           out.push([v0, v1, ...], originIndex);  out.fail(i, 'reason');  return out.finish();
//       or  out.setColumns([col0Values, col1Values, ...], origins)  (column-wise, faster)
//
// Value mapping: str -> string, bytes -> Uint8Array (a view into the arena),
// int64/timestamp -> number (exact up to 2^53; readBatch(..., { bigint: true }) for BigInt),
// float64 -> number, boolean -> boolean, null -> null.
//
// Performance notes (StarlingMonkey interprets JS: every bytecode op counts, builtins are
// cheap): aligned buffers are read through typed arrays, not DataView calls; an all-ASCII
// text column is decoded and encoded with ONE TextDecoder/TextEncoder call per column.

const TWO32 = 4294967296;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export const FIELD_TYPES = ['str', 'int64', 'float64', 'boolean', 'timestamp', 'bytes'];
const FIXED = { int64: 1, float64: 1, timestamp: 1 };
const VAR = { str: 1, bytes: 1 };

export class LayoutError extends Error {}

const some = (x) => x !== undefined && x !== null;

function need(arena, at, size, what) {
  if (at > arena.length || size > arena.length - at) {
    throw new LayoutError(`${what}: ${size} byte(s) at ${at} overrun the arena of ${arena.length}`);
  }
}

/** A checked view of one batch. */
export class Columns {
  constructor(schema, batch, opts = {}) {
    const { len, arena, columns } = batch;
    if (columns.length !== schema.length) {
      throw new LayoutError(`${columns.length} column(s) for a schema of ${schema.length} field(s)`);
    }
    this.schema = schema;
    this.len = len;
    this.arena = arena;
    this.columns = columns;
    this.bigint = !!opts.bigint;
    this.view = new DataView(arena.buffer, arena.byteOffset, arena.byteLength);
    // Typed-array views over the whole arena (used where a buffer is suitably aligned).
    const aligned = LITTLE && (arena.byteOffset & 7) === 0;
    this.u32 = aligned ? new Uint32Array(arena.buffer, arena.byteOffset, arena.byteLength >>> 2) : null;
    this.i32 = aligned ? new Int32Array(arena.buffer, arena.byteOffset, arena.byteLength >>> 2) : null;
    this.f64 = aligned ? new Float64Array(arena.buffer, arena.byteOffset, arena.byteLength >>> 3) : null;
    this.index = new Map(schema.map((f, i) => [f.name, i]));
    const bitmap = Math.ceil(len / 8);
    for (let i = 0; i < schema.length; i++) {
      const f = schema[i], c = columns[i], what = `column \`${f.name}\``;
      if (some(c.validity)) {
        if (!f.nullable) throw new LayoutError(`${what}: validity on a non-nullable field`);
        need(arena, c.validity, bitmap, what + ' validity');
      }
      if (FIXED[f.ty]) need(arena, c.values, len * 8, what);
      else if (f.ty === 'boolean') need(arena, c.values, bitmap, what);
      else if (VAR[f.ty]) {
        if (some(c.dictionary)) {
          const d = c.dictionary;
          need(arena, c.values, len * 4, what + ' keys');
          need(arena, d.offsets, (d.entries + 1) * 4, what + ' dictionary');
          need(arena, c.data, this.view.getUint32(d.offsets + d.entries * 4, true), what + ' data');
        } else {
          need(arena, c.values, (len + 1) * 4, what + ' offsets');
          need(arena, c.data, this.view.getUint32(c.values + len * 4, true), what + ' data');
        }
      } else throw new LayoutError(`${what}: unknown type ${f.ty}`);
    }
  }

  field(name) {
    if (typeof name === 'number') return name;
    const i = this.index.get(name);
    if (i === undefined) throw new LayoutError(`no field \`${name}\` in the input schema`);
    return i;
  }

  isNull(name, row) {
    const c = this.columns[this.field(name)];
    return some(c.validity) && ((this.arena[c.validity + (row >>> 3)] >>> (row & 7)) & 1) === 0;
  }

  /** One value (null where null). `name` is a field name or index. */
  get(name, row) {
    const i = this.field(name);
    if (this.isNull(i, row)) return null;
    return this._values(i, row, row + 1)[0];
  }

  /** The whole column as an Array of JS values (null where null). */
  values(name) {
    const i = this.field(name), c = this.columns[i], out = this._values(i, 0, this.len);
    if (some(c.validity)) {
      const a = this.arena, at = c.validity;
      for (let r = 0; r < this.len; r++) if (((a[at + (r >>> 3)] >>> (r & 7)) & 1) === 0) out[r] = null;
    }
    return out;
  }

  /** Every row as an object keyed by field name (convenient, slower). */
  rows() {
    const cols = this.schema.map((f, i) => this.values(i));
    const out = new Array(this.len);
    for (let r = 0; r < this.len; r++) {
      const o = {};
      for (let i = 0; i < cols.length; i++) o[this.schema[i].name] = cols[i][r];
      out[r] = o;
    }
    return out;
  }

  // Values of rows [from, to) of column i, ignoring validity.
  _values(i, from, to) {
    const f = this.schema[i], c = this.columns[i], v = this.view, a = this.arena, n = to - from;
    const out = new Array(n);
    switch (f.ty) {
      case 'int64':
      case 'timestamp':
        if (this.bigint) {
          for (let r = 0; r < n; r++) out[r] = v.getBigInt64(c.values + (from + r) * 8, true);
        } else if (this.i32 && (c.values & 7) === 0) {
          const i32 = this.i32, u32 = this.u32, base = (c.values >>> 2) + from * 2;
          for (let r = 0, k = base; r < n; r++, k += 2) out[r] = i32[k + 1] * TWO32 + u32[k];
        } else {
          for (let r = 0, at = c.values + from * 8; r < n; r++, at += 8) out[r] = v.getInt32(at + 4, true) * TWO32 + v.getUint32(at, true);
        }
        return out;
      case 'float64':
        if (this.f64 && (c.values & 7) === 0) {
          const f64 = this.f64, base = (c.values >>> 3) + from;
          for (let r = 0; r < n; r++) out[r] = f64[base + r];
        } else {
          for (let r = 0; r < n; r++) out[r] = v.getFloat64(c.values + (from + r) * 8, true);
        }
        return out;
      case 'boolean':
        for (let r = 0, k = from; r < n; r++, k++) out[r] = ((a[c.values + (k >>> 3)] >>> (k & 7)) & 1) === 1;
        return out;
      default: {
        const text = f.ty === 'str';
        const u32 = (at) => (this.u32 && (at & 3) === 0 ? this.u32[at >>> 2] : v.getUint32(at, true));
        const offsetsAt = some(c.dictionary) ? c.dictionary.offsets : c.values;
        const count = some(c.dictionary) ? c.dictionary.entries : this.len;
        // Decode the needed entries: the whole column (or dictionary) at once when it is ASCII.
        const entries = this._entries(f, c, offsetsAt, count, text, u32, some(c.dictionary) ? 0 : from, some(c.dictionary) ? count : to);
        if (!some(c.dictionary)) return entries;
        for (let r = 0; r < n; r++) {
          const k = u32(c.values + (from + r) * 4);
          if (k >= count) throw new LayoutError(`column \`${f.name}\`: key ${k} >= ${count} entries`);
          out[r] = entries[k];
        }
        return out;
      }
    }
  }

  // Entries [from, to) delimited by the u32 offsets at `offsetsAt` into `c.data`.
  _entries(f, c, offsetsAt, count, text, u32, from, to) {
    const a = this.arena, n = to - from, out = new Array(n);
    const offs = new Array(n + 1);
    for (let k = 0; k <= n; k++) offs[k] = u32(offsetsAt + (from + k) * 4);
    const bad = (k) => new LayoutError(`column \`${f.name}\`: bad offsets ${offs[k]}..${offs[k + 1]} (data ends at ${a.length - c.data})`);
    const start = offs[0], end = offs[n];
    if (start > end || c.data + end > a.length) {
      for (let k = 0; k < n; k++) if (offs[k] > offs[k + 1] || c.data + offs[k + 1] > a.length) throw bad(k);
    }
    if (!text) {
      for (let k = 0; k < n; k++) {
        if (offs[k] > offs[k + 1]) throw bad(k);
        out[k] = a.subarray(c.data + offs[k], c.data + offs[k + 1]);
      }
      return out;
    }
    // Fast path: monotonic offsets over ASCII text -> one decode, then substrings.
    let monotonic = true;
    for (let k = 0; k < n; k++) if (offs[k] > offs[k + 1]) { monotonic = false; break; }
    if (monotonic && n > 0) {
      let s = null;
      try { s = utf8.decode(a.subarray(c.data + start, c.data + end)); } catch (_) { s = null; }
      if (s !== null && s.length === end - start) {
        for (let k = 0; k < n; k++) out[k] = s.substring(offs[k] - start, offs[k + 1] - start);
        return out;
      }
    }
    for (let k = 0; k < n; k++) {
      if (offs[k] > offs[k + 1]) throw bad(k);
      try { out[k] = utf8.decode(a.subarray(c.data + offs[k], c.data + offs[k + 1])); }
      catch (_) { throw new LayoutError(`column \`${f.name}\`: value ${from + k} is not UTF-8`); }
    }
    return out;
  }
}

export function readBatch(schema, batch, opts) {
  return new Columns(schema, batch, opts);
}

const align8 = (n) => (n + 7) & ~7;

// UTF-8 bytes of the non-null values of one text/bytes column: { bytes, ends } where value r
// ends at ends[r]. All-ASCII text goes through one TextEncoder call.
function encodeVar(vals, n) {
  const ends = new Uint32Array(n);
  let allStrings = true;
  for (let r = 0; r < n; r++) { const x = vals[r]; if (some(x) && typeof x !== 'string') { allStrings = false; break; } }
  if (allStrings) {
    const joined = vals.join(''); // join() writes null/undefined as ''
    const bytes = utf8Encoder.encode(joined);
    if (bytes.length === joined.length) { // ASCII: UTF-16 length == UTF-8 length per value
      let off = 0;
      for (let r = 0; r < n; r++) { const x = vals[r]; if (some(x)) off += x.length; ends[r] = off; }
      return { bytes, ends };
    }
  }
  const parts = new Array(n);
  let total = 0;
  for (let r = 0; r < n; r++) {
    const x = vals[r];
    const b = !some(x) ? null : typeof x === 'string' ? utf8Encoder.encode(x) : x;
    parts[r] = b;
    if (b) total += b.length;
    ends[r] = total;
  }
  const bytes = new Uint8Array(total);
  for (let r = 0, off = 0; r < n; r++) if (parts[r]) { bytes.set(parts[r], off); off += parts[r].length; }
  return { bytes, ends };
}

// Lays out columns of JS values (schema order) as a `batch`.
export function encodeColumns(schema, n, cols, dictionary = new Set()) {
  const bitmap = Math.ceil(n / 8);
  const plan = [];
  let size = 0;
  for (let i = 0; i < schema.length; i++) {
    const f = schema[i], vals = cols[i];
    if (vals.length !== n) throw new LayoutError(`field \`${f.name}\`: ${vals.length} value(s) for ${n} row(s)`);
    const p = { validity: undefined, values: 0, data: 0, var: null, dict: null };
    let nulls = 0;
    for (let r = 0; r < n; r++) if (vals[r] === null || vals[r] === undefined) nulls++;
    if (nulls && !f.nullable) throw new LayoutError(`field \`${f.name}\` is not nullable but got null`);
    if (nulls) { p.validity = size; size = align8(size + bitmap); }
    p.values = size;
    if (FIXED[f.ty]) size = align8(size + n * 8);
    else if (f.ty === 'boolean') size = align8(size + bitmap);
    else if (!VAR[f.ty]) throw new LayoutError(`field \`${f.name}\`: unknown type ${f.ty}`);
    else if (dictionary.has(f.name)) {
      // One u32 key per row, then entries+1 offsets, then the entries' bytes.
      const ids = new Map(), keys = new Uint32Array(n), entries = [];
      for (let r = 0; r < n; r++) {
        const x = vals[r];
        if (!some(x)) continue;
        const id = typeof x === 'string' ? x : '\u0001' + Array.prototype.join.call(x, ',');
        let k = ids.get(id);
        if (k === undefined) { k = entries.length; ids.set(id, k); entries.push(x); }
        keys[r] = k;
      }
      size = align8(size + n * 4);
      p.dict = { keys, offsets: size, count: entries.length, enc: encodeVar(entries, entries.length) };
      size = align8(size + (entries.length + 1) * 4);
      p.data = size;
      size = align8(size + p.dict.enc.bytes.length);
    } else {
      p.var = encodeVar(vals, n);
      size = align8(size + (n + 1) * 4);
      p.data = size;
      size = align8(size + p.var.bytes.length);
    }
    plan.push(p);
  }
  const buf = new ArrayBuffer(size), arena = new Uint8Array(buf);
  const u32 = LITTLE ? new Uint32Array(buf) : null, i32 = LITTLE ? new Int32Array(buf) : null;
  const f64 = LITTLE ? new Float64Array(buf) : null, v = new DataView(buf);
  const columns = [];
  for (let i = 0; i < schema.length; i++) {
    const f = schema[i], vals = cols[i], p = plan[i], at = p.values;
    if (p.validity !== undefined) {
      for (let r = 0; r < n; r++) if (some(vals[r])) arena[p.validity + (r >>> 3)] |= 1 << (r & 7);
    }
    switch (f.ty) {
      case 'int64':
      case 'timestamp':
        for (let r = 0, k = at >>> 2; r < n; r++, k += 2) {
          const x = vals[r];
          if (!some(x)) continue;
          if (typeof x === 'bigint') { v.setBigInt64(at + r * 8, x, true); continue; }
          if (!Number.isInteger(x)) throw new LayoutError(`field \`${f.name}\`: ${x} is not an integer`);
          const hi = Math.floor(x / TWO32);
          if (u32) { u32[k] = x - hi * TWO32; i32[k + 1] = hi; }
          else { v.setUint32(at + r * 8, x - hi * TWO32, true); v.setInt32(at + r * 8 + 4, hi, true); }
        }
        break;
      case 'float64':
        for (let r = 0, k = at >>> 3; r < n; r++, k++) {
          const x = vals[r];
          if (some(x)) { if (f64) f64[k] = x; else v.setFloat64(at + r * 8, x, true); }
        }
        break;
      case 'boolean':
        for (let r = 0; r < n; r++) if (vals[r]) arena[at + (r >>> 3)] |= 1 << (r & 7);
        break;
      default: {
        const writeOffsets = (offAt, ends, count) => {
          if (u32) { u32[offAt >>> 2] = 0; u32.set(ends.subarray(0, count), (offAt >>> 2) + 1); }
          else { v.setUint32(offAt, 0, true); for (let k = 0; k < count; k++) v.setUint32(offAt + (k + 1) * 4, ends[k], true); }
        };
        if (p.dict) {
          if (u32) u32.set(p.dict.keys, at >>> 2);
          else for (let r = 0; r < n; r++) v.setUint32(at + r * 4, p.dict.keys[r], true);
          writeOffsets(p.dict.offsets, p.dict.enc.ends, p.dict.count);
          arena.set(p.dict.enc.bytes, p.data);
        } else {
          writeOffsets(at, p.var.ends, n);
          arena.set(p.var.bytes, p.data);
        }
      }
    }
    const dictionary = p.dict ? { offsets: p.dict.offsets, entries: p.dict.count } : undefined;
    columns.push({ validity: p.validity, values: p.values, data: p.data, dictionary });
  }
  return { len: n, arena, columns };
}

/** Builds an `output`: rows in the output schema, their origins, and failures. */
export class BatchBuilder {
  /** `opts.dictionary`: names of str/bytes fields to write dictionary-encoded. */
  constructor(schema, opts = {}) {
    this.schema = schema;
    this.dict = new Set(opts.dictionary ?? []);
    this.cols = schema.map(() => []);
    this.origins = [];
    this.failures = [];
    this.len = 0;
  }

  /** Appends a row (Array of values in schema order; null/undefined = null). */
  push(values, origin) {
    for (let i = 0; i < this.cols.length; i++) this.cols[i].push(values[i]);
    if (origin !== undefined) this.origins.push(origin);
    this.len++;
  }

  /** Appends a row given as an object keyed by field name. */
  pushObject(obj, origin) {
    this.push(this.schema.map((f) => obj[f.name]), origin);
  }

  /** Replaces all rows with whole columns (Arrays of values in schema order). */
  setColumns(cols, origins) {
    if (cols.length !== this.schema.length) throw new LayoutError(`${cols.length} column(s) for ${this.schema.length} field(s)`);
    this.cols = cols;
    this.len = cols.length ? cols[0].length : 0;
    this.origins = origins ?? [];
  }

  /** A per-record failure: input row `index` is dead-lettered with `reason`. */
  fail(index, reason) {
    this.failures.push({ index, reason: String(reason) });
  }

  /** The `batch` record alone. */
  finishBatch() {
    return encodeColumns(this.schema, this.len, this.cols, this.dict);
  }

  /** The `output` record: rows, origins (as Uint32Array), failures. */
  finish() {
    return { rows: this.finishBatch(), origins: Uint32Array.from(this.origins), failures: this.failures };
  }
}

/** Checks a `schema` given to `init` (Array of {name, ty, nullable}). */
export function checkSchema(schema) {
  for (const f of schema) {
    if (!FIELD_TYPES.includes(f.ty)) throw new LayoutError(`field \`${f.name}\`: unknown type ${f.ty}`);
  }
  return schema;
}

/**
 * Wraps an export so that anything it throws reaches the host as `err(string)`.
 * componentize-js lowers a thrown string (or `{ payload: string }`) as the `err` of a
 * `result<_, string>`; a thrown Error object is NOT converted and traps the instance.
 */
export function stringErrors(fn) {
  return function (...args) {
    try {
      return fn.apply(this, args);
    } catch (e) {
      throw e instanceof Error ? `${e.message}` : typeof e === 'string' ? e : e && typeof e.payload === 'string' ? e.payload : String(e);
    }
  };
}
