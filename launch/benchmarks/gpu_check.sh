#!/usr/bin/env bash
# GPU readiness check (issue 11). Usage: bash launch/benchmarks/gpu_check.sh OUT_DIR
#
# Without a GPU (no working `nvidia-smi`), says so and exits 0. With one, in
# about five minutes: records the card (nvidia-smi), TensorFlow's view of the
# GPUs, the pretraining and fine-tuning throughput benchmarks
# (launch/benchmarks/*_throughput.py) in float32 and again under the Keras
# global dtype policy mixed_float16 (float16 matmuls/convs on tensor cores,
# float32 variables), and the ML-100K quickstart (float32); every output goes
# to OUT_DIR (*.txt, one file per step) so it can be pasted into docs/gpu.md.
# Each step has a time limit; a failing step is recorded and the rest still run.
set -uo pipefail
if [ $# -ne 1 ]; then
  echo "usage: bash launch/benchmarks/gpu_check.sh OUT_DIR" >&2
  exit 2
fi
OUT_DIR="$1"
cd "$(dirname "$0")/../.."
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PY:-.venv/bin/python}"

if ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L > /dev/null 2>&1; then
  echo "gpu_check: no GPU visible (nvidia-smi missing or failing); nothing to run."
  exit 0
fi
mkdir -p "$OUT_DIR"
date -u +%Y-%m-%dT%H:%M:%SZ > "$OUT_DIR/date.txt"
nvidia-smi > "$OUT_DIR/nvidia-smi.txt" 2>&1
nvidia-smi -L
if ! $PY -c "import tensorflow" > /dev/null 2>&1; then
  echo "gpu_check: a GPU is visible but $PY cannot import TensorFlow; run" \
    "launch/setup_env.sh (with a CUDA build of TensorFlow) first." \
    | tee "$OUT_DIR/error.txt"
  exit 1
fi
$PY -c "import tensorflow as tf; print(tf.__version__, tf.config.list_physical_devices('GPU'))" \
  > "$OUT_DIR/tensorflow.txt" 2>&1
cat "$OUT_DIR/tensorflow.txt"

# step NAME LIMIT_S COMMAND...: runs COMMAND with a time limit into NAME.txt.
FAILED=0
step() {
  local name="$1" limit="$2"
  shift 2
  echo "== $name (limit ${limit}s)"
  if timeout "$limit" "$@" > "$OUT_DIR/$name.txt" 2>&1; then
    tail -5 "$OUT_DIR/$name.txt"
  else
    echo "   $name failed or timed out (rc $?); see $OUT_DIR/$name.txt"
    FAILED=1
  fi
}

for bench in pretrain finetune; do
  script="launch/benchmarks/${bench}_throughput.py"
  [ -f "$script" ] || continue
  step "${bench}_throughput_float32" 60 $PY "$script"
  step "${bench}_throughput_mixed_float16" 60 $PY -c "
import runpy, sys, keras
keras.mixed_precision.set_global_policy('mixed_float16')
sys.argv = ['$script']
runpy.run_path('$script', run_name='__main__')"
done
step quickstart 150 env RUN_ROOT="$OUT_DIR/runs" EXPORT_BASE="$OUT_DIR/exports" \
  bash launch/quickstart.sh
echo "gpu_check: figures in $OUT_DIR"
exit "$FAILED"
