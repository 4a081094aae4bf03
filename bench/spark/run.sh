#!/usr/bin/env bash
# Spark Structured Streaming reference measurement (issue 6, part 3).
#
#   bench/spark/run.sh [REPLICATION ...]      default: 1 10
#
# For each replication factor R: prepares the input (the three shared MTA weeks, R copies with
# stations suffixed #r when R > 1, one message per line, in event-time order, as
# `sluice produce` sends them), then runs bench/spark/turnstile.py with spark-submit
# (local[2]) RUNS times, each with a fresh output and checkpoint directory, measuring wall time,
# time to the first result and the peak RSS of the process tree (measure.py). The first run
# of each R is checked against the oracle (../shared/data/expected/mta-turnstile-3weeks.
# incremental.csv, replicated). Prints median/min/max per figure and
# `BENCH <prefix>_<R>x_<figure> <value> <unit>` lines (summarize.py).
#
# Environment:
#   RUNS=3                          runs per replication factor
#   SPARK_SOURCE=csv                csv (readStream.csv + schema), text (readStream.text + split)
#                                   or from_csv (readStream.text + from_csv, as on Kafka values)
#   SPARK_MAX_FILES_PER_TRIGGER=0   0: all input in one micro-batch (Spark's default)
#   SPARK_SHUFFLE_PARTITIONS=4
#   LINES_PER_FILE=100000           lines per input file
#   QUIET_WAIT=300                  before each run, wait up to this many seconds for the machine
#                                   to be idle (< 0.25 cores busy over 3 s); 0: do not wait
#   MAX_OTHER_CPU=0.1               a run during which other processes used more than this
#                                   fraction of the machine (their CPU-s / (wall s x cores))
#   RETRIES=3                       is discarded and repeated, at most RETRIES times per run
#   BENCH_PREFIX=spark              names of the BENCH lines
#   SLUICE_DATA_DIR=../shared/data  (relative to the repository root)
#   SLUICE_SPARK_VENV=~/.cache/sluice/spark-venv   (created by setup.sh when missing)
#   BENCH_WORK_DIR=                 keep inputs, logs and RSS traces here instead of a temp dir
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
DATA_DIR="${SLUICE_DATA_DIR:-$repo/../shared/data}"
VENV="${SLUICE_SPARK_VENV:-$HOME/.cache/sluice/spark-venv}"
RUNS="${RUNS:-3}"
SOURCE="${SPARK_SOURCE:-csv}"
MAX_FILES="${SPARK_MAX_FILES_PER_TRIGGER:-0}"
SHUFFLE="${SPARK_SHUFFLE_PARTITIONS:-4}"
LINES_PER_FILE="${LINES_PER_FILE:-100000}"
QUIET_WAIT="${QUIET_WAIT:-300}"
MAX_OTHER_CPU="${MAX_OTHER_CPU:-0.1}"
RETRIES="${RETRIES:-3}"
BENCH_PREFIX="${BENCH_PREFIX:-spark}"
replications=("$@")
[ ${#replications[@]} -gt 0 ] || replications=(1 10)

weeks=("$DATA_DIR"/mta-turnstile-240106.csv.gz "$DATA_DIR"/mta-turnstile-240113.csv.gz \
  "$DATA_DIR"/mta-turnstile-240120.csv.gz)
expected="$DATA_DIR/expected/mta-turnstile-3weeks.incremental.csv"
for f in "${weeks[@]}" "$expected"; do
  [ -f "$f" ] || { echo "run.sh: missing $f (set SLUICE_DATA_DIR)" >&2; exit 1; }
done

SLUICE_SPARK_VENV="$VENV" "$here/setup.sh"
export PATH="$VENV/bin:$PATH"
export PYSPARK_PYTHON="$VENV/bin/python" PYSPARK_DRIVER_PYTHON="$VENV/bin/python"
py="$VENV/bin/python"

if [ -n "${BENCH_WORK_DIR:-}" ]; then
  work="$BENCH_WORK_DIR"
  mkdir -p "$work"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-spark-bench.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
fi
results="$work/results.jsonl"
discarded="$work/discarded.jsonl"
: >"$results"
: >"$discarded"

echo "run.sh: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo) RAM," \
  "$(java -version 2>&1 | head -1), pyspark $("$py" -c 'import pyspark; print(pyspark.__version__)')," \
  "local[2], source $SOURCE, shuffle partitions $SHUFFLE, maxFilesPerTrigger ${MAX_FILES/#0/all}," \
  "$LINES_PER_FILE lines per file, runs $RUNS"
echo "run.sh: work dir $work"

# One run of the job: measure.py's figures and turnstile.py's stats as one JSON line on stdout.
run_once() {
  local r="$1" records="$2" input="$3" out="$4" ck="$5" stats="$6" log="$7" trace="$8" measured
  rm -rf "$out" "$ck" "$stats"
  measured="$("$py" "$here/measure.py" --wait-quiet "$QUIET_WAIT" --output-dir "$out" \
    --log "$log" --trace "$trace" -- \
    spark-submit --master 'local[2]' "$here/turnstile.py" "$input" "$out" "$ck" \
    --stats "$stats" --source "$SOURCE" --max-files-per-trigger "$MAX_FILES" \
    --shuffle-partitions "$SHUFFLE")" || {
    echo "run.sh: spark-submit failed (replication ${r}x); log: $log" >&2
    tail -30 "$log" >&2
    return 1
  }
  "$py" "$here/runinfo.py" combine "$r" "$records" "$measured" "$stats"
}

# Prints one line about a run; exits 1 when Spark did not read every input record.
# Second output line: 1 when the run was disturbed by other load, else 0.
describe() {
  "$py" "$here/runinfo.py" describe "$1" "$MAX_OTHER_CPU"
}

for r in "${replications[@]}"; do
  input="$work/input-${r}x"
  rm -rf "$input"
  echo "run.sh: preparing input, replication ${r}x -> $input"
  prep="$("$py" "$here/prepare.py" --out "$input" --replicas "$r" \
    --lines-per-file "$LINES_PER_FILE" "${weeks[@]}")"
  echo "run.sh:   $prep"
  records="$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["records"])' "$prep")"

  for i in $(seq 1 "$RUNS"); do
    out="$work/out-${r}x-$i" ck="$work/checkpoint-${r}x-$i"
    for attempt in $(seq 0 "$RETRIES"); do
      run_json="$(run_once "$r" "$records" "$input" "$out" "$ck" "$work/stats-${r}x-$i.json" \
        "$work/spark-${r}x-$i.log" "$work/rss-${r}x-$i.jsonl")"
      report="$(describe "$run_json")"
      echo "$report" | head -n -1
      if [ "$(echo "$report" | tail -1)" = 1 ]; then
        if [ "$attempt" -lt "$RETRIES" ]; then
          echo "run.sh:   discarded: other processes used more than $MAX_OTHER_CPU of the machine; repeating"
          echo "$run_json" >>"$discarded"
          continue
        fi
        echo "run.sh:   kept although disturbed (no retries left)"
      fi
      echo "$run_json" >>"$results"
      break
    done
    if [ "$i" = 1 ]; then
      echo "run.sh:   checking the output against $(basename "$expected") (replicated ${r}x)"
      "$py" "$here/compare.py" "$out" "$expected" --replicas "$r" \
        --stats "$work/stats-${r}x-$i.json" | sed 's/^/run.sh:     /'
    fi
    rm -rf "$out" "$ck"
  done
  [ -n "${BENCH_WORK_DIR:-}" ] || rm -rf "$input"
done

echo "run.sh: $(wc -l <"$discarded") run(s) discarded as disturbed by other load"
"$py" "$here/summarize.py" "$results" "$BENCH_PREFIX"
