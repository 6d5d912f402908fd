#!/usr/bin/env bash
# Two-worker MultiWorkerMirroredStrategy training on ML-100K, checked against
# one process (issue 11). Usage: bash launch/multiworker_demo.sh OUT_DIR
#
# Builds (or reuses) the ML-100K dataset, then runs launch/distributed_run.py
# (pretraining, then UAF-Gumbel fine-tuning, one epoch each) three times:
# once in a single process, and as two worker processes on loopback ports
# with TF_CONFIG. Writes OUT_DIR/multiworker.json:
#   {"workers": 2, "max_abs_weight_diff_between_workers": ...,
#    "max_rel_diff_vs_single_process": ..., "examples_per_sec": ...}
# (examples_per_sec: the chief's fine-tuning throughput, global examples;
# the per-run figures are in "runs") and exits 1 if the workers' weights
# differ at all.
#
# Environment: DATA_DIR (default data/movielens-100k), STEPS (steps per
# epoch, default 0 = whole epochs), BATCH_SIZE (default 64), CHANNELS
# (default 32), DILATIONS (default 1,4,1,4).
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: bash launch/multiworker_demo.sh OUT_DIR" >&2
  exit 2
fi
OUT_DIR="$1"
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PY:-.venv/bin/python}"
DATA_DIR="${DATA_DIR:-data/movielens-100k}"
ARGS=(
  --data_dir="$DATA_DIR"
  --steps="${STEPS:-0}"
  --batch_size="${BATCH_SIZE:-64}"
  --channels="${CHANNELS:-32}"
  --dilations="${DILATIONS:-1,4,1,4}"
)
if [ -e "$OUT_DIR" ]; then
  echo "error: $OUT_DIR exists; give a new OUT_DIR" >&2
  exit 2
fi
mkdir -p "$OUT_DIR"

if [ ! -f "$DATA_DIR/dataset.json" ]; then
  $PY launch/prepare_data.py --dataset=movielens-100k --out_dir="$DATA_DIR"
fi

echo "== single process"
$PY launch/distributed_run.py "${ARGS[@]}" --out_dir="$OUT_DIR/single" \
  > "$OUT_DIR/single.log" 2>&1 || { tail -20 "$OUT_DIR/single.log"; exit 1; }

echo "== two workers (MultiWorkerMirroredStrategy)"
read -r PORT0 PORT1 < <($PY - <<'PY'
import socket
sockets = [socket.socket() for _ in range(2)]
for s in sockets:
    s.bind(("localhost", 0))
print(*(s.getsockname()[1] for s in sockets))
for s in sockets:
    s.close()
PY
)
CLUSTER="{\"worker\": [\"localhost:$PORT0\", \"localhost:$PORT1\"]}"
PIDS=()
for INDEX in 0 1; do
  TF_CONFIG="{\"cluster\": $CLUSTER, \"task\": {\"type\": \"worker\", \"index\": $INDEX}}" \
    $PY launch/distributed_run.py "${ARGS[@]}" --strategy=multi_worker \
    --out_dir="$OUT_DIR/multi_worker" > "$OUT_DIR/worker-$INDEX.log" 2>&1 &
  PIDS+=($!)
done
STATUS=0
for PID in "${PIDS[@]}"; do
  wait "$PID" || STATUS=1
done
if [ "$STATUS" != 0 ]; then
  tail -20 "$OUT_DIR"/worker-*.log
  exit 1
fi

$PY - "$OUT_DIR" <<'PY'
import json
import os
import sys

from launch import distributed_run

out = sys.argv[1]
report = {"workers": 2, "runs": {}}
between = vs_single = 0.0
for run in ("pretrain", "finetune"):
    chief = os.path.join(out, "multi_worker", run, "best.weights.h5")
    other = os.path.join(out, "multi_worker", f"{run}.worker-1", "best.weights.h5")
    single = os.path.join(out, "single", run, "best.weights.h5")
    b = distributed_run.weight_differences(other, chief)
    s = distributed_run.weight_differences(chief, single)
    report["runs"][run] = {"between_workers": b, "vs_single_process": s}
    between = max(between, b["max_abs"])
    vs_single = max(vs_single, s["max_rel"])
timing = {}
for name in ("single", "multi_worker"):
    with open(os.path.join(out, name, "timing.json")) as f:
        timing[name] = json.load(f)
report["max_abs_weight_diff_between_workers"] = between
report["max_rel_diff_vs_single_process"] = vs_single
report["examples_per_sec"] = timing["multi_worker"]["finetune_examples_per_sec"]
report["timing"] = timing
with open(os.path.join(out, "multiworker.json"), "w") as f:
    json.dump(report, f, indent=2)
print(json.dumps(report, indent=2))
sys.exit(0 if between == 0.0 else 1)
PY
