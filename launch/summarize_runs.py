"""Prints markdown tables of the results of pretraining and fine-tuning runs.

    python launch/summarize_runs.py checkpoints/pretrain-movielens-100k \
        checkpoints/ml100k-uaf-gumbel checkpoints/ml100k-uaf-soft

Each argument is a run directory holding `results.json` and `config.json`
(written by `launch/pretrain.py` or `launch/finetune.py`; the kind is read
from `config.json`'s `task`). Pretraining runs, one table: validation
next-item loss and full-ranking HR@5 / HR@20 / MRR@5 of the held-out users
at the best epoch. Fine-tuning runs, another: test sampled MRR@5 / HR@5
(1 positive + 99 stored negatives), test full-ranking HR@20, the per-block
fine-tuned fraction on test. Both: best epoch and training examples/sec.
For whole grids of runs with means over seeds, see `launch/reproduce.py`.
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


def _is_pretraining(config: dict, results: dict) -> bool:
    if "task" in config:
        return config["task"] == "pretrain"
    return not results.get("test")  # Runs from before `task` was recorded.


def _pretrain_row(run_dir: str, config: dict, results: dict) -> str:
    valid = results["valid"] or {}

    def value(key):
        return f"{valid[key]:.4f}" if key in valid else "-"

    return (
        f"| {run_dir} | {config.get('dataset_name', '?')} "
        f"| {value('loss')} | {value('full/hr@5')} | {value('full/hr@20')} "
        f"| {value('full/mrr@5')} | {int(valid.get('num_examples', 0))} "
        f"| {results['best_epoch']} "
        f"| {results['train_examples_per_sec']:.0f} |"
    )


def _finetune_row(config: dict, results: dict) -> str:
    test = results["test"]
    blocks = sorted(
        (k for k in test if k.startswith("policy/block_")),
        key=lambda k: int(k.rsplit("_", 1)[1]),
    )
    usage = " ".join(f"{test[k]:.2f}" for k in blocks)
    return (
        f"| {config.get('method', '?')} "
        f"| {test['sampled/mrr@5']:.4f} | {test['sampled/hr@5']:.4f} "
        f"| {test['full/hr@20']:.4f} | {usage} "
        f"| {results['best_epoch']} "
        f"| {results['train_examples_per_sec']:.0f} |"
    )


def table(run_dirs: list[str]) -> str:
    """Markdown tables of `run_dirs`: pretraining runs, then fine-tuning
    runs (one row each, in the given order; a table only if it has rows)."""
    pretrain_rows, finetune_rows = [], []
    for run_dir in run_dirs:
        results = _read(run_dir, "results.json")
        config = _read(run_dir, "config.json")
        if _is_pretraining(config, results):
            pretrain_rows.append(_pretrain_row(run_dir, config, results))
        else:
            finetune_rows.append(_finetune_row(config, results))
    tables = []
    if pretrain_rows:
        tables.append(
            "\n".join(
                [
                    "| pretraining run | dataset | valid loss "
                    "| valid full HR@5 | valid full HR@20 | valid full MRR@5 "
                    "| held-out users | best epoch | train ex/s |",
                    "|---|---|---|---|---|---|---|---|---|",
                    *pretrain_rows,
                ]
            )
        )
    if finetune_rows:
        tables.append(
            "\n".join(
                [
                    "| method | test sampled MRR@5 | test sampled HR@5 "
                    "| test full HR@20 "
                    "| fine-tuned fraction per block (test) | best epoch "
                    "| train ex/s |",
                    "|---|---|---|---|---|---|---|",
                    *finetune_rows,
                ]
            )
        )
    return "\n\n".join(tables)


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise app.UsageError("Pass one or more run directories.")
    print(table(argv[1:]))


if __name__ == "__main__":
    app.run(main)
