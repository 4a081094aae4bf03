#!/usr/bin/env bash
# Creates the Python venv holding pyspark for the Spark reference benchmark.
# Idempotent: does nothing when the venv already has the wanted pyspark version.
# The venv lives outside the repo (SLUICE_SPARK_VENV, default ~/.cache/sluice/spark-venv).
set -euo pipefail

PYSPARK_VERSION="${PYSPARK_VERSION:-3.5.9}"
VENV="${SLUICE_SPARK_VENV:-$HOME/.cache/sluice/spark-venv}"
PYTHON="${PYTHON:-python3}"

if ! command -v java >/dev/null 2>&1; then
  echo "setup.sh: java not found on PATH; Spark ${PYSPARK_VERSION} needs Java 8, 11 or 17." >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup.sh: creating venv $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
else
  echo "setup.sh: venv $VENV exists"
fi

installed="$("$VENV/bin/python" -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null || true)"
if [ "$installed" = "$PYSPARK_VERSION" ]; then
  echo "setup.sh: pyspark $installed already installed"
else
  echo "setup.sh: installing pyspark==$PYSPARK_VERSION from PyPI (found: ${installed:-none}; ~320 MB download)"
  "$VENV/bin/pip" install --disable-pip-version-check --quiet "pyspark==$PYSPARK_VERSION"
  echo "setup.sh: installed pyspark $("$VENV/bin/python" -c 'import pyspark; print(pyspark.__version__)')"
fi
echo "setup.sh: java: $(java -version 2>&1 | head -1)"
echo "setup.sh: spark-submit: $VENV/bin/spark-submit"
