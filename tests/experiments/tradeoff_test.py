"""The UAF-RL reward sweep: cells, resumption and the trade-off table."""

import csv
import os
import sys
import textwrap

import numpy as np
import pytest

from uaf_tf.experiments import grid
from uaf_tf.experiments import tradeoff

# A stand-in for launch/finetune.py: test metrics planted from the flags,
# MRR@5 = 0.2 - 0.02 w + 0.01 seed, fine-tuned blocks = 4 / (1 + w) * gamma
# / 2, so each number the report prints can be derived here.
FAKE_FINETUNE = textwrap.dedent(
    """
    import json, os, sys
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if "=" in a)
    w, gamma = float(args["rl_cost_weight"]), float(args["gamma"])
    seed = int(args["seed"])
    assert args["method"] == "rl"
    os.makedirs(args["run_dir"], exist_ok=True)
    blocks = 4 / (1 + w) * gamma / 2
    test = {
        "sampled/mrr@5": 0.2 - 0.02 * w + 0.01 * seed,
        "sampled/hr@5": 0.4,
        "full/hr@20": 0.1,
        "policy/mean_finetuned_blocks": blocks,
        "policy/block_0": blocks / 4,
        "policy/block_1": blocks / 4,
    }
    with open(os.path.join(args["run_dir"], "results.json"), "w") as f:
        json.dump({"test": test, "valid": {}}, f)
    """
)


def _plan(tmp_path, seeds=(0, 1)):
    script = tmp_path / "fake_finetune.py"
    script.write_text(FAKE_FINETUNE)
    sweep = tradeoff.settings([0, 1], [1, 2])
    cells = tradeoff.plan(
        data_dir="data",
        pretrained="pre",
        out_dir=str(tmp_path / "out"),
        sweep=sweep,
        seeds=seeds,
        finetune_script=str(script),
        python=sys.executable,
    )
    return sweep, cells


def test_settings_are_the_cross_product_and_validated():
    sweep = tradeoff.settings([0, 0.5], [1])
    assert [s.name for s in sweep] == ["w0_gamma1", "w0.5_gamma1"]
    with pytest.raises(ValueError, match="without repeats"):
        tradeoff.settings([1, 1], [1])
    with pytest.raises(ValueError, match="Gammas must be > 0"):
        tradeoff.settings([1], [0])
    with pytest.raises(ValueError, match="Cost weights must be >= 0"):
        tradeoff.settings([-1], [1])


def test_explicit_settings_keep_their_order():
    sweep = tradeoff.parse_settings(["2:1", "0:1", "1:0.5"])
    assert [s.name for s in sweep] == ["w2_gamma1", "w0_gamma1", "w1_gamma0.5"]
    with pytest.raises(ValueError, match="must be `w:gamma`"):
        tradeoff.parse_settings(["1"])
    with pytest.raises(ValueError, match="repeat"):
        tradeoff.parse_settings(["1:1", "1.0:1"])
    with pytest.raises(ValueError, match="Gammas must be > 0"):
        tradeoff.parse_settings(["1:-1"])


def test_cells_pass_the_reward_flags(tmp_path):
    sweep, cells = _plan(tmp_path)
    assert len(cells) == 8  # 2 seeds x 4 settings, seed outer.
    assert [c.seed for c in cells] == [0] * 4 + [1] * 4
    first = cells[1]
    assert first.method == "w0_gamma2"
    assert "--rl_cost_weight=0.0" in first.argv
    assert "--gamma=2.0" in first.argv
    assert "--method=rl" in first.argv
    assert first.run_dir.endswith(os.path.join("runs", "w0_gamma2", "seed0"))


def test_sweep_report_averages_seeds_and_resumes(tmp_path):
    sweep, cells = _plan(tmp_path)
    out_dir = str(tmp_path / "out")
    outcomes = grid.run_cells(cells, out_dir, echo=lambda line: None)
    assert [o.status for o in outcomes] == ["ok"] * 8
    rows = tradeoff.write_report(cells, sweep, out_dir, plots=True)
    pytest.importorskip("matplotlib")
    assert os.path.getsize(os.path.join(out_dir, tradeoff.TRADEOFF_PNG)) > 0
    assert [r.setting.name for r in rows] == [s.name for s in sweep]
    for row in rows:
        w, gamma = row.setting.cost_weight, row.setting.gamma
        mrr = [0.2 - 0.02 * w + 0.01 * s for s in (0, 1)]
        np.testing.assert_allclose(row.mean["sampled/mrr@5"], np.mean(mrr))
        np.testing.assert_allclose(
            row.std["sampled/mrr@5"], np.std(mrr, ddof=1)
        )
        blocks = 4 / (1 + w) * gamma / 2
        np.testing.assert_allclose(
            row.mean["policy/mean_finetuned_blocks"], blocks
        )
        np.testing.assert_allclose(row.block_utilisation, [blocks / 4] * 2)
    with open(os.path.join(out_dir, tradeoff.TRADEOFF_CSV)) as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4
    assert float(table[3]["w"]) == 1 and float(table[3]["gamma"]) == 2
    np.testing.assert_allclose(
        float(table[3]["policy/mean_finetuned_blocks_mean"]), 2.0
    )
    text = open(os.path.join(out_dir, tradeoff.TRADEOFF_MD)).read()
    assert "| 1 | 2 | 2 | 0.1850 ± 0.0071 |" in text
    assert "Not finished" not in text
    # Everything is done: a rerun starts nothing.
    again = grid.run_cells(cells, out_dir, echo=lambda line: None)
    assert {o.status for o in again} == {"skipped"}


def test_report_names_unfinished_cells(tmp_path):
    sweep, cells = _plan(tmp_path, seeds=(0,))
    out_dir = str(tmp_path / "out")
    grid.run_cells(cells[:1], out_dir, echo=lambda line: None)
    rows = tradeoff.write_report(cells, sweep, out_dir, plots=False)
    assert len(rows) == 1 and rows[0].seeds == (0,)
    text = open(os.path.join(out_dir, tradeoff.TRADEOFF_MD)).read()
    assert "Not finished yet (3)" in text
    assert "| 0 | 1 | 1 | 0.2000 |" in text
