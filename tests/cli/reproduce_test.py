"""`uaf-reproduce` (uaf_tf.cli.reproduce) end to end on tiny synthetic data."""

import csv
import json
import os

import pytest
from absl import flags

from uaf_tf import errors
from uaf_tf import testing
from uaf_tf.cli import reproduce


def _flag_values(argv):
    fv = flags.FlagValues()
    reproduce.define_flags(fv)
    fv(["reproduce.py", *argv])
    return fv


def test_every_flag_has_help():
    fv = flags.FlagValues()
    reproduce.define_flags(fv)
    for name in fv:
        assert fv[name].help, name


def test_end_to_end_then_rerun_skips(tmp_path, capsys):
    data_dir = testing.build_tiny_dataset_dir(str(tmp_path / "data"))
    pretrain_cfg = tmp_path / "pretrain.cfg"
    pretrain_cfg.write_text(
        "--channels=8\n--dilations=1,2\n--batch_size=64\n--epochs=1\n"
        "--log_every_steps=0\n--jit_compile=false\n"
    )
    out_dir = str(tmp_path / "out")
    archive_dir = tmp_path / "archive"
    argv = [
        f"--data_dir={data_dir}",
        f"--pretrain_flagfile={pretrain_cfg}",
        f"--archive_dir={archive_dir}",
        # A UAF variant and a cross-domain baseline (DDTCDR, the costlier
        # of the two joint baselines), which gives the t-test its baseline;
        # the table puts them in the paper's order.
        "--methods=soft,ddtcdr",
        "--seeds=0",
        # The popularity cells are tested on their own; this test is slow
        # enough with the pretraining and two fine-tuning subprocesses.
        "--nopopularity",
        "--extra_finetune_flags=--epochs=1 --batch_size=64 "
        "--log_every_steps=0 --jit_compile=false",
    ]

    assert (
        reproduce.run(
            _flag_values([*argv, f"--out_dir={out_dir}"]),
            "python launch/reproduce.py ...",
        )
        == 0
    )

    printed = capsys.readouterr().out
    assert "3 cells: 0 done, 0 to resume, 3 to start." in printed
    assert "[3/3] runs/ddtcdr/frac1.0/seed0 done in" in printed
    results = {}
    for method in ("soft", "ddtcdr"):
        path = os.path.join(out_dir, "runs", method, "frac1.0", "seed0")
        with open(os.path.join(path, "results.json")) as f:
            results[method] = json.load(f)
        with open(os.path.join(path, "config.json")) as f:
            config = json.load(f)
        assert (config["method"], config["training"]["epochs"]) == (method, 1)
    with open(os.path.join(out_dir, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    # The paper's order: the baselines first.
    assert [r["method"] for r in rows] == ["ddtcdr", "soft"]
    for row in rows:
        test = results[row["method"]]["test"]
        assert float(row["MRR@5_mean"]) == test["sampled/mrr@5"]
        assert float(row["HR@5_mean"]) == test["sampled/hr@5"]
        assert row["n_seeds"] == "1" and row["MRR@5_std"] == ""
    with open(os.path.join(out_dir, "results.md")) as f:
        markdown = f.read()
    assert "| DDTCDR |" in markdown
    assert "Δ: UAF variant minus DDTCDR, the baseline" in markdown
    assert "Pretrained NextItNet (best epoch 1)" in markdown
    assert "Command: `python launch/reproduce.py ...`" in markdown
    assert os.listdir(os.path.join(out_dir, "tb"))

    # A second run finds every cell done and runs nothing.
    assert (
        reproduce.run(
            _flag_values([*argv, f"--out_dir={out_dir}"]),
            "python launch/reproduce.py ...",
        )
        == 0
    )
    assert "3 cells: 3 done, 0 to resume, 0 to start." in (
        capsys.readouterr().out
    )

    # The archive holds what the report reads (the per-instance ranks
    # gzipped) and the report; a fresh out_dir reports the same numbers.
    soft = archive_dir / "runs/soft/frac1.0/seed0"
    assert sorted(os.listdir(soft)) == [
        "config.json",
        "results.json",
        "test_instances.tsv.gz",
    ]
    assert (archive_dir / "results.csv").read_text() == open(
        os.path.join(out_dir, "results.csv")
    ).read()
    fresh = tmp_path / "fresh"
    assert (
        reproduce.run(
            _flag_values([*argv, f"--out_dir={fresh}", "--report_only"])
        )
        == 0
    )
    assert "Restored 3 finished cells" in capsys.readouterr().out
    assert (fresh / "results.csv").read_text() == (
        archive_dir / "results.csv"
    ).read_text()
    assert (
        "Pretrained NextItNet (best epoch 1)"
        in (fresh / "results.md").read_text()
    )


def test_report_only_without_a_reproduction_is_one_line_error(tmp_path):
    data_dir = testing.build_tiny_dataset_dir(str(tmp_path / "data"))
    argv = [
        f"--data_dir={data_dir}",
        f"--pretrained={tmp_path / 'pretrained'}",
        f"--out_dir={tmp_path / 'never_ran'}",
        "--report_only",
    ]
    with pytest.raises(errors.UserError, match="never_ran does not exist"):
        reproduce.run(_flag_values(argv))
    assert not (tmp_path / "never_ran").exists()
