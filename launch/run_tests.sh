#!/usr/bin/env bash
# Runs the test suite (sets up .venv first if needed). Extra arguments go to
# pytest, e.g. `bash launch/run_tests.sh -k pipelines` or `--run_large`.
# The test files are spread over UAF_TEST_WORKERS processes (pytest-xdist;
# default: one per core, each file's tests in one process so a module's
# fixtures are built once); UAF_TEST_WORKERS=0 runs them in this process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
WORKERS="${UAF_TEST_WORKERS:-$(nproc)}"
if [ "$WORKERS" -gt 1 ]; then
  exec .venv/bin/python -m pytest -n "$WORKERS" --dist loadfile "$@"
fi
exec .venv/bin/python -m pytest "$@"
