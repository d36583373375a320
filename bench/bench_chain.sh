#!/usr/bin/env bash
# The whole chain of `make demo` on a simulated world of about 1M exposures, with the time of
# each stage (demo.sh prints the elapsed seconds at the start of every stage).
#   bash bench/bench_chain.sh [PYTHON] [OUT]        (USERS, ITEMS, DAYS, K override the size)
set -euo pipefail
PY=${1:-.venv/bin/python}
OUT=${2:-bench/out/chain}
USERS=${USERS:-50000}
ITEMS=${ITEMS:-50000}
DAYS=${DAYS:-14}
mkdir -p "$OUT"
t0=$(date +%s)
"$PY" -m ltr.simulate "$OUT/world" --users "$USERS" --items "$ITEMS" --days "$DAYS" --seed 1 \
  --requests-per-user-day 0.15 --candidates 200
echo "== simulate: $(( $(date +%s) - t0 )) s"
# The simulated world starts on 2026-01-05: rankers hold out the last 3 days, recall the last one.
last=$(date -u -d "2026-01-05 + $(( DAYS - 1 )) days" +%F)
ranker_end=$(date -u -d "2026-01-05 + $(( DAYS - 4 )) days" +%F)
recall_end=$(date -u -d "2026-01-05 + $(( DAYS - 2 )) days" +%F)
K=${K:-1200} bash "$(dirname "$0")/demo.sh" "$PY" "$OUT/world" "$OUT/run" "$ranker_end" "$recall_end" "$last" \
  | grep --line-buffered -E "^== |Demo finished|AUC|wrote .* candidates"
