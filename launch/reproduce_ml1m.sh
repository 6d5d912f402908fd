#!/usr/bin/env bash
# The MovieLens-1M table with launch/reproduce.py (see reproduce_ml100k.sh):
# 6,004 fine-tuning users and 180,892 training instances, so one quick-config
# cell takes about 10-25 minutes on 2 CPU cores; finetune_ml1m_quick.cfg
# trains 8 epochs instead of 15. Spread it over several invocations: finished
# cells are skipped. Overrides: DATA_DIR (data/movielens-1m), OUT_DIR
# (reproductions/ml1m), SEEDS (0,1,2), FRACTIONS (1.0), METHODS (all).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_env.sh
PY=.venv/bin/python
DATA_DIR="${DATA_DIR:-data/movielens-1m}"
OUT_DIR="${OUT_DIR:-reproductions/ml1m}"
METHODS_FLAG=()
[ -n "${METHODS:-}" ] && METHODS_FLAG=(--methods="$METHODS")

# Nothing is deleted: an existing dataset is reused (it is the one the
# finished cells were trained on), finished cells are skipped and
# interrupted ones resumed. To start over, choose another OUT_DIR.
if [ -f "$DATA_DIR/dataset.json" ]; then
  echo "reusing the dataset in $DATA_DIR"
else
  $PY launch/prepare_data.py --dataset=movielens-1m --out_dir="$DATA_DIR"
fi
$PY launch/reproduce.py --data_dir="$DATA_DIR" \
  --pretrain_flagfile=launch/configs/pretrain_quick.cfg \
  --finetune_flagfile=launch/configs/finetune_ml1m_quick.cfg \
  --seeds="${SEEDS:-0,1,2}" --train_fractions="${FRACTIONS:-1.0}" \
  "${METHODS_FLAG[@]}" --out_dir="$OUT_DIR"
