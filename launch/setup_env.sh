#!/usr/bin/env bash
# Creates .venv (if missing) and installs uaf-tf with its test, serving and
# plots extras into it. Idempotent: a second run only checks the install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating virtual environment .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import uaf_tf, tensorflow, tensorflow_probability, pytest, pytest_timeout, xdist, hypothesis, matplotlib" 2>/dev/null; then
  echo "[setup] installing uaf-tf and dependencies (TensorFlow is ~600 MB; a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev,serving,plots]"
fi
echo "[setup] ready: $(.venv/bin/python -c 'import tensorflow as tf, keras; print("tensorflow", tf.__version__, "keras", keras.__version__)' 2>/dev/null)"
