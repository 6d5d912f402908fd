"""UAF-RL's accuracy against its cost: a sweep of the reward's weights.

The paper's reward (Eq. 11) pays `1 - w f^2` for a hit and `-gamma` for a
miss, with `f` the fraction of fine-tuned blocks (`uaf_tf.rewards`; the
paper has `w = 1`, `gamma = 1`). A larger `w` or a smaller `gamma` pushes
the policy to freeze more blocks. This module runs UAF-RL once per
`(w, gamma, seed)` and reports test MRR@5 / HR@5 against the mean number
of fine-tuned blocks per test user: the trade-off the paper motivates UAF-RL
with but never plots.

```
<out_dir>/runs/w<w>_gamma<g>/seed<s>/   launch/finetune.py --method=rl
<out_dir>/logs/                          each cell's output
<out_dir>/tradeoff.md, tradeoff.csv      the table (mean +- std over seeds)
<out_dir>/tradeoff.png                   MRR@5 against fine-tuned blocks
```

Cells are `grid.Cell`s, so a sweep resumes cell by cell like a
reproduction.
"""

import csv
import dataclasses
import io
import json
import os
import sys
from collections.abc import Sequence

import numpy as np

from uaf_tf.experiments import grid
from uaf_tf.experiments import plots

RL = "rl"
TRADEOFF_MD = "tradeoff.md"
TRADEOFF_CSV = "tradeoff.csv"
TRADEOFF_PNG = "tradeoff.png"
# (results.json test key, column name).
METRICS = (
    ("sampled/mrr@5", "MRR@5"),
    ("sampled/hr@5", "HR@5"),
    ("full/hr@20", "full HR@20"),
    ("policy/mean_finetuned_blocks", "fine-tuned blocks"),
)


def _number(value: float) -> str:
    """`0.5` -> `"0.5"`, `1.0` -> `"1"`: the run directory's spelling."""
    return f"{float(value):g}"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One reward setting: the block-cost weight `w` and the miss penalty."""

    cost_weight: float
    gamma: float

    @property
    def name(self) -> str:
        """`w<w>_gamma<g>`, e.g. `w0.5_gamma1`."""
        return f"w{_number(self.cost_weight)}_gamma{_number(self.gamma)}"


def settings(
    cost_weights: Sequence[float], gammas: Sequence[float]
) -> list[Setting]:
    """Every `(w, gamma)` pair, `w` outer.

    Raises:
        ValueError: an empty list, a repeat, a negative `w` or a `gamma`
            that is not positive.
    """
    for name, values in (("cost_weights", cost_weights), ("gammas", gammas)):
        if not values or len(set(values)) != len(values):
            raise ValueError(
                f"`{name}` must be non-empty without repeats. "
                f"Received: {name}={list(values)!r}"
            )
    if min(cost_weights) < 0:
        raise ValueError(
            f"Cost weights must be >= 0. Received: {list(cost_weights)}"
        )
    if min(gammas) <= 0:
        raise ValueError(f"Gammas must be > 0. Received: {list(gammas)}")
    return [Setting(float(w), float(g)) for w in cost_weights for g in gammas]


def parse_settings(texts: Sequence[str]) -> list[Setting]:
    """`["0:1", "2:1", "1:0.5"]` -> settings `(w, gamma)`, in that order.

    Raises:
        ValueError: a text is not `w:gamma`, or the values are invalid as
            in `settings`.
    """
    sweep = []
    for text in texts:
        parts = text.split(":")
        if len(parts) != 2:
            raise ValueError(
                f"A setting must be `w:gamma`, e.g. `0.5:1`. Received: {text!r}"
            )
        w, gamma = float(parts[0]), float(parts[1])
        settings([w], [gamma])  # Validates the values.
        sweep.append(Setting(w, gamma))
    if len(set(sweep)) != len(sweep):
        raise ValueError(f"Settings repeat. Received: {list(texts)}")
    return sweep


def plan(
    *,
    data_dir: str,
    pretrained: str,
    out_dir: str,
    sweep: Sequence[Setting],
    seeds: Sequence[int],
    finetune_flagfile: str | None = None,
    extra_finetune_flags: Sequence[str] = (),
    python: str = sys.executable,
    finetune_script: str = os.path.join(grid._LAUNCH_DIR, "finetune.py"),
) -> list[grid.Cell]:
    """One UAF-RL fine-tuning cell per `(seed, setting)`, seed outer."""
    flagfile = (f"--flagfile={finetune_flagfile}",) if finetune_flagfile else ()
    cells = []
    for seed in seeds:
        for setting in sweep:
            run_dir = os.path.join(out_dir, "runs", setting.name, f"seed{seed}")
            cells.append(
                grid.Cell(
                    name=os.path.relpath(run_dir, out_dir),
                    kind=grid.FINETUNE,
                    argv=(
                        python,
                        finetune_script,
                        *flagfile,
                        f"--method={RL}",
                        f"--seed={seed}",
                        f"--rl_cost_weight={setting.cost_weight}",
                        f"--gamma={setting.gamma}",
                        f"--data_dir={data_dir}",
                        f"--pretrained={pretrained}",
                        f"--run_dir={run_dir}",
                        *extra_finetune_flags,
                    ),
                    output=os.path.join(run_dir, grid.RESULTS_FILE),
                    run_dir=run_dir,
                    method=setting.name,
                    seed=seed,
                    fraction=1.0,
                )
            )
    return cells


@dataclasses.dataclass(frozen=True)
class Row:
    """One setting's test metrics over its finished seeds.

    Attributes:
        setting: the reward setting.
        seeds: the seeds that finished.
        mean, std: `{results.json test key: value}` over those seeds
            (std with ddof=1; 0 for one seed).
        block_utilisation: mean test fine-tune rate per block over seeds.
    """

    setting: Setting
    seeds: tuple[int, ...]
    mean: dict
    std: dict
    block_utilisation: tuple[float, ...]


def collect(cells: Sequence[grid.Cell], sweep: Sequence[Setting]) -> list[Row]:
    """The rows of the settings with at least one finished seed."""
    rows = []
    for setting in sweep:
        tests, seeds = [], []
        for cell in cells:
            if cell.method == setting.name and os.path.exists(cell.output):
                with open(cell.output) as f:
                    tests.append(json.load(f)["test"])
                seeds.append(cell.seed)
        if not tests:
            continue
        mean, std = {}, {}
        for key, _ in METRICS:
            values = np.array([t[key] for t in tests], np.float64)
            mean[key] = float(values.mean())
            std[key] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        blocks = sorted(
            (k for k in tests[0] if k.startswith("policy/block_")),
            key=lambda k: int(k.rsplit("_", 1)[1]),
        )
        utilisation = tuple(
            float(np.mean([t[k] for t in tests])) for k in blocks
        )
        rows.append(Row(setting, tuple(seeds), mean, std, utilisation))
    return rows


def markdown_table(rows: Sequence[Row]) -> str:
    """`| w | gamma | seeds | MRR@5 | ... | per-block fine-tune rate |`."""
    header = ["w", "gamma", "seeds", *(name for _, name in METRICS)]
    header.append("fine-tune rate per block")
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        cells = [
            _number(row.setting.cost_weight),
            _number(row.setting.gamma),
            str(len(row.seeds)),
        ]
        for key, _ in METRICS:
            text = f"{row.mean[key]:.4f}"
            if len(row.seeds) > 1:
                text += f" ± {row.std[key]:.4f}"
            cells.append(text)
        cells.append(" ".join(f"{u:.2f}" for u in row.block_utilisation))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(rows: Sequence[Row]) -> str:
    """One row per setting: w, gamma, n_seeds, then mean and std per metric."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["w", "gamma", "n_seeds"]
        + [f"{key}_{stat}" for key, _ in METRICS for stat in ("mean", "std")]
    )
    for row in rows:
        writer.writerow(
            [row.setting.cost_weight, row.setting.gamma, len(row.seeds)]
            + [
                f"{getattr(row, stat)[key]:.6f}"
                for key, _ in METRICS
                for stat in ("mean", "std")
            ]
        )
    return out.getvalue()


