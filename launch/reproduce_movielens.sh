#!/usr/bin/env bash
# Reproduces a MovieLens table with launch/reproduce.py: builds the dataset,
# pretrains once (quick config) and fine-tunes every method (the paper's
# baselines and the UAF variants; quick config, same pretrained run) for each
# seed, then writes results.md / results.csv, the figures and TensorBoard
# summaries into OUT_DIR. Interrupt and rerun at will: finished cells are
# skipped, interrupted ones resumed.
#
# Usage: bash launch/reproduce_movielens.sh {100k|1m}
#   100k: about 1.5 minutes per cell on 2 idle CPU cores (10 methods x 3 seeds).
#   1m:   6,004 fine-tuning users, 180,892 training instances: one cell takes
#         about 10-25 minutes on 2 CPU cores (finetune_ml1m_quick.cfg trains
#         8 epochs instead of 15); spread it over several invocations.
# Finished cells are also kept in the results archive ARCHIVE_DIR
# (docs/results/mlSIZE; small files, meant to be committed): a fresh clone
# restores them and runs only what is left. ARCHIVE_DIR= turns it off.
# Overrides: DATA_DIR (data/movielens-SIZE), OUT_DIR (reproductions/mlSIZE),
# SEEDS (0,1,2), FRACTIONS (1.0; the paper's Tables 6-7 use 1.0,0.5,0.1),
# METHODS (comma list; default every method).
set -euo pipefail
SIZE="${1:-}"
case "$SIZE" in
  100k) FINETUNE_CFG=launch/configs/finetune_quick.cfg ;;
  1m) FINETUNE_CFG=launch/configs/finetune_ml1m_quick.cfg ;;
  *) echo "usage: bash launch/reproduce_movielens.sh {100k|1m}" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
bash launch/setup_env.sh
PY=.venv/bin/python
DATA_DIR="${DATA_DIR:-data/movielens-$SIZE}"
OUT_DIR="${OUT_DIR:-reproductions/ml$SIZE}"
ARCHIVE_DIR="${ARCHIVE_DIR-docs/results/ml$SIZE}"
METHODS_FLAG=()
[ -n "${METHODS:-}" ] && METHODS_FLAG=(--methods="$METHODS")

# Nothing is deleted: an existing dataset is reused (it is the one the
# finished cells were trained on), finished cells are skipped and
# interrupted ones resumed. To start over, choose another OUT_DIR.
if [ -f "$DATA_DIR/dataset.json" ]; then
  echo "reusing the dataset in $DATA_DIR"
else
  $PY launch/prepare_data.py --dataset="movielens-$SIZE" --out_dir="$DATA_DIR"
fi
$PY launch/reproduce.py --data_dir="$DATA_DIR" \
  --pretrain_flagfile=launch/configs/pretrain_quick.cfg \
  --finetune_flagfile="$FINETUNE_CFG" \
  --seeds="${SEEDS:-0,1,2}" --train_fractions="${FRACTIONS:-1.0}" \
  "${METHODS_FLAG[@]}" --out_dir="$OUT_DIR" --archive_dir="$ARCHIVE_DIR"
