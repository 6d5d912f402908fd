"""Result tables from planted results.json files: exact means, stds, bold."""

import csv
import dataclasses
import io
import json
import math
import os

import pytest

from uaf_tf.experiments import grid
from uaf_tf.experiments import instances
from uaf_tf.experiments import report

# method -> (MRR@5 per seed, HR@5 per seed); soft's seed 2 never finished.
PLANTED = {
    "finetune-all": ([0.10, 0.12, 0.14], [0.30, 0.30, 0.30]),
    "gumbel": ([0.13, 0.16, 0.17], [0.35, 0.36, 0.37]),
    "soft": ([0.20, 0.12], [0.20, 0.20]),
}


def _spec(out_dir, **overrides):
    kwargs = dict(
        data_dir="data",
        out_dir=str(out_dir),
        methods=("gumbel", "soft", "finetune-all"),
        seeds=(0, 1, 2),
        pretrained="pre",
    )
    kwargs.update(overrides)
    return grid.GridSpec(**kwargs)


def _write_results(cell, mrr, hr, wall_time_s=60.0):
    os.makedirs(cell.run_dir, exist_ok=True)
    results = {
        "test": {"sampled/mrr@5": mrr, "sampled/hr@5": hr},
        "wall_time_s": wall_time_s,
        "history": [],
    }
    with open(cell.output, "w") as f:
        json.dump(results, f)


@pytest.fixture
def planted(tmp_path):
    cells = grid.plan(_spec(tmp_path, popularity=False))
    for cell in cells:
        mrrs, hrs = PLANTED[cell.method]
        if cell.seed < len(mrrs):
            _write_results(cell, mrrs[cell.seed], hrs[cell.seed])
    return cells


def test_table_values(planted):
    runs, missing = report.load_runs(planted)
    assert [c.name for c in missing] == ["runs/soft/frac1.0/seed2"]
    popularity = {1.0: {"test": {"sampled/mrr@5": 0.5, "sampled/hr@5": 0.1}}}

    (table,) = report.fraction_tables(runs, missing, [1.0], popularity)

    assert [r.method for r in table.rows] == ["finetune-all", "gumbel", "soft"]
    assert table.baseline == "finetune-all"
    # Popularity is higher but is a floor, never bold.
    assert table.best == {"sampled/mrr@5": {"soft"}, "sampled/hr@5": {"gumbel"}}
    lines = report.markdown_table(table).splitlines()
    assert lines[2] == "| Popularity | 0.5000 | 0.1000 | - |  |  |"
    # finetune-all: MRR 0.12 +- 0.02 (deviations -0.02, 0, 0.02 over n - 1
    # = 2); HR constant.
    assert lines[3] == (
        "| Finetune-All | 0.1200 ± 0.0200 | 0.3000 ± 0.0000 | 3 |  |  |"
    )
    # gumbel: MRR mean 0.46 / 3 = 0.15333, std sqrt(0.0008667 / 2) =
    # 0.02082; d = (0.03, 0.04, 0.03): mean 0.03333, sd 0.005774, t = 10,
    # 2 degrees of freedom: p = 1 - 10 / sqrt(102) = 0.00985.
    # HR: d = (0.05, 0.06, 0.07): mean 0.06, sd 0.01, t = 6 sqrt(3) = 10.39,
    # p = 1 - t / sqrt(t^2 + 2) = 0.00913.
    assert lines[4] == (
        "| UAF-Gumbel | 0.1533 ± 0.0208 | **0.3600 ± 0.0100** | 3 "
        "| +0.0333 (p 0.010) | +0.0600 (p 0.009) |"
    )
    # soft (seeds 0, 1): MRR 0.16 +- 0.08 / sqrt 2 = 0.05657; paired on
    # the seeds both finished: d = (0.10, 0.00), t = 1 with 1 degree of
    # freedom, p = 0.5 (Cauchy); HR d = (-0.1, -0.1) has sd 0: p = 0.
    assert lines[5] == (
        "| UAF-Soft | **0.1600 ± 0.0566** | 0.2000 ± 0.0000 | 2 "
        "| +0.0500 (p 0.500) | -0.1000 (p 0) |"
    )
    assert table.comparisons["soft"].pairing == report.SEEDS
    gumbel_test = table.comparisons["gumbel"].tests["sampled/mrr@5"]
    assert gumbel_test.p_value == pytest.approx(1 - 10 / math.sqrt(102))
    note = "\n".join(lines[6:])
    assert "paired over seeds" in note
    assert "`runs/soft/frac1.0/seed2`" in note
    # 8 runs of 60 s each.
    assert "8.0 min over 8 runs" in note


