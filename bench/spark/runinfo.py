"""Helpers of run.sh for one run's JSON line.

    runinfo.py combine REPLICAS RECORDS MEASURED_JSON STATS_FILE   -> one JSON line
    runinfo.py describe RUN_JSON MAX_OTHER_CPU                     -> a summary line, then 1
        when other processes used more than MAX_OTHER_CPU of the machine during the run
        (their CPU-s / (wall s x cores)), else 0; exits 1 when Spark did not read every record.
"""

import json
import os
import sys


def combine(replicas, records, measured, stats_file):
    with open(stats_file) as f:
        stats = json.load(f)
    run = {
        "replicas": int(replicas),
        "records": int(records),
        "measure": json.loads(measured),
        "stats": stats,
    }
    print(json.dumps(run))


def describe(run_json, limit):
    run = json.loads(run_json)
    m, s = run["measure"], run["stats"]
    print(
        f"run.sh:   {run['replicas']}x run: wall {m['wall_s']:.2f} s, query {s['query_s']:.2f} s"
        f" ({run['records'] / s['query_s']:.0f} records/s), first result {m['first_result_s']} s,"
        f" peak RSS {m['peak_rss_mb']:.0f} MB (java {m['peak_java_rss_mb']:.0f} MB),"
        f" {len(s['batches'])} batch(es), {s['input_rows']} rows read; CPU {m['cpu_s']:.1f} s;"
        f" other processes {m['other_cpu_s']:.1f} CPU-s meanwhile (waited {m['quiet_wait_s']} s"
        f" for quiet, {m['busy_cores_before_launch']} cores busy at launch)"
    )
    if s["input_rows"] != run["records"]:
        sys.exit(f"run.sh: Spark read {s['input_rows']} rows, the input has {run['records']}")
    print(int(m["other_cpu_s"] > float(limit) * m["wall_s"] * os.cpu_count()))


if __name__ == "__main__":
    {"combine": combine, "describe": describe}[sys.argv[1]](*sys.argv[2:])
