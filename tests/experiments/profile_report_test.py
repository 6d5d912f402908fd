"""The profile task's cells and table (paper Table 9), from fake results."""

import csv
import json
import os

import pytest

from uaf_tf.experiments import grid
from uaf_tf.experiments import profile_report


def _spec(out_dir, **overrides):
    kwargs = dict(
        data_dir="data",
        out_dir=str(out_dir),
        methods=("soft", "finetune-all"),
        seeds=(0, 1),
        pretrained="pre",
        finetune_flagfile="profile.cfg",
        extra_finetune_flags=("--epochs=1",),
        task=grid.PROFILE,
        profile_label="age",
        profile_script="profile.py",
    )
    kwargs.update(overrides)
    return grid.GridSpec(**kwargs)


def test_plan_has_one_profile_cell_per_seed_and_method(tmp_path):
    spec = _spec(tmp_path, pretrained=None, pretrain_flagfile="pre.cfg")
    cells = grid.plan(spec)
    assert [c.name for c in cells] == [
        "pretrain",
        "profile/age/soft/seed0",
        "profile/age/finetune-all/seed0",
        "profile/age/soft/seed1",
        "profile/age/finetune-all/seed1",
    ]
    cell = cells[1]
    assert (cell.kind, cell.method, cell.seed) == (grid.PROFILE, "soft", 0)
    assert cell.depends_on == ("pretrain",)
    assert cell.argv[1:] == (
        "profile.py",
        "--flagfile=profile.cfg",
        "--method=soft",
        "--seed=0",
        "--profile_label=age",
        "--data_dir=data",
        f"--pretrained={tmp_path / 'pretrain'}",
        f"--run_dir={tmp_path / 'profile/age/soft/seed0'}",
        "--epochs=1",
    )
    # No popularity cells, whatever `popularity` says.
    assert all(c.kind != grid.POPULARITY for c in cells)
    with pytest.raises(ValueError, match="Received: task='ranking'"):
        _spec(tmp_path, task="ranking")


def _write_results(cell, accuracy, macro_f1, majority=(0.6, 0.375)):
    os.makedirs(cell.run_dir, exist_ok=True)
    results = {
        "test": {
            "accuracy": accuracy,
            "macro_f1": macro_f1,
            "majority/accuracy": majority[0],
            "majority/macro_f1": majority[1],
            "policy/mean_finetuned_blocks": 2.0 * cell.seed,
            "num_examples": 10.0,
        },
        "profile": {
            "label": "age",
            "class_names": ["0-17", "18-24", "25-34"],
            "users": {"train": 80, "valid": 10, "test": 10},
            "majority_class": "18-24",
            "skipped_users": 1,
            "split_seed": 0,
        },
    }
    with open(cell.output, "w") as f:
        json.dump(results, f)


def test_table_has_mean_std_per_method_and_the_majority_row(tmp_path):
    spec = _spec(tmp_path)
    cells = {c.name: c for c in grid.plan(spec)}
    _write_results(cells["profile/age/soft/seed0"], 0.7, 0.5)
    _write_results(cells["profile/age/soft/seed1"], 0.8, 0.6)
    _write_results(cells["profile/age/finetune-all/seed0"], 0.65, 0.4)

    md_path, csv_path, missing = profile_report.write_profile_report(
        spec, command="python launch/reproduce.py --task=profile"
    )

    assert missing == ["profile/age/finetune-all/seed1"]
    with open(csv_path) as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    # Paper order: baselines first, then UAF, then the majority class.
    assert list(rows) == ["finetune-all", "soft", "majority"]
    soft = rows["soft"]
    assert float(soft["accuracy_mean"]) == pytest.approx(0.75)
    # Sample std of (0.7, 0.8) and of (0.5, 0.6): 0.1 / sqrt(2).
    assert float(soft["accuracy_std"]) == pytest.approx(0.1 / 2**0.5)
    assert float(soft["macro_f1_std"]) == pytest.approx(0.1 / 2**0.5)
    assert (soft["n_seeds"], soft["seeds"]) == ("2", "0 1")
    assert float(soft["mean_finetuned_blocks"]) == 1.0
    assert rows["finetune-all"]["accuracy_std"] == ""
    assert float(rows["majority"]["accuracy_mean"]) == 0.6
    assert float(rows["majority"]["macro_f1_mean"]) == 0.375
    with open(md_path) as f:
        markdown = f.read()
    assert md_path.endswith("profile_age.md")
    assert "| UAF-Soft | 0.7500 ± 0.0707 | 0.5500 ± 0.0707 | 2 | 1.00 |" in (
        markdown
    )
    assert "| Majority class | 0.6000 | 0.3750 | - |  |" in markdown
    assert "Finished runs: 3 of 4." in markdown
    assert "majority class `18-24`" in markdown
    assert "Warning" not in markdown


def test_a_run_with_another_majority_is_flagged(tmp_path):
    spec = _spec(tmp_path, seeds=(0,))
    cells = {c.name: c for c in grid.plan(spec)}
    _write_results(cells["profile/age/soft/seed0"], 0.7, 0.5)
    _write_results(
        cells["profile/age/finetune-all/seed0"], 0.7, 0.5, majority=(0.5, 0.3)
    )
    warnings = []
    md_path, _, _ = profile_report.write_profile_report(
        spec, echo=warnings.append
    )
    assert len(warnings) == 1 and "finetune-all seed 0" in warnings[0]


def test_report_without_finished_runs_says_so(tmp_path):
    md_path, csv_path, missing = profile_report.write_profile_report(
        _spec(tmp_path)
    )
    assert len(missing) == 4
    with open(md_path) as f:
        assert "No profile run has finished yet." in f.read()
    with open(csv_path) as f:
        assert len(f.read().splitlines()) == 1  # The header.