def test_csv(planted):
    runs, missing = report.load_runs(planted)
    tables = report.fraction_tables(runs, missing, [1.0])
    rows = list(csv.DictReader(io.StringIO(report.csv_report(tables))))
    assert [r["method"] for r in rows] == ["finetune-all", "gumbel", "soft"]
    soft = rows[2]
    assert soft["model"] == "UAF-Soft"
    assert soft["seeds"] == "0 1"
    assert float(soft["MRR@5_mean"]) == pytest.approx(0.16)
    assert float(soft["MRR@5_std"]) == pytest.approx(0.08 / math.sqrt(2))
    assert soft["MRR@5_best"] == "1" and soft["HR@5_best"] == "0"
    assert soft["baseline"] == "finetune-all" and soft["n_pairs"] == "2"
    assert float(soft["MRR@5_p"]) == pytest.approx(0.5)
    assert rows[0]["baseline"] == ""  # Baselines are not tested.


def test_no_baseline_no_test(planted):
    runs, missing = report.load_runs(planted)
    runs = [r for r in runs if r.method != "finetune-all"]
    (table,) = report.fraction_tables(runs, [], [1.0])
    assert table.baseline is None and not table.comparisons
    assert "No baseline" in report.markdown_table(table)


def _write_instances(run, sampled_ranks):
    # 1-based ranks on disk; the writer takes the 0-based ones.
    instances.write_test_instances(
        run.run_dir,
        index=list(range(len(sampled_ranks))),
        user=[f"u{i}" for i in range(len(sampled_ranks))],
        sampled_rank=[r - 1 for r in sampled_ranks],
        full_rank=[10 * r for r in sampled_ranks],
    )


def _gumbel_and_baseline_with_instances(planted):
    """The planted UAF-Gumbel and Finetune-All runs, 3 seeds each, with
    per-instance ranks written."""
    runs, _ = report.load_runs(planted)
    gumbel = [r for r in runs if r.method == "gumbel"]
    baseline = [r for r in runs if r.method == "finetune-all"]
    # Ranks per instance (1-based) of the 3 seeds of each method.
    for run, ranks in zip(gumbel, ([1, 2, 6], [1, 4, 6], [1, 2, 6])):
        _write_instances(run, ranks)
    for run, ranks in zip(baseline, ([2, 2, 1], [2, 2, 1], [2, 6, 1])):
        _write_instances(run, ranks)
    return gumbel, baseline


def test_pairs_over_instances_when_every_run_has_them(planted):
    gumbel, baseline = _gumbel_and_baseline_with_instances(planted)

    comparison = report.compare(gumbel, baseline)

    assert comparison.pairing == report.INSTANCES
    # Seed-averaged RR@5 per instance: gumbel (1, (1/2 + 1/4 + 1/2) / 3,
    # 0) = (1, 5/12, 0); baseline (1/2, 1/3, 1). d = (1/2, 1/12, -1).
    test = comparison.tests["sampled/mrr@5"]
    assert test.n == 3
    assert test.mean_difference == pytest.approx((1 / 2 + 1 / 12 - 1) / 3)
    # HR@5: gumbel (1, 1, 0), baseline (1, 2/3, 1): d = (0, 1/3, -1).
    hr = comparison.tests["sampled/hr@5"]
    assert hr.mean_difference == pytest.approx((1 / 3 - 1) / 3)

    os.remove(os.path.join(gumbel[1].run_dir, "test_instances.tsv"))
    assert report.compare(gumbel, baseline).pairing == report.SEEDS


