#!/usr/bin/env bash
# Runs the test suite (sets up .venv first if needed). Extra arguments go to
# pytest, e.g. `bash launch/run_tests.sh -k pipelines` or `--run_large`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec .venv/bin/python -m pytest "$@"
