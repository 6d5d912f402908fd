"""The paper's result tables from run directories: Markdown and CSV.

Layout of Table 2 (Tables 6-7 when several training fractions are run):
one row per method in the paper's order, columns test MRR@5 and HR@5 of the
sampled protocol as mean +- sample std over seeds, the best mean of each
column in bold, the number of seeds, and a two-sided paired t-test of each
UAF variant against the best baseline (the non-UAF method with the highest
mean MRR@5). The popularity floor is a row of its own. Every number is read
from the runs' `results.json` (and `test_instances.tsv`) files.

Pairing of the t-test: over the same test instances (per-instance RR@5 and
HR@5 averaged over seeds, paired by the stored instance `index`) when every
run of both methods holds `test_instances.tsv`; otherwise over seeds (the
per-seed test means), which the table note then says. Either way only the
seeds both methods finished enter the test and its Δ: a method at seed 0
alone is compared with the baseline's seed 0, not with its mean over three
seeds (seed-to-seed spread would otherwise pass for a method effect). The
note names the comparisons that left seeds out.
"""

import csv
import dataclasses
import io
import json
import math
import os
from collections.abc import Sequence

import numpy as np

from uaf_tf.experiments import grid
from uaf_tf.experiments import instances
from uaf_tf.experiments import significance

# Fine-tuning methods in the order of the paper's Table 2 (sec. 4.2), then
# UAF-Random (sec. 5.3.1).
METHOD_ORDER = (
    "finetune-zero",
    "finetune-cls",
    "finetune-last1",
    "finetune-last2",
    "finetune-all",
    "mtl",
    "conet",
    "ddtcdr",
    "peterrec",
    "gumbel",
    "rl",
    "soft",
    "random",
)
UAF_METHODS = ("gumbel", "rl", "soft", "random")
LABELS = {
    "finetune-zero": "Finetune-Zero",
    "finetune-cls": "Finetune-CLS",
    "finetune-last1": "Finetune-Last1",
    "finetune-last2": "Finetune-Last2",
    "finetune-all": "Finetune-All",
    "mtl": "MTL",
    "conet": "CoNet",
    "ddtcdr": "DDTCDR",
    "peterrec": "PeterRec",
    "gumbel": "UAF-Gumbel",
    "rl": "UAF-RL",
    "soft": "UAF-Soft",
    "random": "UAF-Random",
    "popularity": "Popularity",
}
# The table's metrics: results.json test key -> column name; the cut-off
# of the per-instance values used to pair them.
METRICS = {"sampled/mrr@5": "MRR@5", "sampled/hr@5": "HR@5"}
_CUTOFF = 5
INSTANCES = "instances"
SEEDS = "seeds"


def is_uaf(method: str) -> bool:
    """Whether `method` is a UAF variant (tested against the best baseline)
    rather than a baseline: a name of `UAF_METHODS`, or one of them with a
    suffix (`"random-fixed"`, `"gumbel-gru"`)."""
    return method.split("-")[0] in UAF_METHODS


def label(method: str) -> str:
    """Display name of a `--method` value (`"gumbel"` -> `"UAF-Gumbel"`)."""
    return LABELS.get(method, method)


def ordered_methods(methods: Sequence[str]) -> list[str]:
    """`methods` in the paper's order; unknown ones after, as given."""
    known = [m for m in METHOD_ORDER if m in methods]
    return known + [m for m in methods if m not in METHOD_ORDER]


@dataclasses.dataclass(frozen=True)
class Run:
    """A finished fine-tuning cell and its `results.json`."""

    method: str
    fraction: float
    seed: int
    run_dir: str
    results: dict


def load_runs(cells: Sequence[grid.Cell]) -> tuple[list[Run], list[grid.Cell]]:
    """Splits the fine-tuning `cells` into finished runs and missing cells."""
    runs, missing = [], []
    for cell in cells:
        if cell.kind != grid.FINETUNE:
            continue
        if not os.path.exists(cell.output):
            missing.append(cell)
            continue
        with open(cell.output) as f:
            results = json.load(f)
        runs.append(
            Run(cell.method, cell.fraction, cell.seed, cell.run_dir, results)
        )
    return runs, missing


