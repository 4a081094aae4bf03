"""Spark Structured Streaming reference job for the turnstile aggregation (issue 6).

The job sluice replaces: MTA turnstile rows in, per station and 4-hour event-time window the
sums of ENTRIES and EXITS out, as gzip CSV in append mode:

    withWatermark("ts", "4 hours")
      .groupBy(window("ts", "4 hours"), "STATION")
      .agg(sum("ENTRIES"), sum("EXITS"))

Spark's Kafka connector cannot be fetched here, so the messages are read with the file stream
source: a directory of text files, one message per line, the same lines `sluice produce` sends
(MTA weekly rows `[index,]CA,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS`),
parsed by the CSV source with a schema (default), by from_csv on text lines, or by split.
`trigger(availableNow=True)` processes what is there at start and stops.

Usage (see run.sh, which also prepares the input and measures):

    spark-submit --master 'local[2]' turnstile.py INPUT_DIR OUTPUT_DIR CHECKPOINT_DIR \
        [--stats STATS.json] [--source csv|text|from_csv] [--max-files-per-trigger N] \
        [--shuffle-partitions 4] [--time-zone UTC]

Output rows: station, window_start, window_end, entries, exits (timestamps
`yyyy-MM-dd HH:mm:ss`, UTC), the column layout of the oracle files in ../shared/data/expected.
"""

import argparse
import json
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input_dir")
    parser.add_argument("output_dir")
    parser.add_argument("checkpoint_dir")
    parser.add_argument("--stats", help="write timings and query progress here (JSON)")
    parser.add_argument(
        "--max-files-per-trigger",
        type=int,
        default=0,
        help="files per micro-batch; 0 (default) = Spark's default, all available files in one batch",
    )
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument(
        "--source",
        choices=["csv", "text", "from_csv"],
        default="csv",
        help="csv (default, the fastest here): readStream.csv with a schema; text: "
        "readStream.text + split, rows with or without the index column; from_csv: "
        "readStream.text + from_csv(value, schema), the way a job parses Kafka values; "
        "csv and from_csv need the leading index column",
    )
    parser.add_argument(
        "--time-zone",
        default="UTC",
        help="spark.sql.session.timeZone (DATE+TIME are read and windows printed in it); UTC "
        "matches the oracle, anything else is only for showing what goes wrong",
    )
    return parser.parse_args(argv)


def parse_rows(lines):
    """MTA weekly rows, with or without the leading index column; header lines dropped.

    Fields are trimmed and double quotes removed (as turnstile-parse does). Rows whose
    DATE+TIME or counters do not parse are dropped (sluice dead-letters them; the shared weeks
    have none).
    """
    # regexp_replace, not translate: translate is 1.5x slower per row in Spark 3.5 here.
    # The split is its own projection so that it runs once per row, not once per field.
    split = lines.select(F.split(F.regexp_replace(F.col("value"), '"', ""), ",").alias("f"))
    n = F.size("f")
    # 12 fields: leading index column; 11 fields: none. Anything else: unparsable (dropped).
    off = F.when(n == 12, F.lit(1)).when(n == 11, F.lit(0))

    def field(i):
        # element_at is 1-based
        return F.trim(F.element_at("f", off + F.lit(i + 1)))

    rows = split.select(
        field(3).alias("STATION"),
        field(6).alias("DATE"),
        field(7).alias("TIME"),
        field(9).alias("ENTRIES"),
        field(10).alias("EXITS"),
    )
    rows = rows.where(F.col("STATION").isNotNull() & (F.col("STATION") != "STATION"))
    return rows.select(
        "STATION",
        F.to_timestamp(F.concat_ws(" ", "DATE", "TIME"), "MM/dd/yyyy HH:mm:ss").alias("ts"),
        F.col("ENTRIES").cast("long").alias("ENTRIES"),
        F.col("EXITS").cast("long").alias("EXITS"),
    ).where(F.col("ts").isNotNull() & F.col("ENTRIES").isNotNull() & F.col("EXITS").isNotNull())


CSV_SCHEMA = (
    "idx LONG, CA STRING, UNIT STRING, SCP STRING, STATION STRING, LINENAME STRING, "
    "DIVISION STRING, DATE STRING, TIME STRING, DESC STRING, ENTRIES LONG, EXITS LONG"
)


CSV_OPTIONS = {
    "header": "false",
    "ignoreLeadingWhiteSpace": "true",
    "ignoreTrailingWhiteSpace": "true",
    "mode": "PERMISSIVE",
}


