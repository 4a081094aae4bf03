"""Prepares the message files the Spark reference job reads (and sluice can produce).

Reads the shared MTA weeks (gzip or plain), drops header and blank lines, and writes the
records as text files, one message per line, in the order `sluice produce` sends them by
default: all lines of all inputs stably sorted by event time (DATE+TIME).

With --replicas R > 1 every record is written R times, replica r (1..R) with its STATION
field suffixed `#r`, so the replicas aggregate into distinct (station, window) rows; the
replicas count as separate input files in the stable sort (replica-major, then week), i.e. at
each event time the records of replica 1 come first, then replica 2, and so on. R = 1 writes
the records unchanged.

The output is split into files of --lines-per-file lines (part-00000.txt, ...). A file is
written under a temporary name and renamed, so a file stream source never sees half a file.
Prints one JSON object: records, files, bytes.
"""

import argparse
import gzip
import json
import os
import sys
from datetime import datetime


def open_text(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, "r", encoding="utf-8", newline="")


def is_header(line):
    fields = [f.strip().strip('"').upper() for f in line.split(",")]
    return "STATION" in fields and ("ENTRIES" in fields or "DATE" in fields)


def event_time(fields):
    """DATE+TIME of a weekly row as a sortable key; None when unreadable."""
    off = 1 if len(fields) == 12 else 0
    try:
        date = fields[off + 6].strip().strip('"')
        clock = fields[off + 7].strip().strip('"')
        return datetime.strptime(f"{date} {clock}", "%m/%d/%Y %H:%M:%S")
    except (IndexError, ValueError):
        return None


def read_records(paths):
    """(time, file index, line, fields) per record; unreadable times inherit the previous one."""
    records = []
    for index, path in enumerate(paths):
        previous = None
        pending = []  # untimed lines before the first readable time of this file
        with open_text(path) as f:
            for raw in f:
                line = raw.rstrip("\r\n")
                if not line.strip() or is_header(line):
                    continue
                fields = line.split(",")
                t = event_time(fields)
                if t is None:
                    if previous is None:
                        pending.append(fields)
                        continue
                    t = previous
                if pending:
                    records.extend((t, index, p) for p in pending)
                    pending = []
                previous = t
                records.append((t, index, fields))
        records.extend((datetime.min, index, p) for p in pending)
    return records


def station_index(fields):
    return 4 if len(fields) == 12 else 3


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="MTA weekly files (.csv or .csv.gz)")
    parser.add_argument("--out", required=True, help="output directory (created)")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--lines-per-file", type=int, default=100_000)
    parser.add_argument(
        "--order",
        choices=["event-time", "file"],
        default="event-time",
        help="event-time (default, as `sluice produce`): stable sort by DATE+TIME; "
        "file: files in the given order, lines in file order",
    )
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("--replicas must be >= 1")

    records = read_records(args.inputs)
    if args.order == "event-time":
        # Stable sort by event time, ties in file then line order (what `sluice produce` does).
        records.sort(key=lambda r: (r[0], r[1]))
    else:
        # One group for everything: replica 1's files, then replica 2's, ...
        records = [(None, f, fields) for _, f, fields in records]

    summary = write_files(replicate(records, args.replicas), args.out, args.lines_per_file)
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")


def replicate(records, replicas):
    """The output lines. Records of one event time form a group (with --order file, all records
    are one group); within a group replica 1 comes first, then replica 2, ..., which is the
    stable order of "replica 1's files, then replica 2's files, ..."."""
    i, n = 0, len(records)
    while i < n:
        j = i
        while j < n and records[j][0] == records[i][0]:
            j += 1
        for r in range(1, replicas + 1):
            for _, _, fields in records[i:j]:
                if replicas == 1:
                    yield ",".join(fields)
                else:
                    copy = list(fields)
                    s = station_index(copy)
                    copy[s] = f"{copy[s]}#{r}"
                    yield ",".join(copy)
        i = j


def write_files(lines, out, lines_per_file):
    """Writes part-NNNNN.txt files of lines_per_file lines, each renamed into place."""
    os.makedirs(out, exist_ok=True)
    files = written = total_bytes = 0
    buffer = []

    def flush():
        nonlocal files, total_bytes
        data = ("\n".join(buffer) + "\n").encode("utf-8")
        tmp = os.path.join(out, f".part-{files:05d}.txt.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(out, f"part-{files:05d}.txt"))
        files += 1
        total_bytes += len(data)
        buffer.clear()

    for line in lines:
        buffer.append(line)
        written += 1
        if len(buffer) >= lines_per_file:
            flush()
    if buffer:
        flush()
    return {"records": written, "files": files, "bytes": total_bytes}


if __name__ == "__main__":
    main(sys.argv[1:])