@dataclasses.dataclass
class Row:
    """One method at one training fraction.

    Attributes:
        method: `--method` value (or `"popularity"`).
        seeds: the seeds that finished, sorted.
        mean: metric -> mean over seeds.
        std: metric -> sample standard deviation (ddof 1); None for n < 2.
        wall_time_s: summed `wall_time_s` of the runs.
    """

    method: str
    seeds: list[int]
    mean: dict
    std: dict
    wall_time_s: float = 0.0

    @property
    def n(self) -> int:
        return len(self.seeds)


@dataclasses.dataclass
class Comparison:
    """Paired t-tests of one UAF method against the best baseline.

    Attributes:
        method: the UAF method.
        baseline: the baseline it is compared with.
        pairing: `INSTANCES` or `SEEDS`.
        tests: metric -> `significance.PairedTTest`.
        seeds: the seeds both finished (the only ones the tests use).
        all_seeds: whether those are every seed either method finished.
    """

    method: str
    baseline: str
    pairing: str
    tests: dict
    seeds: list = dataclasses.field(default_factory=list)
    all_seeds: bool = True


@dataclasses.dataclass
class FractionTable:
    """Everything one table shows (one training fraction).

    Attributes:
        fraction: the training fraction.
        rows: one `Row` per method with at least one finished seed, in the
            paper's order.
        popularity: the popularity row, or None if it was not computed.
        best: metric -> the methods whose mean is the best (bold).
        baseline: the best baseline, or None if no baseline finished.
        comparisons: UAF method -> `Comparison`.
        missing: names of the cells of this fraction without results.
    """

    fraction: float
    rows: list
    popularity: Row | None
    best: dict
    baseline: str | None
    comparisons: dict
    missing: list


def _row(method: str, runs: Sequence[Run]) -> Row:
    runs = sorted(runs, key=lambda r: r.seed)
    mean, std = {}, {}
    for metric in METRICS:
        values = np.array([r.results["test"][metric] for r in runs])
        mean[metric] = float(values.mean())
        std[metric] = float(values.std(ddof=1)) if len(values) > 1 else None
    return Row(
        method,
        [r.seed for r in runs],
        mean,
        std,
        float(sum(r.results.get("wall_time_s", 0.0) for r in runs)),
    )


def _per_instance(runs: Sequence[Run]) -> dict | None:
    """metric -> {index: value averaged over `runs`}; None if any run
    lacks `test_instances.tsv`."""
    tables = [instances.read_test_instances(r.run_dir) for r in runs]
    if not tables or any(t is None for t in tables):
        return None
    common = set(tables[0]["index"].tolist())
    for table in tables[1:]:
        common &= set(table["index"].tolist())
    order = np.array(sorted(common), np.int64)
    out = {}
    for metric, value_fn in (
        ("sampled/mrr@5", instances.reciprocal_rank_at),
        ("sampled/hr@5", instances.hit_at),
    ):
        stacked = []
        for table in tables:
            position = {i: k for k, i in enumerate(table["index"].tolist())}
            values = value_fn(table["sampled_rank"], _CUTOFF)
            stacked.append(values[[position[i] for i in order.tolist()]])
        out[metric] = dict(
            zip(order.tolist(), np.mean(stacked, axis=0).tolist(), strict=True)
        )
    return out


def compare(
    method_runs: Sequence[Run], baseline_runs: Sequence[Run]
) -> Comparison | None:
    """Paired t-tests of `method_runs` against `baseline_runs`, over the
    seeds both finished (None when they share no seed).

    Over instances when every such run holds `test_instances.tsv`
    (per-instance values averaged over those seeds, paired on the instances
    both hold), else over those seeds (per-seed test means).
    """
    method, baseline = method_runs[0].method, baseline_runs[0].method
    seeds = sorted(
        {r.seed for r in method_runs} & {r.seed for r in baseline_runs}
    )
    if not seeds:
        return None
    all_seeds = len(seeds) == len(method_runs) == len(baseline_runs)
    method_runs = [r for r in method_runs if r.seed in seeds]
    baseline_runs = [r for r in baseline_runs if r.seed in seeds]
    a, b = _per_instance(method_runs), _per_instance(baseline_runs)
    tests = {}
    if a is not None and b is not None:
        for metric in METRICS:
            keys = sorted(set(a[metric]) & set(b[metric]))
            tests[metric] = significance.paired_t_test(
                [a[metric][k] for k in keys], [b[metric][k] for k in keys]
            )
        return Comparison(method, baseline, INSTANCES, tests, seeds, all_seeds)
    by_seed_a = {r.seed: r.results["test"] for r in method_runs}
    by_seed_b = {r.seed: r.results["test"] for r in baseline_runs}
    for metric in METRICS:
        tests[metric] = significance.paired_t_test(
            [by_seed_a[s][metric] for s in seeds],
            [by_seed_b[s][metric] for s in seeds],
        )
    return Comparison(method, baseline, SEEDS, tests, seeds, all_seeds)