def plot(rows: Sequence[Row], path: str, *, title: str) -> str | None:
    """Test MRR@5 against mean fine-tuned blocks, one labelled point per
    setting (error bars: std over seeds). None if matplotlib is missing."""
    try:
        plt = plots._pyplot()
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(6, 4.2))
    blocks_key, mrr_key = "policy/mean_finetuned_blocks", "sampled/mrr@5"
    for row in rows:
        axes.errorbar(
            row.mean[blocks_key],
            row.mean[mrr_key],
            xerr=row.std[blocks_key],
            yerr=row.std[mrr_key],
            fmt="o",
            capsize=3,
        )
        axes.annotate(
            f"w={_number(row.setting.cost_weight)}, "
            f"γ={_number(row.setting.gamma)}",
            (row.mean[blocks_key], row.mean[mrr_key]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    num_blocks = max((len(r.block_utilisation) for r in rows), default=0)
    if num_blocks:
        axes.set_xlim(-0.2, num_blocks + 0.2)
    axes.set_xlabel("mean fine-tuned blocks per test user")
    axes.set_ylabel("test sampled MRR@5")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_report(
    cells: Sequence[grid.Cell],
    sweep: Sequence[Setting],
    out_dir: str,
    *,
    command: str = "",
    plots: bool = True,
) -> list[Row]:
    """Writes `tradeoff.md`, `tradeoff.csv` and (if `plots`) the PNG."""
    rows = collect(cells, sweep)
    missing = [c.name for c in cells if not os.path.exists(c.output)]
    text = "# UAF-RL: accuracy against fine-tuned blocks\n\n"
    if command:
        text += f"Produced by:\n\n```\n{command}\n```\n\n"
    text += (
        "Reward (Eq. 11 with a cost weight w): 1 - w f^2 for a hit, -gamma "
        "for a miss; f = fraction of fine-tuned blocks. Paper: w = 1, "
        "gamma = 1. Test metrics, mean ± std over seeds.\n\n"
    )
    text += markdown_table(rows)
    if missing:
        text += f"\nNot finished yet ({len(missing)}): {', '.join(missing)}\n"
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, TRADEOFF_MD), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, TRADEOFF_CSV), "w") as f:
        f.write(csv_table(rows))
    if plots and rows:
        plot(
            rows,
            os.path.join(out_dir, TRADEOFF_PNG),
            title="UAF-RL reward weights: accuracy vs. cost",
        )
    return rows
