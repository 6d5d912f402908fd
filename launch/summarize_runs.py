"""Prints markdown tables of the results of pretraining and fine-tuning runs.

    python launch/summarize_runs.py checkpoints/pretrain-movielens-100k \
        runs/gumbel/seed0 runs/gumbel/seed1 runs/soft/seed0 runs/soft/seed1

Each argument is a run directory holding `results.json` and `config.json`
(written by `launch/pretrain.py` or `launch/finetune.py`; the kind is read
from `config.json`'s `task`).

Per kind, one row per run: the run directory, seed and learning rate, then
for pretraining runs the validation next-item loss and full-ranking HR and
MRR @5, @10, @20 of the held-out users at the best epoch; for fine-tuning
runs the method, test sampled MRR and HR @5, @10, @20 (1 positive + 99
stored negatives), test full-ranking HR@10 and HR@20 and the per-block
fine-tuned fraction on test. Both: best epoch and training examples/sec.
A metric a run did not record (e.g. @10 before it existed) shows as `-`.

Then, per kind, the mean +- sample standard deviation over seeds: runs
whose configurations are equal but for the seed form one setting, named
by the options that differ between settings. For a whole reproduction grid
with significance tests, see `launch/reproduce.py`.
"""

import json
import math
import os

from absl import app

PRETRAIN = "pretrain"
FINETUNE = "finetune"
# (column header, results split, metric key) per kind.
_METRICS = {
    PRETRAIN: [
        ("valid loss", "valid", "loss"),
        *(
            (f"valid full {name.upper()}@{k}", "valid", f"full/{name}@{k}")
            for name in ("hr", "mrr")
            for k in (5, 10, 20)
        ),
    ],
    FINETUNE: [
        *(
            (f"test sampled {name.upper()}@{k}", "test", f"sampled/{name}@{k}")
            for name in ("mrr", "hr")
            for k in (5, 10, 20)
        ),
        ("test full HR@10", "test", "full/hr@10"),
        ("test full HR@20", "test", "full/hr@20"),
    ],
}
# Configuration keys that do not define a setting.
_NOT_SETTING = ("seed", "environment")


def _read(run_dir: str, name: str) -> dict:
    path = os.path.join(run_dir, name)
    if not os.path.exists(path):
        raise app.UsageError(f"{path} not found: is {run_dir} a finished run?")
    with open(path) as f:
        return json.load(f)


def flat_config(config: dict) -> dict:
    """`config.json` with nested configs (`training`) flattened to their
    fields' names (the flag names, e.g. `learning_rate`)."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and key != "environment":
            flat.update(flat_config(value))
        else:
            flat[key] = value
    return flat


def _kind(config: dict, results: dict) -> str:
    if "task" in config:
        return PRETRAIN if config["task"] == PRETRAIN else FINETUNE
    # Runs from before `task` was recorded.
    return FINETUNE if results.get("test") else PRETRAIN


def _metric(results: dict, split: str, key: str) -> float | None:
    value = (results.get(split) or {}).get(key)
    return None if value is None else float(value)


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _run_row(run_dir: str, kind: str, config: dict, results: dict) -> str:
    flat = flat_config(config)
    cells = [run_dir]
    if kind == PRETRAIN:
        cells.append(str(flat.get("dataset_name", "?")))
    else:
        cells.append(str(flat.get("method", "?")))
    cells += [str(flat.get("seed", "?")), f"{flat.get('learning_rate', '?')}"]
    cells += [
        _number(_metric(results, split, key))
        for _, split, key in _METRICS[kind]
    ]
    if kind == PRETRAIN:
        valid = results.get("valid") or {}
        cells.append(str(int(valid.get("num_examples", 0))))
    else:
        test = results.get("test") or {}
        blocks = sorted(
            (k for k in test if k.startswith("policy/block_")),
            key=lambda k: int(k.rsplit("_", 1)[1]),
        )
        cells.append(" ".join(f"{test[k]:.2f}" for k in blocks) or "-")
    cells += [
        str(results.get("best_epoch")),
        f"{results.get('train_examples_per_sec', 0.0):.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[str]) -> str:
    return "\n".join(
        [
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
            *rows,
        ]
    )


def mean_std(values: list[float]) -> str:
    """`"0.1234 +- 0.0050"` (sample standard deviation); one value alone."""
    if not values:
        return "-"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.4f}"
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return f"{mean:.4f} +- {math.sqrt(variance):.4f}"


def _setting_names(settings: list[dict], kind: str) -> list[str]:
    """Each setting named by the options that differ between settings
    (always the method or dataset)."""
    union = sorted({k for s in settings for k in s})
    keys = [
        k
        for k in union
        if any(s.get(k, "?") != settings[0].get(k, "?") for s in settings)
    ]
    first = "dataset_name" if kind == PRETRAIN else "method"
    keys = [first] + [k for k in keys if k != first]
    return [
        ", ".join(
            str(s.get(k, "?")) if k == first else f"{k}={s.get(k)}"
            for k in keys
        )
        for s in settings
    ]


def _average_rows(kind: str, runs: list[tuple[str, dict, dict]]) -> list[str]:
    groups = {}  # setting (json) -> [(seed, results)]
    for _, config, results in runs:
        flat = flat_config(config)
        setting = {k: v for k, v in flat.items() if k not in _NOT_SETTING}
        key = json.dumps(setting, sort_keys=True)
        groups.setdefault(key, []).append((flat.get("seed"), results))
    settings = [json.loads(key) for key in groups]
    rows = []
    for name, members in zip(
        _setting_names(settings, kind), groups.values(), strict=True
    ):
        cells = [
            name,
            str(len(members)),
            ",".join(str(seed) for seed, _ in members),
        ]
        for _, split, key in _METRICS[kind]:
            values = [_metric(r, split, key) for _, r in members]
            cells.append(mean_std([v for v in values if v is not None]))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def table(run_dirs: list[str]) -> str:
    """Markdown tables of `run_dirs`: per kind (pretraining, fine-tuning)
    one row per run in the given order, then the means over seeds; a kind
    only if it has runs."""
    runs = {PRETRAIN: [], FINETUNE: []}
    for run_dir in run_dirs:
        results = _read(run_dir, "results.json")
        config = _read(run_dir, "config.json")
        runs[_kind(config, results)].append((run_dir, config, results))
    tables = []
    for kind, first, extra in (
        (PRETRAIN, "dataset", "held-out users"),
        (FINETUNE, "method", "fine-tuned fraction per block (test)"),
    ):
        if not runs[kind]:
            continue
        metrics = [header for header, _, _ in _METRICS[kind]]
        tables.append(
            _table(
                [
                    f"{kind} run",
                    first,
                    "seed",
                    "learning rate",
                    *metrics,
                    extra,
                    "best epoch",
                    "train ex/s",
                ],
                [_run_row(d, kind, c, r) for d, c, r in runs[kind]],
            )
        )
        tables.append(
            _table(
                [f"{kind} setting", "n", "seeds", *metrics],
                _average_rows(kind, runs[kind]),
            )
        )
    return "\n\n".join(tables)


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise app.UsageError("Pass one or more run directories.")
    print(table(argv[1:]))


if __name__ == "__main__":
    app.run(main)
