"""Prints a markdown table of the results of fine-tuning runs.

    python launch/summarize_runs.py checkpoints/ml100k-uaf-gumbel \
        checkpoints/ml100k-uaf-soft

Each argument is a run directory holding `results.json` and `config.json`
(written by `launch/finetune.py`). Columns: test sampled MRR@5 / HR@5
(1 positive + 99 stored negatives), test full-ranking HR@20, the per-block
fine-tuned fraction on test, best epoch and training examples/sec.
"""

import json
import os

from absl import app


def _read(run_dir: str, name: str) -> dict:
    path = os.path.join(run_dir, name)
    if not os.path.exists(path):
        raise app.UsageError(f"{path} not found: is {run_dir} a finished run?")
    with open(path) as f:
        return json.load(f)


def table(run_dirs: list[str]) -> str:
    """The markdown table of `run_dirs` (one row each)."""
    rows = [
        "| method | test sampled MRR@5 | test sampled HR@5 | test full HR@20 "
        "| fine-tuned fraction per block (test) | best epoch | train ex/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for run_dir in run_dirs:
        results = _read(run_dir, "results.json")
        config = _read(run_dir, "config.json")
        test = results["test"]
        blocks = sorted(
            (k for k in test if k.startswith("policy/block_")),
            key=lambda k: int(k.rsplit("_", 1)[1]),
        )
        usage = " ".join(f"{test[k]:.2f}" for k in blocks)
        rows.append(
            f"| {config.get('method', '?')} "
            f"| {test['sampled/mrr@5']:.4f} | {test['sampled/hr@5']:.4f} "
            f"| {test['full/hr@20']:.4f} | {usage} "
            f"| {results['best_epoch']} "
            f"| {results['train_examples_per_sec']:.0f} |"
        )
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise app.UsageError("Pass one or more fine-tuning run directories.")
    print(table(argv[1:]))


if __name__ == "__main__":
    app.run(main)
