"""summarize_runs reads pretraining and fine-tuning run directories."""

import json

from launch import summarize_runs


def _run(tmp_path, name, config, results):
    run_dir = tmp_path / name
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "results.json").write_text(json.dumps(results))
    return str(run_dir)


def test_table_of_both_kinds(tmp_path):
    common = {"best_epoch": 3, "train_examples_per_sec": 1234.4}
    pretrain = _run(
        tmp_path,
        "pre",
        {"task": "pretrain", "dataset_name": "ml"},
        {
            **common,
            "test": None,
            "valid": {
                "loss": 6.5,
                "full/hr@5": 0.02,
                "full/hr@20": 0.125,
                "full/mrr@5": 0.005,
                "num_examples": 47,
            },
        },
    )
    test = {
        "sampled/mrr@5": 0.18614,
        "sampled/hr@5": 0.34614,
        "full/hr@20": 0.1748,
        "policy/block_1": 0.5,
        "policy/block_0": 0.25,
    }
    finetune = _run(
        tmp_path,
        "ft",
        {"task": "finetune", "method": "gumbel"},
        {**common, "valid": {}, "test": test},
    )

    lines = summarize_runs.table([finetune, pretrain]).splitlines()

    assert lines[2] == (
        f"| {pretrain} | ml | 6.5000 | 0.0200 | 0.1250 | 0.0050 | 47 | 3 "
        "| 1234 |"
    )
    assert lines[3] == ""
    assert lines[6] == (
        "| gumbel | 0.1861 | 0.3461 | 0.1748 | 0.25 0.50 | 3 | 1234 |"
    )
    assert len(lines) == 7
