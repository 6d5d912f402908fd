"""The paper's figures from run directories, as PNG files.

- Learning curves (paper Fig. 5): validation sampled MRR@5 per epoch, one
  line per method, the mean over the seeds that reached that epoch.
- Block utilisation (paper Fig. 3): the fraction of test users whose policy
  fine-tunes each residual block, one row per UAF method (mean over seeds).

The data functions need NumPy only; drawing needs matplotlib, imported
lazily (the optional `plots` extra: `pip install matplotlib`).
"""

from collections.abc import Sequence

import numpy as np

from uaf_tf.experiments import report

CURVE_METRIC = "sampled/mrr@5"


def learning_curves(
    runs: Sequence[report.Run], fraction: float, metric: str = CURVE_METRIC
) -> dict:
    """`{method: (epochs [E], mean [E], seeds [E])}` of `history[*].valid`.

    Epoch e's value is the mean of `metric` over the runs that have an
    entry for epoch e (`seeds` counts them), in the paper's method order.
    """
    per_method = {}
    for run in runs:
        if run.fraction != fraction:
            continue
        for entry in run.results.get("history") or []:
            valid = entry.get("valid") or {}
            if metric in valid:
                per_method.setdefault(run.method, {}).setdefault(
                    int(entry["epoch"]), []
                ).append(float(valid[metric]))
    curves = {}
    for method in report.ordered_methods(list(per_method)):
        by_epoch = per_method[method]
        epochs = sorted(by_epoch)
        curves[method] = (
            np.array(epochs),
            np.array([np.mean(by_epoch[e]) for e in epochs]),
            np.array([len(by_epoch[e]) for e in epochs]),
        )
    return curves


def block_utilisation(runs: Sequence[report.Run], fraction: float) -> dict:
    """`{method: [N] mean test policy/block_<l> over seeds}`, UAF methods.

    Runs without `policy/block_*` test metrics are left out.
    """
    per_method = {}
    for run in runs:
        if run.fraction != fraction or not report.is_uaf(run.method):
            continue
        test = run.results.get("test") or {}
        keys = sorted(
            (k for k in test if k.startswith("policy/block_")),
            key=lambda k: int(k.rsplit("_", 1)[1]),
        )
        if keys:
            per_method.setdefault(run.method, []).append(
                [float(test[k]) for k in keys]
            )
    return {
        method: np.mean(np.array(per_method[method]), axis=0)
        for method in report.ordered_methods(list(per_method))
    }


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "Plots need matplotlib: `pip install matplotlib` (or the "
            "`plots` extra of uaf-tf)."
        ) from error
    matplotlib.use("Agg")  # Files only; no display.
    from matplotlib import pyplot

    return pyplot


def plot_learning_curves(
    curves: dict, path: str, *, title: str, metric: str = CURVE_METRIC
) -> str:
    """Draws `learning_curves(...)` into the PNG `path`."""
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    for method, (epochs, values, seeds) in curves.items():
        axes.plot(
            epochs,
            values,
            marker="o",
            markersize=3,
            label=f"{report.label(method)} (n={int(seeds.max())})",
        )
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(
        pyplot.matplotlib.ticker.MaxNLocator(integer=True)
    )
    axes.set_ylabel(f"validation {metric} (mean over seeds)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if curves:
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return path


def plot_block_utilisation(utilisation: dict, path: str, *, title: str) -> str:
    """Draws `block_utilisation(...)` as a heat map (Fig. 3) into `path`."""
    pyplot = _pyplot()
    methods = list(utilisation)
    num_blocks = max((len(v) for v in utilisation.values()), default=0)
    grid = np.full([len(methods), num_blocks], np.nan)
    for row, method in enumerate(methods):
        grid[row, : len(utilisation[method])] = utilisation[method]
    figure, axes = pyplot.subplots(
        figsize=(
            max(6.0, 2.5 + 0.7 * num_blocks),
            max(3.0, 1.8 + 0.5 * len(methods)),
        )
    )
    image = axes.imshow(
        grid if methods else np.zeros([1, 1]),
        vmin=0.0,
        vmax=1.0,
        cmap="viridis",
        aspect="auto",
    )
    for row in range(len(methods)):
        for column in range(num_blocks):
            if not np.isnan(grid[row, column]):
                axes.text(
                    column,
                    row,
                    f"{grid[row, column]:.2f}",
                    ha="center",
                    va="center",
                    color="white" if grid[row, column] < 0.6 else "black",
                    fontsize="small",
                )
    axes.set_xticks(range(num_blocks), [str(b + 1) for b in range(num_blocks)])
    axes.set_yticks(range(len(methods)), [report.label(m) for m in methods])
    axes.set_xlabel("residual block")
    axes.set_title(title, fontsize="medium")
    colour_bar = figure.colorbar(image, ax=axes)
    colour_bar.set_label("fraction of test users\nfine-tuning the block")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return path
