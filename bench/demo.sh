#!/usr/bin/env bash
# The whole chain on a log directory (make demo runs it on fixtures/world):
# validate -> train LR + LightGBM rankers -> train recall sources -> retrieve for the held-out
# day -> merge -> experiment readout (text, Markdown, HTML, JSON).
# Usage: bash bench/demo.sh PYTHON LOGS OUT [RANKER_TRAIN_END] [RECALL_TRAIN_END] [HELD_OUT_DAY]
# Then a short real-logs summary on REAL_LOGS (default fixtures/real, KuaiRand sampled; days in
# Asia/Shanghai): validate, LR + LightGBM trained on days <= 2022-04-28, their AUC beside the
# simulated one. REAL_LOGS= (empty) leaves it out.
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
REAL_LOGS=${REAL_LOGS-fixtures/real}
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

step "4. retrieve top-$K for every request of $HELD_OUT, then fuse item-CF + NIP + hot (RRF)"
for model in itemcf hot nip two_tower; do
  "$PY" -m recall.retrieve "$OUT/recall_$model" "$LOGS" --start "$HELD_OUT" --end "$HELD_OUT" --k "$K" \
    --out "$OUT/candidates_$model.parquet"
done
"$PY" -m recall.merge "$OUT/candidates_nip.parquet" "$OUT/candidates_itemcf.parquet" "$OUT/candidates_hot.parquet" \
  --rrf --k "$K" --out "$OUT/candidates_merged.parquet"

step "5. experiment readout (A/B, offline vs online AUC, calibration, funnels)"
cands=()
for model in itemcf hot nip two_tower merged; do cands+=(--candidates "$OUT/candidates_$model.parquet"); done
for fmt in md html json; do
  "$PY" -m eval.report "$LOGS" --bundle "$OUT/ranker_lgbm" "${cands[@]}" --format "$fmt" \
    --out "$OUT/readout.$fmt" --quiet
done
"$PY" -m eval.report "$LOGS" --bundle "$OUT/ranker_lgbm" "${cands[@]}" --format text --quiet \
  | tee "$OUT/readout.txt"

if [ -n "$REAL_LOGS" ]; then
  step "6. real logs ($REAL_LOGS, days in Asia/Shanghai): validate, rankers on days <= 2022-04-28"
  "$PY" -m ltr.logs validate "$REAL_LOGS" --tz Asia/Shanghai \
    | grep -E '^logs OK|^  [a-z]+ +[0-9,]+ rows$|^Days in|have no category|^    (kept|duplicate) \('
  for model in lr lgbm; do
    "$PY" -m ltr.train "$REAL_LOGS" --model "$model" --tz Asia/Shanghai --train-end 2022-04-28 \
      --out "$OUT/real_ranker_$model" | grep -E '^model |offline AUC'
  done
  echo
  "$PY" - "$OUT" "$LOGS" "$REAL_LOGS" <<'PYTHON'
import json
import sys
from pathlib import Path

out, simulated, real = sys.argv[1:]


def metrics(bundle):
    meta = json.loads(Path(out, bundle, "manifest.json").read_text())["metadata"]
    training = meta["training"]
    return meta["metrics"]["auc"], f"{training['eval_start']}..{training['eval_end']}"


print(f"{'offline AUC (held-out days)':<30}{'simulated: ' + simulated:<36}real: {real}")
for model in ("lr", "lgbm"):
    (sim_auc, sim_days), (real_auc, real_days) = metrics(f"ranker_{model}"), metrics(f"real_ranker_{model}")
    print(f"  {model:<28}{f'{sim_auc:.4f} ({sim_days})':<36}{real_auc:.4f} ({real_days})")
PYTHON
else
  echo; echo "(real-logs summary left out: REAL_LOGS is empty)"
fi

echo
echo "Readout written to:"
for fmt in txt md html json; do echo "  $(cd "$OUT" && pwd)/readout.$fmt"; done
echo "Demo finished in $(( $(date +%s) - start )) s."
