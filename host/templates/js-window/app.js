// `{{name}}`: a sluice window plugin in JavaScript. It sums a numeric field per key in
// event-time windows: rows of `station, timestamp, entries` in, one row per station and
// window out (`<key>, window_start, window_end, total`). The host owns time: it computes the
// watermark, drops or dead-letters late rows, and calls `advance` when windows close. With
// `emit_early`, each batch also returns the running totals of the windows it touched (early
// results, for live sinks).
//
// The `window` world's exports are plain named exports. 64-bit integers of the contract
// (`watermark`, the window's `size` and `slide`) arrive as BigInt; column values are numbers.
import { readBatch, BatchBuilder, stringErrors } from './sluice-columns.js';

const DEFAULTS = { key: 'station', value: 'entries', emit_early: false };
const CONFIG_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  additionalProperties: false,
  properties: {
    key: { type: 'string', default: 'station', description: 'The `str` field rows are grouped by.' },
    value: { type: 'string', default: 'entries', description: 'The `int64` field summed.' },
    emit_early: { type: 'boolean', default: false, description: 'Return running totals of the windows each batch touches.' },
  },
};
let state = null;
// `${start}\u0000${key}` -> total
let open = new Map();

export function metadata() {
  return {
    name: '{{name}}',
    version: '0.1.0',
    description: 'Sums a field per key in event-time windows.',
    configSchema: JSON.stringify(CONFIG_SCHEMA),
    sampleConfig: JSON.stringify(DEFAULTS),
  };
}

export const init = stringErrors((config, input, window) => {
  const given = JSON.parse(config || '{}');
  const unknown = Object.keys(given).filter((k) => !(k in DEFAULTS));
  if (unknown.length) throw `unknown config key(s) ${unknown.join(', ')}; accepted keys: ${Object.keys(DEFAULTS).join(', ')}`;
  const settings = { ...DEFAULTS, ...given };
  for (const [name, ty] of [[settings.key, 'str'], [settings.value, 'int64']]) {
    if (!input.some((f) => f.name === name && f.ty === ty)) throw `the input has no \`${ty}\` field \`${name}\``;
  }
  const output = [
    { name: settings.key, ty: 'str', nullable: false },
    { name: 'window_start', ty: 'timestamp', nullable: false },
    { name: 'window_end', ty: 'timestamp', nullable: false },
    { name: 'total', ty: 'int64', nullable: false },
  ];
  const size = Number(window.size);
  const slide = Math.max(Number(window.slide), 1);
  state = { settings, input, output, eventTime: window.eventTime, size, slide };
  open = new Map();
  return output;
});

/** The starts of the windows that hold time `ts`. */
function starts(ts) {
  const { size, slide } = state;
  const out = [];
  for (let start = ts - (((ts % slide) + slide) % slide); start + size > ts; start -= slide) out.push(start);
  return out;
}

const id = (start, key) => `${start}\u0000${key}`;
const parts = (k) => {
  const cut = k.indexOf('\u0000');
  return [Number(k.slice(0, cut)), k.slice(cut + 1)];
};

export const process = stringErrors((batch, watermark) => {
  const cols = readBatch(state.input, batch);
  const keys = cols.values(state.settings.key);
  const values = cols.values(state.settings.value);
  const times = cols.values(state.eventTime);
  const out = new BatchBuilder(state.output);
  const touched = new Set();
  for (let row = 0; row < batch.len; row++) {
    if (keys[row] === null || values[row] === null) {
      out.fail(row, 'no key or no value');
      continue;
    }
    for (const start of starts(times[row])) {
      const k = id(start, keys[row]);
      open.set(k, (open.get(k) ?? 0) + values[row]);
      touched.add(k);
    }
  }
  if (state.settings.emit_early) {
    for (const k of [...touched].sort(byWindowThenKey)) {
      const [start, key] = parts(k);
      out.push([key, start, start + state.size, open.get(k)]);
    }
  }
  return out.finish();
});

function byWindowThenKey(a, b) {
  const [sa, ka] = parts(a);
  const [sb, kb] = parts(b);
  return sa - sb || (ka < kb ? -1 : ka > kb ? 1 : 0);
}

export const advance = stringErrors((watermark) => {
  const wm = Number(watermark);
  const out = new BatchBuilder(state.output);
  const closed = [...open.keys()].filter((k) => parts(k)[0] + state.size <= wm).sort(byWindowThenKey);
  for (const k of closed) {
    const [start, key] = parts(k);
    out.push([key, start, start + state.size, open.get(k)]);
    open.delete(k);
  }
  return out.finish();
});

export function snapshot() {
  return new TextEncoder().encode(JSON.stringify([...open.entries()]));
}

export const restore = stringErrors((bytes) => {
  const text = new TextDecoder().decode(bytes);
  open = new Map(text ? JSON.parse(text) : []);
});
