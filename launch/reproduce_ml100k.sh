#!/usr/bin/env bash
# Reproduces the README's MovieLens-100K table: builds the dataset, pretrains
# once (quick config), fine-tunes with UAF-Gumbel, -Soft, -RL and -Random
# (quick config, same pretrained run and seed) and prints the results table.
# About 8 minutes on 2 CPU cores. RUN_ROOT (default checkpoints) and
# DATA_DIR (default data/movielens-100k) can be overridden.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
PY=.venv/bin/python
DATA_DIR="${DATA_DIR:-data/movielens-100k}"
RUN_ROOT="${RUN_ROOT:-checkpoints}"
PRETRAIN_RUN="$RUN_ROOT/ml100k-pretrain"

$PY launch/prepare_data.py --dataset=movielens-100k --out_dir="$DATA_DIR"
rm -rf "$PRETRAIN_RUN"
$PY launch/pretrain.py --flagfile=launch/configs/pretrain_quick.cfg \
  --data_dir="$DATA_DIR" --run_dir="$PRETRAIN_RUN"
RUNS=()
for METHOD in gumbel soft rl random; do
  RUN="$RUN_ROOT/ml100k-uaf-$METHOD"
  rm -rf "$RUN"
  $PY launch/finetune.py --flagfile=launch/configs/finetune_quick.cfg \
    --data_dir="$DATA_DIR" --pretrained="$PRETRAIN_RUN" --method="$METHOD" \
    --run_dir="$RUN"
  RUNS+=("$RUN")
done
$PY launch/summarize_runs.py "${RUNS[@]}"
