#!/usr/bin/env bash
# The main job on the bundled fixtures: validate the logs and print the join report and funnel.
# Usage: bash bench/demo.sh PYTHON LOGS OUT
set -euo pipefail
PY=${1:-python3}
LOGS=${2:-fixtures/world}
OUT=${3:-demo_out}
mkdir -p "$OUT"
echo "== 1. validate the logs, join report and per-bucket funnel"
"$PY" -m ltr.logs validate "$LOGS"
