"""The profile task's table (paper Table 9): runs, rows, Markdown and CSV.

```
<out_dir>/profile_<label>.md    the table, with its command and context
<out_dir>/profile_<label>.csv   the same numbers, one row per method
```

One row per method: test accuracy and macro-F1, mean +- sample std over
the seeds that finished, then the majority-class baseline (the most
frequent training class, predicted for every test user; the same users for
every run, since the user split's seed is the dataset's).
"""

import csv
import dataclasses
import io
import json
import os
from collections.abc import Callable
from collections.abc import Sequence

import numpy as np

from uaf_tf.experiments import grid
from uaf_tf.experiments import report

ACCURACY = "accuracy"
MACRO_F1 = "macro_f1"
METRICS = {ACCURACY: "Accuracy", MACRO_F1: "Macro-F1"}
MAJORITY = "majority"


def markdown_path(out_dir: str, label: str) -> str:
    return os.path.join(out_dir, f"profile_{label}.md")


def csv_path(out_dir: str, label: str) -> str:
    return os.path.join(out_dir, f"profile_{label}.csv")


@dataclasses.dataclass
class ProfileRow:
    """One method (or the majority baseline) over its finished seeds.

    Attributes:
        method: `--method` value, or `"majority"`.
        seeds: the seeds that finished, sorted (empty for the baseline).
        mean: metric -> mean over seeds.
        std: metric -> sample std (ddof 1); None for fewer than 2 seeds.
        mean_finetuned_blocks: mean over seeds of the test users' mean
            number of blocks on the fine-tuned copy (None if not reported).
    """

    method: str
    seeds: list
    mean: dict
    std: dict
    mean_finetuned_blocks: float | None = None


def load_profile_runs(cells: Sequence[grid.Cell]) -> tuple[dict, list]:
    """`({method: [(seed, results)]}, missing cells)` of the profile cells."""
    runs, missing = {}, []
    for cell in cells:
        if cell.kind != grid.PROFILE:
            continue
        if not os.path.exists(cell.output):
            missing.append(cell)
            continue
        with open(cell.output) as f:
            runs.setdefault(cell.method, []).append((cell.seed, json.load(f)))
    return runs, missing


def profile_rows(runs: dict) -> list[ProfileRow]:
    """One row per method with finished runs (paper order), then the
    majority baseline (read from the first finished run)."""
    rows = []
    for method in report.ordered_methods(list(runs)):
        method_runs = sorted(runs[method], key=lambda run: run[0])
        mean, std = {}, {}
        for metric in METRICS:
            values = np.array([r["test"][metric] for _, r in method_runs])
            mean[metric] = float(values.mean())
            std[metric] = float(values.std(ddof=1)) if len(values) > 1 else None
        blocks = [
            r["test"].get("policy/mean_finetuned_blocks")
            for _, r in method_runs
        ]
        rows.append(
            ProfileRow(
                method,
                [seed for seed, _ in method_runs],
                mean,
                std,
                None if None in blocks else float(np.mean(blocks)),
            )
        )
    if rows:
        test = runs[rows[0].method][0][1]["test"]
        rows.append(
            ProfileRow(
                MAJORITY,
                [],
                {m: test[f"{MAJORITY}/{m}"] for m in METRICS},
                {m: None for m in METRICS},
            )
        )
    return rows


def _majority_disagreements(runs: dict) -> list[str]:
    """Runs whose majority baseline differs from the first run's (they
    were split or labelled differently)."""
    values = {
        (method, seed): tuple(r["test"][f"{MAJORITY}/{m}"] for m in METRICS)
        for method, method_runs in runs.items()
        for seed, r in method_runs
    }
    if not values:
        return []
    first = next(iter(values.values()))
    return [f"{m} seed {s}" for (m, s), v in values.items() if v != first]


def _label(method: str) -> str:
    return "Majority class" if method == MAJORITY else report.label(method)


def _cell(row: ProfileRow, metric: str) -> str:
    std = row.std[metric]
    value = f"{row.mean[metric]:.4f}"
    return value if std is None else f"{value} ± {std:.4f}"


