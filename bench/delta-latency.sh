#!/usr/bin/env bash
# Delta visibility (docs/benchmarks.md, "Lake formats"): how long the oldest file of each
# commit waited, in a live run while one week is produced at 25,000 records/s, with the
# default 10 s checkpoint interval and with 1 s. Run from the repository root after `make build`.
set -uo pipefail
REPO=$(pwd)
S=${SLUICE:-${CARGO_TARGET_DIR:-$REPO/target}/release/sluice}
DATA=${DATA:-$REPO/../shared/data}
D=${TMPDIR:-/tmp}/sluice-delta-latency; rm -rf $D; mkdir -p $D; cd $D
export SLUICE_STATE_DIR=$D/.sluice SLUICE_PLUGIN_PATH=$REPO/target/plugins
$S broker stop >/dev/null 2>&1
B=$($S broker start)
for interval in 10s 1s; do
  rm -rf lake .sluice/checkpoints
  $S produce --brokers "$B" --topic lat-$interval --order event-time --rate 25000 \
    --file $DATA/mta-turnstile-240106.csv.gz > produce-$interval.log 2>&1 &
  prod=$!
  sleep 1
  RUST_LOG=info,rdkafka=warn,sluice_host::sinks::lake::delta=debug KAFKA_BROKERS="$B" TURNSTILE_TOPIC=lat-$interval \
    TURNSTILE_GROUP=lat-$interval LAKE_FORMAT=delta LAKE_URL=file://$D/lake CHECKPOINT_INTERVAL=$interval \
    $S run --pipelines $REPO/pipelines/turnstile.yaml > run-$interval.log 2>&1 &
  pid=$!
  wait $prod
  sleep 15
  kill -INT $pid; wait $pid
  echo "interval $interval:"
  sed 's/\x1b\[[0-9;]*m//g' run-$interval.log | grep -o "waited_ms=[0-9]*" | cut -d= -f2 | sort -n | awk '{a[NR]=$1; s+=$1} END {if (NR) printf "  commits=%d mean=%.0f ms median=%d ms max=%d ms\n", NR, s/NR, a[int((NR+1)/2)], a[NR]}'
done
$S broker stop >/dev/null 2>&1
