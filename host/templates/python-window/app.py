"""`{{name}}`: a sluice window plugin in Python. It sums a numeric field per key in
event-time windows: rows of `station, timestamp, entries` in, one row per station and window
out (`<key>, window_start, window_end, total`). The host owns time: it computes the
watermark, drops or dead-letters late rows, and calls `advance` when windows close. With
`emit_early`, each batch also returns the running totals of the windows it touched (early
results, for live sinks).
"""

import json

import wit_world
from wit_world.imports import types
from componentize_py_types import Err

import sluice_columns as cols
from sluice_plugin import guarded

F = types.FieldType
CONFIG_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "key": {"type": "string", "default": "station", "description": "The `str` field rows are grouped by."},
        "value": {"type": "string", "default": "entries", "description": "The `int64` field summed."},
        "emit_early": {"type": "boolean", "default": False,
                       "description": "Return running totals of the windows each batch touches."},
    },
}
DEFAULTS = {"key": "station", "value": "entries", "emit_early": False}
STATE = {}
# (window start, key) -> total
OPEN = {}


def starts(ts, size, slide):
    """The starts of the windows (of `size`, every `slide`) that hold time `ts`."""
    start = ts - ts % slide
    while start + size > ts:
        yield start
        start -= slide


class WitWorld(wit_world.WitWorld):
    def metadata(self):
        return types.Metadata(
            name="{{name}}",
            version="0.1.0",
            description="Sums a field per key in event-time windows.",
            config_schema=json.dumps(CONFIG_SCHEMA),
            sample_config=json.dumps(DEFAULTS),
        )

    @guarded
    def init(self, config, input, window):
        settings = dict(DEFAULTS)
        given = json.loads(config or "{}")
        unknown = set(given) - set(DEFAULTS)
        if unknown:
            raise Err("unknown config key(s) %s; accepted keys: %s" % (sorted(unknown), sorted(DEFAULTS)))
        settings.update(given)
        for name, ty in ((settings["key"], F.STR), (settings["value"], F.INT64)):
            if not any(f.name == name and f.ty == ty for f in input):
                raise Err("the input has no `%s` field `%s`" % (cols.type_name(ty), name))
        output = [
            types.Field(name=settings["key"], ty=F.STR, nullable=False),
            types.Field(name="window_start", ty=F.TIMESTAMP, nullable=False),
            types.Field(name="window_end", ty=F.TIMESTAMP, nullable=False),
            types.Field(name="total", ty=F.INT64, nullable=False),
        ]
        names = [f.name for f in input]
        STATE.update(settings=settings, input=list(input), output=output, window=window,
                     at=(names.index(settings["key"]), names.index(settings["value"]),
                         names.index(window.event_time)))
        OPEN.clear()
        return output

    @guarded
    def process(self, input, watermark):
        columns = cols.decode(STATE["input"], input)
        k, v, t = STATE["at"]
        w = STATE["window"]
        out = cols.OutputBuilder(STATE["output"])
        touched = set()
        for row, (key, value, ts) in enumerate(zip(columns[k], columns[v], columns[t])):
            if key is None or value is None:
                out.fail(row, "no key or no value")
                continue
            for start in starts(ts, w.size, max(w.slide, 1)):
                OPEN[(start, key)] = OPEN.get((start, key), 0) + value
                touched.add((start, key))
        if STATE["settings"]["emit_early"]:
            for start, key in sorted(touched):
                out.push((key, start, start + w.size, OPEN[(start, key)]), None)
        return out.finish()

    @guarded
    def advance(self, watermark):
        size = STATE["window"].size
        out = cols.OutputBuilder(STATE["output"])
        for start, key in sorted(k for k in OPEN if k[0] + size <= watermark):
            out.push((key, start, start + size, OPEN.pop((start, key))), None)
        return out.finish()

    def snapshot(self):
        return json.dumps(sorted([s, k, n] for (s, k), n in OPEN.items())).encode()

    @guarded
    def restore(self, state):
        OPEN.clear()
        for start, key, total in json.loads(state.decode() or "[]"):
            OPEN[(start, key)] = total
