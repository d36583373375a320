#!/usr/bin/env bash
# The evaluation benchmarks in one run: AUC (10M rows) against sklearn, GAUC (10M rows, 200k users)
# against a pandas group-rank version, then the full readout on a ~1M-exposure world.
#   bash bench/bench_eval.sh [PYTHON]
set -euo pipefail
PY=${1:-.venv/bin/python}
cd "$(dirname "$0")/.."
"$PY" bench/bench_metrics.py --repeat 3
"$PY" bench/bench_report.py
