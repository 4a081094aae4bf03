#!/usr/bin/env bash
# Correctness check of the Spark reference job against the oracle files.
#
#   bench/spark/verify.sh [WEEK ...]     default: 240106
#
# For each week (or `3weeks` for the three shared weeks together) prepares the input as
# run.sh does, runs turnstile.py once and compares its output with
# ../shared/data/expected/mta-turnstile-<WEEK>.incremental.csv (compare.py). Exits 1 when a
# row differs beyond the windows Spark holds back (window end after the final watermark).
# Environment, to reproduce the pitfalls described in docs/benchmarks-spark.md (the defaults
# are what run.sh measures):
#   SPARK_SOURCE=csv              csv, text or from_csv (turnstile.py --source)
#   TIME_ZONE=UTC                 spark.sql.session.timeZone (anything else shifts the windows)
#   ORDER=event-time              input order (prepare.py --order): event-time or file
#   LINES_PER_FILE=100000         lines per input file
#   MAX_FILES_PER_TRIGGER=0       files per micro-batch; 0: all in one
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
DATA_DIR="${SLUICE_DATA_DIR:-$repo/../shared/data}"
VENV="${SLUICE_SPARK_VENV:-$HOME/.cache/sluice/spark-venv}"
TIME_ZONE="${TIME_ZONE:-UTC}"
SOURCE="${SPARK_SOURCE:-csv}"
ORDER="${ORDER:-event-time}"
LINES_PER_FILE="${LINES_PER_FILE:-100000}"
MAX_FILES_PER_TRIGGER="${MAX_FILES_PER_TRIGGER:-0}"
weeks=("$@")
[ ${#weeks[@]} -gt 0 ] || weeks=(240106)

SLUICE_SPARK_VENV="$VENV" "$here/setup.sh" >/dev/null
export PATH="$VENV/bin:$PATH"
export PYSPARK_PYTHON="$VENV/bin/python" PYSPARK_DRIVER_PYTHON="$VENV/bin/python"
py="$VENV/bin/python"
work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-spark-verify.XXXXXX")"
trap 'rm -rf "$work"' EXIT

status=0
for week in "${weeks[@]}"; do
  if [ "$week" = 3weeks ]; then
    inputs=("$DATA_DIR"/mta-turnstile-2401{06,13,20}.csv.gz)
  else
    inputs=("$DATA_DIR/mta-turnstile-$week.csv.gz")
  fi
  expected="$DATA_DIR/expected/mta-turnstile-$week.incremental.csv"
  echo "verify.sh: $week (source $SOURCE, time zone $TIME_ZONE, order $ORDER, $LINES_PER_FILE lines per file," \
    "max files per trigger $MAX_FILES_PER_TRIGGER)"
  "$py" "$here/prepare.py" --out "$work/in-$week" --order "$ORDER" \
    --lines-per-file "$LINES_PER_FILE" "${inputs[@]}" | sed 's/^/verify.sh:   input /'
  spark-submit --master 'local[2]' "$here/turnstile.py" "$work/in-$week" "$work/out-$week" \
    "$work/ck-$week" --stats "$work/stats-$week.json" --time-zone "$TIME_ZONE" \
    --max-files-per-trigger "$MAX_FILES_PER_TRIGGER" --source "$SOURCE" \
    >"$work/spark-$week.log" 2>&1 || { tail -30 "$work/spark-$week.log" >&2; exit 1; }
  "$py" "$here/compare.py" "$work/out-$week" "$expected" --stats "$work/stats-$week.json" \
    | sed 's/^/verify.sh:   /' || status=1
done
exit $status
