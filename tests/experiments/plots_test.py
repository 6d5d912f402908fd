"""Figure data from planted histories, and the PNGs they draw."""

import os

import numpy as np
import pytest

from uaf_tf.experiments import plots
from uaf_tf.experiments import report


def _run(method, seed, curve, blocks=None, fraction=1.0):
    test = {"sampled/mrr@5": curve[-1]}
    for block, value in enumerate(blocks or []):
        test[f"policy/block_{block}"] = value
    history = [
        {"epoch": e + 1, "valid": {"sampled/mrr@5": v}}
        for e, v in enumerate(curve)
    ]
    return report.Run(
        method,
        fraction,
        seed,
        f"/runs/{method}/{seed}",
        {"test": test, "history": history},
    )


RUNS = [
    _run("gumbel", 0, [0.1, 0.2, 0.3], [0.0, 1.0]),
    # Seed 1 stopped after 2 epochs (e.g. a shorter run).
    _run("gumbel", 1, [0.2, 0.4], [0.5, 0.5]),
    _run("finetune-all", 0, [0.3, 0.1]),
    _run("gumbel", 0, [0.9], [1.0, 1.0], fraction=0.5),
]


def test_learning_curves_average_the_seeds_that_reached_each_epoch():
    curves = plots.learning_curves(RUNS, 1.0)
    assert list(curves) == ["finetune-all", "gumbel"]  # Paper order.
    epochs, values, seeds = curves["gumbel"]
    np.testing.assert_array_equal(epochs, [1, 2, 3])
    np.testing.assert_allclose(values, [0.15, 0.3, 0.3])
    np.testing.assert_array_equal(seeds, [2, 2, 1])


def test_block_utilisation_is_the_seed_mean_of_uaf_methods_only():
    utilisation = plots.block_utilisation(RUNS, 1.0)
    assert list(utilisation) == ["gumbel"]
    np.testing.assert_allclose(utilisation["gumbel"], [0.25, 0.75])
    np.testing.assert_allclose(
        plots.block_utilisation(RUNS, 0.5)["gumbel"], [1.0, 1.0]
    )


def test_pngs_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    curves = str(tmp_path / "curves.png")
    blocks = str(tmp_path / "blocks.png")
    plots.plot_learning_curves(
        plots.learning_curves(RUNS, 1.0), curves, title="t"
    )
    plots.plot_block_utilisation(
        plots.block_utilisation(RUNS, 1.0), blocks, title="t"
    )
    for path in (curves, blocks):
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(path) > 1000