def markdown_table(rows: Sequence[ProfileRow]) -> str:
    lines = [
        "| Model | Accuracy | Macro-F1 | n seeds | fine-tuned blocks (test) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        blocks = (
            ""
            if row.mean_finetuned_blocks is None
            else f"{row.mean_finetuned_blocks:.2f}"
        )
        n = "-" if row.method == MAJORITY else str(len(row.seeds))
        lines.append(
            f"| {_label(row.method)} | {_cell(row, ACCURACY)} | "
            f"{_cell(row, MACRO_F1)} | {n} | {blocks} |"
        )
    return "\n".join(lines) + "\n"


def csv_report(rows: Sequence[ProfileRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["method", "n_seeds", "seeds"]
    for metric in METRICS:
        header += [f"{metric}_mean", f"{metric}_std"]
    writer.writerow(header + ["mean_finetuned_blocks"])
    for row in rows:
        line = [row.method, len(row.seeds), " ".join(map(str, row.seeds))]
        for metric in METRICS:
            std = row.std[metric]
            line += [repr(row.mean[metric]), "" if std is None else repr(std)]
        blocks = row.mean_finetuned_blocks
        writer.writerow(line + ["" if blocks is None else repr(blocks)])
    return out.getvalue()


def write_profile_report(
    spec: grid.GridSpec,
    *,
    command: str = "",
    echo: Callable[[str], None] = print,
) -> tuple[str, str, list]:
    """Writes `profile_<label>.md` and `.csv` from the finished cells.

    Returns:
        `(markdown path, csv path, names of the cells without results)`.
    """
    runs, missing = load_profile_runs(grid.plan(spec))
    rows = profile_rows(runs)
    first = next(
        (r for method_runs in runs.values() for _, r in method_runs), {}
    )
    profile = first.get("profile") or {}
    context = []
    if command:
        context.append(f"Command: `{command}`")
    context += [
        f"Dataset: `{spec.data_dir}`; pretrained run: `{spec.pretrained_run}`.",
        "Profile flags: "
        + " ".join(
            f"`{f}`"
            for f in (
                f"--flagfile={spec.finetune_flagfile}"
                if spec.finetune_flagfile
                else "(launch/profile.py defaults)",
                *spec.extra_finetune_flags,
            )
        ),
        f"Methods: {', '.join(report.label(m) for m in spec.methods)}; "
        f"seeds: {', '.join(map(str, spec.seeds))}.",
        f"Finished runs: {sum(map(len, runs.values()))} of "
        f"{sum(map(len, runs.values())) + len(missing)}.",
    ]
    if profile:
        users = profile.get("users", {})
        context.append(
            f"Label `{profile.get('label')}`: "
            f"{len(profile.get('class_names', []))} classes; users "
            f"train / valid / test {users.get('train')} / "
            f"{users.get('valid')} / {users.get('test')} (split seed "
            f"{profile.get('split_seed')}); {profile.get('skipped_users')} "
            "users without a profile skipped; majority class "
            f"`{profile.get('majority_class')}`."
        )
    disagreements = _majority_disagreements(runs)
    if disagreements:
        warning = (
            "Warning: the majority baseline differs in "
            + ", ".join(disagreements)
            + " (another split or label file); the row shows the first run's."
        )
        context.append(warning)
        echo(warning)
    title = f"# User-profile prediction: {spec.profile_label} (paper Table 9)\n"
    body = (
        markdown_table(rows) if rows else "No profile run has finished yet.\n"
    )
    markdown = (
        title
        + "\n"
        + "\n\n".join(context)
        + "\n\nTest users; accuracy and macro-F1 (mean ± sample std over "
        "seeds); the majority class is predicted for every test user.\n\n"
        + body
    )
    paths = (
        markdown_path(spec.out_dir, spec.profile_label),
        csv_path(spec.out_dir, spec.profile_label),
    )
    os.makedirs(spec.out_dir, exist_ok=True)
    for path, text in zip(paths, (markdown, csv_report(rows)), strict=True):
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    return paths[0], paths[1], [cell.name for cell in missing]


def headline(cell: grid.Cell) -> str:
    """One line of what a finished profile cell reached."""
    with open(cell.output) as f:
        test = json.load(f).get("test") or {}
    return (
        f"test accuracy {test.get(ACCURACY, float('nan')):.4f} macro-F1 "
        f"{test.get(MACRO_F1, float('nan')):.4f} (majority "
        f"{test.get(f'{MAJORITY}/{ACCURACY}', float('nan')):.4f})"
    )
