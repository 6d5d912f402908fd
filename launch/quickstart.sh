#!/usr/bin/env bash
# The main job, end to end on a fresh machine (about 10 minutes on 2 CPU
# cores): set up .venv, fetch MovieLens-100K and build the cross-domain
# dataset, pretrain NextItNet on the source domain, fine-tune with
# UAF-Gumbel on the target domain, evaluate, and export for TF Serving.
#
# Environment overrides: DATA_DIR (default data/movielens-100k),
# RUN_ROOT (default checkpoints), EXPORT_BASE (default exports),
# METHOD (gumbel | soft | rl | random, default gumbel).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
PY=.venv/bin/python
DATA_DIR="${DATA_DIR:-data/movielens-100k}"
RUN_ROOT="${RUN_ROOT:-checkpoints}"
EXPORT_BASE="${EXPORT_BASE:-exports}"
METHOD="${METHOD:-gumbel}"
PRETRAIN_RUN="$RUN_ROOT/ml100k-pretrain"
FINETUNE_RUN="$RUN_ROOT/ml100k-uaf-$METHOD"

echo "== 1/4 MovieLens-100K -> cross-domain dataset in $DATA_DIR"
$PY launch/prepare_data.py --dataset=movielens-100k --out_dir="$DATA_DIR"

echo "== 2/4 pretraining NextItNet on the source domain -> $PRETRAIN_RUN"
rm -rf "$PRETRAIN_RUN"
$PY launch/pretrain.py --flagfile=launch/configs/pretrain_quick.cfg \
  --data_dir="$DATA_DIR" --run_dir="$PRETRAIN_RUN"

echo "== 3/4 UAF-$METHOD fine-tuning on the target domain -> $FINETUNE_RUN"
rm -rf "$FINETUNE_RUN"
$PY launch/finetune.py --flagfile=launch/configs/finetune_quick.cfg \
  --data_dir="$DATA_DIR" --pretrained="$PRETRAIN_RUN" --method="$METHOD" \
  --run_dir="$FINETUNE_RUN"

echo "== 4/4 SavedModel export for TF Serving -> $EXPORT_BASE/uaf-$METHOD"
$PY launch/export.py --run_dir="$FINETUNE_RUN" --export_base="$EXPORT_BASE" \
  --model_name="uaf-$METHOD"

echo "== done. TensorBoard: .venv/bin/tensorboard --logdir $RUN_ROOT"