def _popularity_row(results: dict | None) -> Row | None:
    if not results:
        return None
    test = results["test"]
    return Row(
        "popularity",
        [],
        {m: float(test[m]) for m in METRICS},
        dict.fromkeys(METRICS),
    )


def fraction_tables(
    runs: Sequence[Run],
    missing: Sequence[grid.Cell],
    fractions: Sequence[float],
    popularity: dict | None = None,
) -> list[FractionTable]:
    """One `FractionTable` per training fraction.

    Args:
        runs: finished runs (`load_runs`).
        missing: cells without results (`load_runs`).
        fractions: the training fractions, in table order.
        popularity: fraction -> the popularity baseline's JSON (its `test`
            metrics), where computed.
    """
    popularity = popularity or {}
    tables = []
    for fraction in fractions:
        by_method = {}
        for run in runs:
            if run.fraction == fraction:
                by_method.setdefault(run.method, []).append(run)
        rows = [_row(m, by_method[m]) for m in ordered_methods(by_method)]
        best = {}
        for metric in METRICS:
            top = max((r.mean[metric] for r in rows), default=None)
            best[metric] = {r.method for r in rows if r.mean[metric] == top}
        baselines = [r for r in rows if not is_uaf(r.method)]
        baseline = (
            max(baselines, key=lambda r: r.mean["sampled/mrr@5"]).method
            if baselines
            else None
        )
        comparisons = {}
        if baseline is not None:
            for row in rows:
                if is_uaf(row.method):
                    comparison = compare(
                        by_method[row.method], by_method[baseline]
                    )
                    if comparison is not None:
                        comparisons[row.method] = comparison
        tables.append(
            FractionTable(
                fraction=fraction,
                rows=rows,
                popularity=_popularity_row(popularity.get(fraction)),
                best=best,
                baseline=baseline,
                comparisons=comparisons,
                missing=[c.name for c in missing if c.fraction == fraction],
            )
        )
    return tables


# Config keys that legitimately differ between the cells of one grid.
_GRID_KEYS = frozenset({"method", "seed", "train_fraction", "run_dir"})


