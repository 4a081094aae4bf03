"""`{{name}}`: a sluice transform in Python. It reads raw records, lines of
`station,entries,exits`, keeps those with at least `min_entries` entries, and adds a
derived field, `traffic` (entries + exits). A line that does not parse is dead-lettered
with the reason; the other lines of its batch flow on.
"""

import json

import wit_world
from wit_world.imports import types
from componentize_py_types import Err

import sluice_columns as cols
from sluice_plugin import guarded

F = types.FieldType
OUTPUT = [
    types.Field(name="station", ty=F.STR, nullable=False),
    types.Field(name="entries", ty=F.INT64, nullable=False),
    types.Field(name="exits", ty=F.INT64, nullable=False),
    types.Field(name="traffic", ty=F.INT64, nullable=False),
]
CONFIG_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "min_entries": {
            "type": "integer",
            "default": 0,
            "description": "Lines with fewer entries than this are dropped.",
        }
    },
}
STATE = {}


def parse(line):
    """`station,entries,exits` -> (station, entries, exits), or a reason."""
    fields = [f.strip() for f in line.decode("utf-8").split(",")]
    if len(fields) != 3:
        raise ValueError("expected 3 fields (station,entries,exits), found %d" % len(fields))
    numbers = []
    for name, text in zip(("entries", "exits"), fields[1:]):
        try:
            numbers.append(int(text))
        except ValueError:
            raise ValueError("%s `%s` is not a whole number" % (name, text))
    return fields[0], numbers[0], numbers[1]


class WitWorld(wit_world.WitWorld):
    def metadata(self):
        return types.Metadata(
            name="{{name}}",
            version="0.1.0",
            description="Keeps station lines with enough entries and adds their traffic.",
            config_schema=json.dumps(CONFIG_SCHEMA),
            sample_config='{"min_entries": 0}',
        )

    @guarded
    def init(self, config, input):
        settings = json.loads(config or "{}")
        unknown = set(settings) - {"min_entries"}
        if unknown:
            raise Err("unknown config key(s) %s; accepted keys: `min_entries`" % sorted(unknown))
        minimum = settings.get("min_entries", 0)
        if not isinstance(minimum, int) or isinstance(minimum, bool):
            raise Err("config key `min_entries` must be an integer, not %r" % (minimum,))
        if len(input) != 1 or input[0].ty != F.BYTES:
            raise Err("this plugin reads raw records: put it first in the steps")
        STATE.update(min_entries=minimum, input=list(input))
        return OUTPUT

    @guarded
    def process(self, input):
        (lines,) = cols.decode(STATE["input"], input)
        out = cols.OutputBuilder(OUTPUT)
        for row, line in enumerate(lines):
            try:
                station, entries, exits = parse(line)
            except (ValueError, UnicodeDecodeError) as e:
                out.fail(row, str(e))
                continue
            if entries >= STATE["min_entries"]:
                out.push((station, entries, exits, entries + exits), row)
        return out.finish()
