#!/usr/bin/env bash
# The plugin kit per language (docs/plugins.md, "Figures"): for the Rust, Python and JavaScript
# transform templates, the time from `sluice plugin new` to a passing `sluice plugin test`
# (cold: empty cargo target and compile cache; warm: again), the component's size, the lines
# of code the example takes, and records/s of the same transform inside the engine (a case of
# RECORDS generated lines in batches of 1000). Cold Python/JS times include installing the
# toolchain only when PLUGIN_TOOLS is empty (set it to a fresh folder to measure that).
# Run from the repository root after `make build`.
set -euo pipefail
REPO=$(pwd)
S=${SLUICE:-${CARGO_TARGET_DIR:-$REPO/target}/release/sluice}
RECORDS=${RECORDS:-200000}
D=${TMPDIR:-/tmp}/sluice-plugin-langs; rm -rf "$D"; mkdir -p "$D"; cd "$D"
export CARGO_TARGET_DIR=$D/cargo-target
[ -n "${PLUGIN_TOOLS:-}" ] && export SLUICE_PLUGIN_TOOLS=$PLUGIN_TOOLS
code_lines() { grep -cvE '^\s*($|//|#|"""|\*|/\*)' "$1"; }
python3 - "$RECORDS" > big.txt <<'PY'
import random, sys
r = random.Random(7)
for i in range(int(sys.argv[1])):
    print("%s,%d,%d" % ("STATION%03d" % r.randrange(400), r.randrange(0, 3000), r.randrange(0, 3000)))
PY
for lang in rust python js; do
  name=$lang-bench
  $S plugin new $name --lang $lang > /dev/null
  start=$(date +%s.%N)
  $S plugin test $name > cold-$lang.log 2>&1 || { cat cold-$lang.log; exit 1; }
  cold=$(echo "$(date +%s.%N) - $start" | bc)
  start=$(date +%s.%N)
  $S plugin test $name > warm-$lang.log 2>&1 || { cat warm-$lang.log; exit 1; }
  warm=$(echo "$(date +%s.%N) - $start" | bc)
  mkdir -p $name/tests/big
  printf 'step:\n  transform:\n    config: { min_entries: 1000 }\nbatch: 1000\n' > $name/tests/big/case.yaml
  cp big.txt $name/tests/big/input.txt
  $S plugin test $name --case big --bless > /dev/null 2>&1
  speed=$($S plugin test $name --case big --wasm $name/target/plugin/$name.wasm 2>&1 | grep -o '[0-9]* records/s' || true)
  case $lang in rust) src=$name/src/lib.rs;; python) src=$name/app.py;; js) src=$name/app.js;; esac
  size=$(stat -c %s $name/target/plugin/$name.wasm)
  echo "$lang: new->passing test cold ${cold}s warm ${warm}s; component $size bytes; example $(code_lines $src) lines of code; $speed"
done