def test_a_method_with_fewer_seeds_is_compared_on_those_seeds(planted):
    gumbel, baseline = _gumbel_and_baseline_with_instances(planted)
    seed0 = [r for r in gumbel if r.seed == 0]

    comparison = report.compare(seed0, baseline)

    # Seed 0 against the baseline's seed 0 alone: RR@5 (1, 1/2, 0) against
    # (1/2, 1/2, 1), d = (1/2, 0, -1); over all three baseline seeds it
    # would be (1/2, 1/2 - 1/3, -1).
    assert comparison.seeds == [0] and not comparison.all_seeds
    test = comparison.tests["sampled/mrr@5"]
    assert test.mean_difference == pytest.approx((1 / 2 + 0 - 1) / 3)
    assert report.compare(gumbel, baseline).all_seeds
    elsewhere = [dataclasses.replace(r, seed=7) for r in seed0]
    assert report.compare(elsewhere, baseline) is None

    tables = report.fraction_tables(seed0 + baseline, [], [1.0])
    markdown = report.markdown_table(tables[0])
    assert (
        "Δ and p over the seeds both methods finished, where the rows' "
        "means cover more: UAF-Gumbel: seed 0."
    ) in markdown

    tables = report.fraction_tables(elsewhere + baseline, [], [1.0])
    assert tables[0].comparisons == {}
    assert (
        "No seed in common with Finetune-All, so no test: UAF-Gumbel."
    ) in report.markdown_table(tables[0])


def test_pretraining_section_reports_the_gap():
    pretrained = {
        "best_epoch": 9,
        "valid": {
            "loss": 6.25,
            "full/hr@5": 0.02,
            "full/hr@20": 0.125,
            "full/mrr@5": 0.0053,
            "num_examples": 47,
        },
    }
    popularity = {
        "valid": {
            "loss": 6.5,
            "full/hr@5": 0.01,
            "full/hr@20": 0.1,
            "full/mrr@5": 0.004,
            "num_examples": 47,
        }
    }
    text = report.pretraining_section(pretrained, popularity)
    lines = text.splitlines()
    assert lines[2] == (
        "| Pretrained NextItNet (best epoch 9) | 6.2500 | 0.0200 | 0.1250 "
        "| 0.0053 | 47 |"
    )
    assert "0.250 nats below the popularity model's" in text


def test_order_and_labels():
    assert report.ordered_methods(
        ["soft", "x", "peterrec", "finetune-zero"]
    ) == [
        "finetune-zero",
        "peterrec",
        "soft",
        "x",
    ]
    assert report.label("rl") == "UAF-RL" and report.label("x") == "x"
    assert report.is_uaf("random") and report.is_uaf("random-fixed")
    assert not report.is_uaf("finetune-all") and not report.is_uaf("peterrec")


def test_config_differences(planted):
    runs, _ = report.load_runs(planted)
    for run in runs:
        # Nested like the configs' `training` field: its seed is a grid
        # coordinate, its epochs a difference.
        training = {"seed": run.seed, "learning_rate": 0.001}
        training["epochs"] = 1 if run.method == "soft" else 15
        config = {"method": run.method, "training": training}
        with open(os.path.join(run.run_dir, "config.json"), "w") as f:
            json.dump(config, f)
    assert report.config_differences(runs) == {"epochs": [1, 15]}


def test_run_machines_counts_the_cpu_models(planted):
    runs, _ = report.load_runs(planted)
    for i, run in enumerate(runs[1:]):
        cpu = "Intel(R) Xeon(R) Processor" if i % 2 else "AMD EPYC"
        config = {"method": run.method, "environment": {"cpu": cpu}}
        with open(os.path.join(run.run_dir, "config.json"), "w") as f:
            json.dump(config, f)
    machines = report.run_machines(runs)
    assert sum(machines.values()) == len(runs)
    assert machines["not recorded"] == 1  # runs[0] has no config.json.
    assert machines["AMD EPYC"] == (len(runs) - 1 + 1) // 2
    # The environment is not an option: no config difference.
    assert report.config_differences(runs) == {}
