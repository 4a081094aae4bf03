"""Summarises the runs of run.sh: median, min and max per figure and replication, then one
`BENCH <name> <value> <unit>` line per figure (the median).

    summarize.py RESULTS.jsonl [PREFIX]      PREFIX defaults to `spark`

Each line of RESULTS.jsonl is one run: {"replicas", "records", "measure": {...measure.py},
"stats": {...turnstile.py --stats}}.

Figures per replication R (names carry `Rx`, e.g. spark_1x_records_per_s):
- records_per_s: input records / the query's processing time (from start() to the end of
  awaitTermination(), measured in the driver; JVM and session start-up excluded);
- e2e_records_per_s: input records / wall time from launch of spark-submit to its exit;
- wall_s: launch to exit;
- startup_s: launch to the query's start() (JVM, SparkSession, Python driver);
- first_result_s: launch to the first output file holding a data row;
- peak_rss_mb: peak resident memory of spark-submit's whole process tree;
- cpu_s: CPU time of the process tree (user + system), start-up included;
- records_per_cpu_s: input records / cpu_s (less sensitive to other load than records/s);
- other_cpu_s: CPU time the rest of the machine used during the run (0 on a quiet machine).
"""

import json
import statistics
import sys

FIGURES = [
    # name, unit, format, function of a run
    ("records_per_s", "records/s", "{:.0f}", lambda r: r["records"] / r["stats"]["query_s"]),
    ("e2e_records_per_s", "records/s", "{:.0f}", lambda r: r["records"] / r["measure"]["wall_s"]),
    ("wall_s", "s", "{:.2f}", lambda r: r["measure"]["wall_s"]),
    ("query_s", "s", "{:.2f}", lambda r: r["stats"]["query_s"]),
    (
        "startup_s",
        "s",
        "{:.2f}",
        lambda r: r["stats"]["query_start_epoch"] - r["measure"]["launch_epoch"],
    ),
    ("first_result_s", "s", "{:.2f}", lambda r: r["measure"]["first_result_s"]),
    ("peak_rss_mb", "MB", "{:.0f}", lambda r: r["measure"]["peak_rss_mb"]),
    ("cpu_s", "s", "{:.1f}", lambda r: r["measure"]["cpu_s"]),
    ("records_per_cpu_s", "records/s", "{:.0f}", lambda r: r["records"] / r["measure"]["cpu_s"]),
    ("other_cpu_s", "s", "{:.1f}", lambda r: r["measure"]["other_cpu_s"]),
]


def main(path, prefix="spark"):
    runs = [json.loads(line) for line in open(path) if line.strip()]
    by_replicas = {}
    for run in runs:
        by_replicas.setdefault(run["replicas"], []).append(run)

    bench = []
    print()
    print(f"{'figure':<22} {'replication':>11} {'records':>9} {'runs':>4} "
          f"{'median':>10} {'min':>10} {'max':>10}  unit")
    for replicas in sorted(by_replicas):
        group = by_replicas[replicas]
        records = group[0]["records"]
        for name, unit, fmt, f in FIGURES:
            values = [f(r) for r in group]
            values = [v for v in values if v is not None]
            if not values:
                continue
            med = statistics.median(values)
            print(
                f"{name:<22} {str(replicas) + 'x':>11} {records:>9} {len(values):>4} "
                f"{fmt.format(med):>10} {fmt.format(min(values)):>10} "
                f"{fmt.format(max(values)):>10}  {unit}"
            )
            bench.append(f"BENCH {prefix}_{replicas}x_{name} {fmt.format(med)} {unit}")
    print()
    for line in bench:
        print(line)


if __name__ == "__main__":
    main(*sys.argv[1:3])