def config_differences(runs: Sequence[Run]) -> dict:
    """`{key: sorted distinct values}` of the runs' `config.json` entries
    that differ beyond the grid's own coordinates (method, seed, train
    fraction): e.g. cells finished under other `--extra_finetune_flags`."""
    values = {}
    for run in runs:
        path = os.path.join(run.run_dir, "config.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            config = json.load(f)
        # Where and how a run started (versions, argv, commit) is not an
        # option of the run.
        config.pop("environment", None)
        config.pop("resume_history", None)
        for key, value in _leaves(config):
            if key not in _GRID_KEYS:
                values.setdefault(key, set()).add(json.dumps(value))
    return {
        key: sorted(json.loads(v) for v in found)
        for key, found in sorted(values.items())
        if len(found) > 1
    }


CPU_NOT_RECORDED = "not recorded"


def run_machines(runs: Sequence[Run]) -> dict:
    """`{CPU model: number of runs}` from the runs' `config.json`
    (`environment.cpu`; `"not recorded"` for runs without it). Runs on
    different CPU models agree only to float tolerance, not bit for bit."""
    counts = {}
    for run in runs:
        path = os.path.join(run.run_dir, "config.json")
        cpu = CPU_NOT_RECORDED
        if os.path.exists(path):
            with open(path) as f:
                cpu = (json.load(f).get("environment") or {}).get("cpu", cpu)
        counts[cpu] = counts.get(cpu, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def _leaves(config: dict):
    """`(key, value)` of a config dict, nested dicts (e.g. `training`)
    flattened to their own keys, as the flags name them."""
    for key, value in config.items():
        if isinstance(value, dict):
            yield from _leaves(value)
        else:
            yield key, value


# === Formatting ===


def _mean_std(row: Row, metric: str) -> str:
    std = row.std[metric]
    text = f"{row.mean[metric]:.4f}"
    return text + (f" ± {std:.4f}" if std is not None else "")


def _p(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _comparison_cell(comparison: Comparison | None, metric: str) -> str:
    if comparison is None:
        return ""
    test = comparison.tests[metric]
    return f"{test.mean_difference:+.4f} (p {_p(test.p_value)})"


def markdown_table(table: FractionTable) -> str:
    """The Markdown table and its note for one training fraction."""
    baseline = label(table.baseline) if table.baseline else "best baseline"
    header = ["Model", *METRICS.values(), "n seeds"]
    header += [f"Δ{name} vs {baseline} (p)" for name in METRICS.values()]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    if table.popularity is not None:
        cells = [f"{table.popularity.mean[m]:.4f}" for m in METRICS]
        lines.append(
            "| " + " | ".join(["Popularity", *cells, "-", "", ""]) + " |"
        )
    for row in table.rows:
        cells = []
        for metric in METRICS:
            text = _mean_std(row, metric)
            if row.method in table.best[metric]:
                text = f"**{text}**"
            cells.append(text)
        comparison = table.comparisons.get(row.method)
        cells.append(str(row.n))
        cells += [_comparison_cell(comparison, m) for m in METRICS]
        lines.append("| " + " | ".join([label(row.method), *cells]) + " |")
    return "\n".join(lines) + "\n\n" + _note(table)


def _note(table: FractionTable) -> str:
    notes = [
        "Test split, sampled protocol (the positive among its stored "
        "candidates); mean ± sample standard deviation (n - 1) over seeds; "
        "the best mean of each column in bold."
    ]
    if table.popularity is not None:
        notes.append(
            "Popularity: target items ranked by their count among the "
            "positives of the same training fraction (one deterministic run)."
        )
    if table.baseline is None:
        notes.append(
            "No baseline (non-UAF method) finished: no significance test."
        )
    elif table.comparisons:
        pairings = {c.pairing for c in table.comparisons.values()}
        n = {c.tests["sampled/mrr@5"].n for c in table.comparisons.values()}
        text = (
            f"Δ: UAF variant minus {label(table.baseline)}, the baseline "
            "with the best mean MRR@5; p: two-sided paired t-test "
            "(Student t via tfp), "
        )
        if pairings == {INSTANCES}:
            text += (
                "paired over the same test instances (per-instance RR@5 "
                f"and HR@5 averaged over seeds; {', '.join(map(str, n))} "
                "instances)."
            )
        else:
            text += (
                "paired over seeds (the per-seed test means of the seeds "
                "both finished), because not every run holds "
                f"{instances.TEST_INSTANCES_FILE}; with "
                f"{', '.join(map(str, sorted(n)))} pairs this test is weak."
            )
        notes.append(text)
        partial = [c for c in table.comparisons.values() if not c.all_seeds]
        if partial:
            notes.append(
                "Δ and p over the seeds both methods finished, where the "
                "rows' means cover more: "
                + "; ".join(
                    f"{label(c.method)}: seed"
                    f"{'s' if len(c.seeds) > 1 else ''} "
                    f"{', '.join(map(str, c.seeds))}"
                    for c in partial
                )
                + "."
            )
    untested = [
        label(r.method)
        for r in table.rows
        if is_uaf(r.method) and r.method not in table.comparisons
    ]
    if table.baseline is not None and untested:
        notes.append(
            f"No seed in common with {label(table.baseline)}, so no test: "
            + ", ".join(untested)
            + "."
        )
    total = sum(r.wall_time_s for r in table.rows)
    runs = sum(r.n for r in table.rows)
    notes.append(
        f"Fine-tuning wall time: {total / 60:.1f} min over {runs} "
        f"run{'' if runs == 1 else 's'} "
        "(sum of their `wall_time_s`)."
    )
    if table.missing:
        notes.append(
            f"Missing ({len(table.missing)} of the grid's cells without "
            "results.json): "
            + ", ".join(f"`{name}`" for name in table.missing)
            + "."
        )
    return "\n".join(f"- {n}" for n in notes)


def csv_report(tables: Sequence[FractionTable]) -> str:
    """All tables as one CSV, one row per (fraction, method)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = ["fraction", "method", "model", "n_seeds", "seeds"]
    for name in METRICS.values():
        columns += [f"{name}_mean", f"{name}_std", f"{name}_best"]
    columns += ["baseline", "pairing", "n_pairs"]
    for name in METRICS.values():
        columns += [f"{name}_diff", f"{name}_p"]
    writer.writerow(columns)

    def fmt(value):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        return repr(value) if isinstance(value, float) else str(value)

    for table in tables:
        rows = ([table.popularity] if table.popularity else []) + table.rows
        for row in rows:
            values = [
                table.fraction,
                row.method,
                label(row.method),
                row.n if row.method != "popularity" else "",
                " ".join(map(str, row.seeds)),
            ]
            for metric in METRICS:
                values += [
                    row.mean[metric],
                    row.std[metric],
                    int(row.method in table.best[metric]),
                ]
            comparison = table.comparisons.get(row.method)
            if comparison is None:
                values += [""] * (3 + 2 * len(METRICS))
            else:
                values += [
                    comparison.baseline,
                    comparison.pairing,
                    comparison.tests["sampled/mrr@5"].n,
                ]
                for metric in METRICS:
                    test = comparison.tests[metric]
                    values += [test.mean_difference, test.p_value]
            writer.writerow([fmt(v) for v in values])
    return out.getvalue()


def pretraining_section(
    pretrained_results: dict | None,
    popularity_results: dict | None,
    backbone: str = "NextItNet",
) -> str:
    """ "Does pretraining learn more than popularity?" as Markdown.

    Args:
        pretrained_results: the pretraining run's `results.json`.
        popularity_results: `launch/popularity_baseline.py --task=pretrain`
            output.
        backbone: the pretrained network's display name.
    """
    keys = ("loss", "full/hr@5", "full/hr@20", "full/mrr@5", "num_examples")
    lines = [
        "| Source-domain model (pretrain/valid) | next-item loss (nats) "
        "| full HR@5 | full HR@20 | full MRR@5 | held-out users |",
        "|---|---|---|---|---|---|",
    ]
    rows = []
    if pretrained_results:
        rows.append(
            (
                f"Pretrained {backbone} (best epoch "
                f"{pretrained_results['best_epoch']})",
                pretrained_results["valid"],
            )
        )
    if popularity_results:
        rows.append(
            ("Popularity (add-one unigram)", popularity_results["valid"])
        )
    if not rows:
        return "No pretraining results found."
    for name, valid in rows:
        cells = [
            f"{valid[k]:.4f}" if k != "num_examples" else str(int(valid[k]))
            for k in keys
        ]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    text = "\n".join(lines)
    if len(rows) == 2:
        model, floor = rows[0][1], rows[1][1]
        gap = floor["loss"] - model["loss"]
        text += (
            f"\n\n- The pretrained model's held-out next-item loss is "
            f"{abs(gap):.3f} nats {'below' if gap > 0 else 'above'} the "
            f"popularity model's ({model['loss']:.3f} vs "
            f"{floor['loss']:.3f}); full HR@20 {model['full/hr@20']:.4f} "
            f"vs {floor['full/hr@20']:.4f}. Both over the same positions, "
            "padding labels excluded, and averaged alike; the pretrained "
            "run's values are those of the epoch selected on this split."
        )
    return text


def markdown_report(
    tables: Sequence[FractionTable],
    *,
    title: str,
    context: Sequence[str] = (),
    pretraining: str = "",
) -> str:
    """The whole `results.md`."""
    parts = [f"# {title}", ""]
    parts += [f"- {line}" for line in context]
    several = len(tables) > 1
    for table in tables:
        layout = "Tables 6-7" if several else "Table 2"
        parts += [
            "",
            f"## Training fraction {grid.format_fraction(table.fraction)} "
            f"(layout of the paper's {layout})",
            "",
            markdown_table(table),
        ]
    if pretraining:
        parts += [
            "",
            "## Does pretraining learn more than popularity?",
            "",
            pretraining,
        ]
    return "\n".join(parts) + "\n"