def read_csv(reader, input_dir, source):
    """The rows through Spark's CSV parser with a fixed schema (index column first): the CSV
    file source, or from_csv on each line of the text source (as on a Kafka value)."""
    if source == "csv":
        rows = reader.schema(CSV_SCHEMA).options(**CSV_OPTIONS).csv(input_dir)
    else:
        rows = reader.text(input_dir).select(
            F.from_csv(F.col("value"), CSV_SCHEMA, CSV_OPTIONS).alias("r")
        ).select("r.*")
    return rows.select(
        "STATION",
        F.to_timestamp(F.concat_ws(" ", "DATE", "TIME"), "MM/dd/yyyy HH:mm:ss").alias("ts"),
        "ENTRIES",
        "EXITS",
    ).where(
        F.col("STATION").isNotNull()
        & F.col("ts").isNotNull()
        & F.col("ENTRIES").isNotNull()
        & F.col("EXITS").isNotNull()
    )


def aggregate(rows):
    """The reference aggregation, with the oracle's output columns."""
    return (
        rows.withWatermark("ts", "4 hours")
        .groupBy(F.window("ts", "4 hours"), "STATION")
        .agg(F.sum("ENTRIES").alias("entries"), F.sum("EXITS").alias("exits"))
        .select(
            F.col("STATION").alias("station"),
            F.date_format("window.start", "yyyy-MM-dd HH:mm:ss").alias("window_start"),
            F.date_format("window.end", "yyyy-MM-dd HH:mm:ss").alias("window_end"),
            "entries",
            "exits",
        )
    )


def build(spark, args):
    """The streaming DataFrame: source, parse, aggregation (lazy; nothing runs yet)."""
    reader = spark.readStream
    if args.max_files_per_trigger > 0:
        reader = reader.option("maxFilesPerTrigger", args.max_files_per_trigger)
    if args.source in ("csv", "from_csv"):
        rows = read_csv(reader, args.input_dir, args.source)
    else:
        rows = parse_rows(reader.text(args.input_dir))
    return aggregate(rows)


def start(result, args):
    """Starts the query: gzip CSV files in append mode, availableNow."""
    return (
        result.writeStream.format("csv")
        .option("path", args.output_dir)
        .option("checkpointLocation", args.checkpoint_dir)
        .option("header", "true")
        .option("compression", "gzip")
        .outputMode("append")
        .trigger(availableNow=True)
        .start()
    )


def batch_stats(progress):
    """Per micro-batch: rows in, durations, watermark, state rows and late rows dropped."""

    def state(p, key):
        return sum(op.get(key, 0) for op in p.get("stateOperators", []))

    return [
        {
            "batchId": p["batchId"],
            "numInputRows": p["numInputRows"],
            "durationMs": p.get("durationMs", {}),
            "watermark": p.get("eventTime", {}).get("watermark"),
            "stateRowsTotal": state(p, "numRowsTotal"),
            "stateRowsDroppedByWatermark": state(p, "numRowsDroppedByWatermark"),
        }
        for p in progress
    ]


def main(argv):
    args = parse_args(argv)
    t_main = time.time()
    spark = (
        SparkSession.builder.appName("sluice-spark-turnstile-reference")
        .config("spark.sql.session.timeZone", args.time_zone)
        .config("spark.sql.shuffle.partitions", str(args.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        # keep every batch's progress (default 100) so that the row counts add up
        .config("spark.sql.streaming.numRecentProgressUpdates", "100000")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    t_session = time.time()
    result = build(spark, args)  # about 1.5 s of py4j calls and plan analysis
    t_start = time.time()
    query = start(result, args)
    query.awaitTermination()
    t_end = time.time()

    batches = batch_stats(query.recentProgress)
    stats = {
        "python_main_epoch": t_main,
        "session_ready_epoch": t_session,
        "query_start_epoch": t_start,
        "query_end_epoch": t_end,
        "session_startup_s": t_session - t_main,
        "build_s": t_start - t_session,
        "query_s": t_end - t_start,
        "input_rows": sum(b["numInputRows"] for b in batches),
        "batches": batches,
        "spark_version": spark.version,
        "options": {k: v for k, v in vars(args).items() if k not in ("stats",)},
    }
    if args.stats:
        with open(args.stats, "w") as f:
            json.dump(stats, f, indent=1)
    print(
        f"turnstile.py: {stats['input_rows']} rows in {len(batches)} batch(es), "
        f"query {stats['query_s']:.2f} s, session start {stats['session_startup_s']:.2f} s",
        file=sys.stderr,
    )
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
