#!/usr/bin/env bash
# Lake formats (docs/benchmarks.md, "Lake formats"): wall time of `sluice run --once` over three
# weeks and lake bytes, for csv, parquet (zstd), parquet (snappy) and delta; 3 runs each.
# Run from the repository root after `make build`.
set -uo pipefail
REPO=$(pwd)
S=${SLUICE:-${CARGO_TARGET_DIR:-$REPO/target}/release/sluice}
DATA=${DATA:-$REPO/../shared/data}
D=${TMPDIR:-/tmp}/sluice-lake-formats; rm -rf $D; mkdir -p $D; cd $D
export SLUICE_STATE_DIR=$D/.sluice SLUICE_PLUGIN_PATH=$REPO/target/plugins RUST_LOG=info,rdkafka=warn
$S broker stop >/dev/null 2>&1
B=$($S broker start)
echo "broker $B"
$S produce --brokers "$B" --topic tb --order event-time \
  --file $DATA/mta-turnstile-240106.csv.gz --file $DATA/mta-turnstile-240113.csv.gz \
  --file $DATA/mta-turnstile-240120.csv.gz > produce.log 2>&1 || { cat produce.log; exit 1; }
for run in 1 2 3; do
sed 's/format: "${LAKE_FORMAT:-csv}"/format: parquet\n      compression: snappy/' $REPO/pipelines/turnstile.yaml > snappy.yaml
for fmt in csv parquet snappy delta; do
  rm -rf lake-$fmt .sluice/checkpoints
  spec=$REPO/pipelines/turnstile.yaml; [ $fmt = snappy ] && spec=$D/snappy.yaml
  start=$(date +%s.%N)
  KAFKA_BROKERS="$B" TURNSTILE_TOPIC=tb TURNSTILE_GROUP=g-$fmt-$run LAKE_FORMAT=$fmt LAKE_URL=file://$D/lake-$fmt \
    $S run --pipelines $spec --once > out-$fmt.log 2> err-$fmt.log || { tail -20 err-$fmt.log; }
  end=$(date +%s.%N)
  bytes=$(du -sb --exclude=_dlq lake-$fmt | cut -f1)
  files=$(find lake-$fmt -type f -not -path '*/_d*' | wc -l)
  echo "run $run $fmt wall=$(echo "$end - $start" | bc) s bytes=$bytes files=$files"
done
done
$S broker stop >/dev/null 2>&1
