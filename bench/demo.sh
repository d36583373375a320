#!/usr/bin/env bash
# The whole chain on a log directory (make demo runs it on fixtures/world):
# validate -> train LR + LightGBM rankers -> train recall sources -> retrieve for the held-out
# day -> merge -> experiment readout (text, Markdown, HTML, JSON).
# Usage: bash bench/demo.sh PYTHON LOGS OUT [RANKER_TRAIN_END] [RECALL_TRAIN_END] [HELD_OUT_DAY]
# The rankers hold out the last three days (a one-day CTR has ~4% sampling noise, too much to
# judge a 5% calibration target); recall sources train up to the day before HELD_OUT_DAY.
set -euo pipefail
PY=${1:-python3}
LOGS=${2:-fixtures/world}
OUT=${3:-demo_out}
RANKER_TRAIN_END=${4:-2026-01-15}
TRAIN_END=${5:-2026-01-17}
HELD_OUT=${6:-2026-01-18}
K=${K:-1200}
mkdir -p "$OUT"
start=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - start )) s)"; }

step "1. validate the logs: join report and per-bucket funnel"
"$PY" -m ltr.logs validate "$LOGS"

step "2. rankers: train on days <= $RANKER_TRAIN_END, evaluate on the days after"
"$PY" -m ltr.train "$LOGS" --model lr --train-end "$RANKER_TRAIN_END" --out "$OUT/ranker_lr"
"$PY" -m ltr.train "$LOGS" --model lgbm --train-end "$RANKER_TRAIN_END" --out "$OUT/ranker_lgbm"

step "3. recall sources: train on days <= $TRAIN_END"
for model in itemcf hot nip two_tower; do
  "$PY" -m recall.train "$LOGS" --model "$model" --train-end "$TRAIN_END" --out "$OUT/recall_$model"
done

step "4. retrieve top-$K for every request of $HELD_OUT, then merge item-CF + NIP + hot"
for model in itemcf hot nip two_tower; do
  "$PY" -m recall.retrieve "$OUT/recall_$model" "$LOGS" --start "$HELD_OUT" --end "$HELD_OUT" --k "$K" \
    --out "$OUT/candidates_$model.parquet"
done
"$PY" -m recall.merge "$OUT/candidates_nip.parquet" "$OUT/candidates_itemcf.parquet" "$OUT/candidates_hot.parquet" \
  --quota nip=400 --quota itemcf=400 --quota hot=400 --out "$OUT/candidates_merged.parquet"

step "5. experiment readout (A/B, offline vs online AUC, calibration, funnels)"
cands=()
for model in itemcf hot nip two_tower merged; do cands+=(--candidates "$OUT/candidates_$model.parquet"); done
for fmt in md html json; do
  "$PY" -m eval.report "$LOGS" --bundle "$OUT/ranker_lgbm" "${cands[@]}" --format "$fmt" \
    --out "$OUT/readout.$fmt" --quiet
done
"$PY" -m eval.report "$LOGS" --bundle "$OUT/ranker_lgbm" "${cands[@]}" --format text --quiet \
  | tee "$OUT/readout.txt"

echo
echo "Readout written to:"
for fmt in txt md html json; do echo "  $(cd "$OUT" && pwd)/readout.$fmt"; done
echo "Demo finished in $(( $(date +%s) - start )) s."
