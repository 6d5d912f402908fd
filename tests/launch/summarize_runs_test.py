"""summarize_runs reads pretraining and fine-tuning run directories."""

import json
import math

from launch import summarize_runs


def _run(tmp_path, name, config, results):
    run_dir = tmp_path / name
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "results.json").write_text(json.dumps(results))
    return str(run_dir)


def _finetune(tmp_path, name, method, seed, mrr5, lr=1e-3, hr10=None):
    test = {
        "sampled/mrr@5": mrr5,
        "sampled/mrr@20": mrr5 + 0.125,
        "sampled/hr@5": 0.34614,
        "full/hr@20": 0.1748,
        "policy/block_1": 0.5,
        "policy/block_0": 0.25,
    }
    if hr10 is not None:
        test["sampled/hr@10"] = hr10
    return _run(
        tmp_path,
        name,
        {
            "task": "finetune",
            "method": method,
            "environment": {"argv": [name]},  # differs, is no setting
            "training": {"seed": seed, "learning_rate": lr},
        },
        {
            "best_epoch": 3,
            "train_examples_per_sec": 1234.4,
            "valid": {},
            "test": test,
        },
    )


def test_one_row_per_run_of_both_kinds(tmp_path):
    pretrain = _run(
        tmp_path,
        "pre",
        {
            "task": "pretrain",
            "dataset_name": "ml",
            "training": {"seed": 0, "learning_rate": 0.001},
        },
        {
            "best_epoch": 3,
            "train_examples_per_sec": 1234.4,
            "test": None,
            "valid": {
                "loss": 6.5,
                "full/hr@5": 0.02,
                "full/hr@10": 0.0625,
                "full/hr@20": 0.125,
                "full/mrr@5": 0.005,
                "num_examples": 47,
            },
        },
    )
    finetune = _finetune(tmp_path, "ft", "gumbel", 1, 0.18614, hr10=0.5)

    lines = summarize_runs.table([finetune, pretrain]).splitlines()

    assert lines[0].startswith(
        "| pretrain run | dataset | seed | learning rate | valid loss "
        "| valid full HR@5 | valid full HR@10 | valid full HR@20 "
        "| valid full MRR@5 | valid full MRR@10 |"
    )
    # Missing metrics (MRR@10, MRR@20 here) show as "-".
    assert lines[2] == (
        f"| {pretrain} | ml | 0 | 0.001 | 6.5000 | 0.0200 | 0.0625 "
        "| 0.1250 | 0.0050 | - | - | 47 | 3 | 1234 |"
    )
    # Then the pretraining setting's mean over its one seed.
    assert lines[6] == (
        "| ml | 1 | 0 | 6.5000 | 0.0200 | 0.0625 | 0.1250 | 0.0050 | - | - |"
    )
    finetune_header = lines[8].split(" | ")
    assert finetune_header[4:10] == [
        "test sampled MRR@5",
        "test sampled MRR@10",
        "test sampled MRR@20",
        "test sampled HR@5",
        "test sampled HR@10",
        "test sampled HR@20",
    ]
    assert lines[10] == (
        f"| {finetune} | gumbel | 1 | 0.001 | 0.1861 | - | 0.3111 | 0.3461 "
        "| 0.5000 | - | - | 0.1748 | 0.25 0.50 | 3 | 1234 |"
    )


def test_means_over_seeds_per_setting(tmp_path):
    runs = [
        _finetune(tmp_path, "g0", "gumbel", 0, 0.25),
        _finetune(tmp_path, "g1", "gumbel", 1, 0.5),
        _finetune(tmp_path, "g2", "gumbel", 2, 0.75),
        _finetune(tmp_path, "s0", "soft", 0, 0.125),
        _finetune(tmp_path, "g0-lr", "gumbel", 0, 0.5, lr=0.01),
    ]
    text = summarize_runs.table(runs)
    averages = text.split("\n\n")[1].splitlines()
    assert averages[0].startswith(
        "| finetune setting | n | seeds | test sampled MRR@5 |"
    )
    # Settings differ in method and learning rate: both name them.
    names = [line.split(" | ")[0][2:] for line in averages[2:]]
    assert names == [
        "gumbel, learning_rate=0.001",
        "soft, learning_rate=0.001",
        "gumbel, learning_rate=0.01",
    ]
    gumbel = averages[2].split(" | ")
    assert gumbel[1:3] == ["3", "0,1,2"]
    # Mean 0.5; sample std of (0.25, 0.5, 0.75) = 0.25.
    std = math.sqrt((0.25**2 + 0 + 0.25**2) / 2)
    assert gumbel[3] == f"0.5000 +- {std:.4f}" == "0.5000 +- 0.2500"
    assert averages[3].split(" | ")[1:4] == ["1", "0", "0.1250"]


def test_mean_std():
    assert summarize_runs.mean_std([]) == "-"
    assert summarize_runs.mean_std([0.5]) == "0.5000"
    assert summarize_runs.mean_std([1.0, 2.0]) == "1.5000 +- 0.7071"
