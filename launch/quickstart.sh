#!/usr/bin/env bash
# The main job, end to end on a fresh machine (about 10 minutes on 2 CPU
# cores): set up .venv, fetch MovieLens-100K and build the cross-domain
# dataset, pretrain NextItNet on the source domain, fine-tune with
# UAF-Gumbel on the target domain, evaluate, and export for TF Serving.
#
# Running it again deletes nothing: an existing dataset is reused, and an
# existing run is continued with --resume (an interrupted one trains to the
# end, a finished one is only evaluated again and its metrics printed).
# Each export is a new version next to the earlier ones. OVERWRITE=1
# deletes both runs first (only directories a run wrote) and builds the
# dataset and the runs again.
#
# Environment overrides: DATA_DIR (default data/movielens-100k),
# RUN_ROOT (default checkpoints), EXPORT_BASE (default exports),
# METHOD (gumbel | soft | rl | random, default gumbel), OVERWRITE (0 | 1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
PY=.venv/bin/python
DATA_DIR="${DATA_DIR:-data/movielens-100k}"
RUN_ROOT="${RUN_ROOT:-checkpoints}"
EXPORT_BASE="${EXPORT_BASE:-exports}"
METHOD="${METHOD:-gumbel}"
OVERWRITE="${OVERWRITE:-0}"
PRETRAIN_RUN="$RUN_ROOT/ml100k-pretrain"
FINETUNE_RUN="$RUN_ROOT/ml100k-uaf-$METHOD"

if [ "$OVERWRITE" = 1 ]; then
  for old in "$PRETRAIN_RUN" "$FINETUNE_RUN"; do
    [ -e "$old" ] || continue
    # Only what a run wrote: never a directory that holds something else.
    if [ ! -f "$old/config.json" ] && [ ! -d "$old/ckpt" ]; then
      echo "error: OVERWRITE=1 would delete $old, which is not a run" \
        "directory (no config.json, no ckpt/); move it away first" >&2
      exit 2
    fi
    echo "OVERWRITE=1: deleting the run $old"
    rm -rf -- "$old"
  done
elif [ "$OVERWRITE" != 0 ]; then
  echo "error: OVERWRITE must be 0 or 1; got '$OVERWRITE'" >&2
  exit 2
fi

# --resume for a run directory that already holds checkpoints, so a second
# run continues it instead of failing on it (or deleting it).
resume_flag() {
  if [ -f "$1/ckpt/checkpoint" ]; then
    echo "   $1 holds a run: continuing it (OVERWRITE=1 starts over)" >&2
    echo "--resume"
  fi
}

echo "== 1/4 MovieLens-100K -> cross-domain dataset in $DATA_DIR"
if [ -f "$DATA_DIR/dataset.json" ] && [ "$OVERWRITE" = 0 ]; then
  echo "   reusing the dataset in $DATA_DIR (OVERWRITE=1 builds it again)"
else
  $PY launch/prepare_data.py --dataset=movielens-100k --out_dir="$DATA_DIR"
fi

echo "== 2/4 pretraining NextItNet on the source domain -> $PRETRAIN_RUN"
RESUME="$(resume_flag "$PRETRAIN_RUN")"
$PY launch/pretrain.py --flagfile=launch/configs/pretrain_quick.cfg \
  --data_dir="$DATA_DIR" --run_dir="$PRETRAIN_RUN" $RESUME

echo "== 3/4 UAF-$METHOD fine-tuning on the target domain -> $FINETUNE_RUN"
RESUME="$(resume_flag "$FINETUNE_RUN")"
$PY launch/finetune.py --flagfile=launch/configs/finetune_quick.cfg \
  --data_dir="$DATA_DIR" --pretrained="$PRETRAIN_RUN" --method="$METHOD" \
  --run_dir="$FINETUNE_RUN" $RESUME

echo "== 4/4 SavedModel export for TF Serving -> $EXPORT_BASE/uaf-$METHOD"
$PY launch/export.py --run_dir="$FINETUNE_RUN" --export_base="$EXPORT_BASE" \
  --model_name="uaf-$METHOD"

echo "== done. TensorBoard: .venv/bin/tensorboard --logdir $RUN_ROOT"
