"""Compares the Spark job's output with an oracle file of ../shared/data/expected.

    compare.py SPARK_OUTPUT_DIR EXPECTED.csv [--replicas R] [--stats STATS.json]

Reads the part files the streaming file sink committed (listed in _spark_metadata; all
part-* files when the log is missing), keyed by (station, window_start, window_end), and the
oracle (`station,window_start,window_end,entries,exits`). With --replicas R > 1 the oracle
is expanded to R copies with stations suffixed `#r`, as prepare.py replicates the input.

Reports rows equal, rows with different sums, rows only in the oracle and rows only in Spark's
output, and explains the missing ones: with append mode Spark emits a window only once the
watermark (max event time seen - 4 hours) has passed its end, and a stream never ends, so the
windows ending after the final watermark stay in Spark's state. The final watermark is read
from STATS (written by turnstile.py); without it every missing row counts as unexplained.
Exits 1 when anything differs beyond those held-back windows.
"""

import argparse
import csv
import gzip
import io
import json
import os
import sys
from datetime import datetime, timezone

FMT = "%Y-%m-%d %H:%M:%S"


def committed_files(out_dir):
    meta = os.path.join(out_dir, "_spark_metadata")
    if not os.path.isdir(meta):
        return sorted(
            os.path.join(out_dir, n) for n in os.listdir(out_dir) if n.startswith("part-")
        )
    files = set()
    for name in os.listdir(meta):
        if name.startswith("."):
            continue
        with open(os.path.join(meta, name)) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue  # version line "v1"
                entry = json.loads(line)
                path = entry["path"].removeprefix("file://")
                if entry.get("action") == "add":
                    files.add(path)
                else:
                    files.discard(path)
    return sorted(files)


def read_csv_rows(text):
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return []
    return [row for row in reader if row]


def load_spark(out_dir):
    rows, duplicates = {}, 0
    for path in committed_files(out_dir):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            for station, start, end, entries, exits in read_csv_rows(f.read()):
                key = (station, start, end)
                if key in rows:
                    duplicates += 1
                rows[key] = (int(entries), int(exits))
    return rows, duplicates


def load_expected(path, replicas):
    rows = {}
    with open(path, encoding="utf-8", newline="") as f:
        for station, start, end, entries, exits in read_csv_rows(f.read()):
            value = (int(entries), int(exits))
            if replicas == 1:
                rows[(station, start, end)] = value
            else:
                for r in range(1, replicas + 1):
                    rows[(f"{station}#{r}", start, end)] = value
    return rows


def final_watermark(stats):
    if stats:
        marks = [b["watermark"] for b in stats.get("batches", []) if b.get("watermark")]
        if marks:
            mark = max(marks)  # ISO 8601, same format throughout, sorts as time
            return datetime.strptime(mark[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return None


def parse(ts):
    return datetime.strptime(ts, FMT).replace(tzinfo=timezone.utc)


def load_stats(path):
    """turnstile.py's stats (None without a path); prints one line per micro-batch."""
    if not path:
        return None
    with open(path) as f:
        stats = json.load(f)
    for b in stats["batches"]:
        print(
            f"batch {b['batchId']}: {b['numInputRows']} rows in, watermark {b['watermark']}, "
            f"rows in state {b['stateRowsTotal']}, "
            f"late rows dropped {b['stateRowsDroppedByWatermark']}"
        )
    return stats


def report(spark, expected, duplicates, mark, label):
    """Prints the comparison; True when nothing differs beyond the held-back windows."""
    different = [k for k in expected if k in spark and spark[k] != expected[k]]
    missing = [k for k in expected if k not in spark]
    extra = [k for k in spark if k not in expected]
    held_back = {k for k in missing if mark is not None and parse(k[2]) > mark}
    unexplained = [k for k in missing if k not in held_back]

    print(f"oracle rows:            {len(expected)}  ({label})")
    print(f"spark rows:             {len(spark)}  (duplicate keys: {duplicates})")
    print(f"equal:                  {len(expected) - len(different) - len(missing)}")
    print(f"different sums:         {len(different)}")
    print(f"only in oracle:         {len(missing)}")
    if mark is not None:
        ends = sorted({k[2] for k in held_back})
        print(
            f"  held back (window end after the final watermark "
            f"{mark.strftime(FMT)}): {len(held_back)}; window ends {', '.join(ends) or '-'}"
        )
    print(f"  not explained:        {len(unexplained)}")
    print(f"only in spark:          {len(extra)}")
    for kind, keys in (("different", different), ("missing", unexplained), ("extra", extra)):
        for k in sorted(keys)[:10]:
            print(f"  {kind}: {k} spark={spark.get(k)} oracle={expected.get(k)}")
    ok = not different and not unexplained and not extra and not duplicates
    print("RESULT " + ("equal to the oracle except the held-back windows" if ok else "DIFFERENT"))
    return ok


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spark_output")
    parser.add_argument("expected")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--stats")
    args = parser.parse_args(argv)

    spark, duplicates = load_spark(args.spark_output)
    expected = load_expected(args.expected, args.replicas)
    mark = final_watermark(load_stats(args.stats))
    label = f"{args.expected}, replicas {args.replicas}"
    return 0 if report(spark, expected, duplicates, mark, label) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
