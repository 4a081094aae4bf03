// `{{name}}`: a sluice transform in JavaScript. It reads raw records, lines of
// `station,entries,exits`, keeps those with at least `min_entries` entries, and adds a
// derived field, `traffic` (entries + exits). A line that does not parse is dead-lettered
// with the reason; the other lines of its batch flow on.
//
// The `transform` world's exports are plain named exports: metadata(), init(config, input)
// and process(batch). Throwing a string refuses the config or fails the batch
// (`stringErrors` turns any thrown Error into its message).
import { readBatch, BatchBuilder, stringErrors } from './sluice-columns.js';

const OUTPUT = [
  { name: 'station', ty: 'str', nullable: false },
  { name: 'entries', ty: 'int64', nullable: false },
  { name: 'exits', ty: 'int64', nullable: false },
  { name: 'traffic', ty: 'int64', nullable: false },
];
const CONFIG_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  additionalProperties: false,
  properties: {
    min_entries: {
      type: 'integer',
      default: 0,
      description: 'Lines with fewer entries than this are dropped.',
    },
  },
};
const decoder = new TextDecoder('utf-8', { fatal: true });
let state = null;

export function metadata() {
  return {
    name: '{{name}}',
    version: '0.1.0',
    description: 'Keeps station lines with enough entries and adds their traffic.',
    configSchema: JSON.stringify(CONFIG_SCHEMA),
    sampleConfig: '{"min_entries": 0}',
  };
}

export const init = stringErrors((config, input) => {
  const settings = JSON.parse(config || '{}');
  const unknown = Object.keys(settings).filter((k) => k !== 'min_entries');
  if (unknown.length) throw `unknown config key(s) ${unknown.join(', ')}; accepted keys: \`min_entries\``;
  const min = settings.min_entries ?? 0;
  if (!Number.isInteger(min)) throw `config key \`min_entries\` must be an integer, not ${JSON.stringify(min)}`;
  if (input.length !== 1 || input[0].ty !== 'bytes') throw 'this plugin reads raw records: put it first in the steps';
  state = { min, input };
  return OUTPUT;
});

/** `station,entries,exits` -> [station, entries, exits]; throws the reason. */
function parse(bytes) {
  const fields = decoder.decode(bytes).split(',').map((f) => f.trim());
  if (fields.length !== 3) throw `expected 3 fields (station,entries,exits), found ${fields.length}`;
  const number = (name, text) => {
    if (!/^[+-]?\d+$/.test(text)) throw `${name} \`${text}\` is not a whole number`;
    return Number(text);
  };
  return [fields[0], number('entries', fields[1]), number('exits', fields[2])];
}

export const process = stringErrors((batch) => {
  const lines = readBatch(state.input, batch).values('value');
  const out = new BatchBuilder(OUTPUT);
  for (let row = 0; row < batch.len; row++) {
    let station, entries, exits;
    try {
      [station, entries, exits] = parse(lines[row]);
    } catch (reason) {
      out.fail(row, String(reason));
      continue;
    }
    if (entries >= state.min) out.push([station, entries, exits, entries + exits], row);
  }
  return out.finish();
});
