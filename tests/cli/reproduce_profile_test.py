"""`uaf-reproduce --task=profile` end to end on tiny synthetic data."""

import csv
import json
import os

from absl import flags

from uaf_tf import testing
from uaf_tf.cli import reproduce
from uaf_tf.training import profile


def _flag_values(argv):
    fv = flags.FlagValues()
    reproduce.define_flags(fv)
    fv(["reproduce.py", *argv])
    return fv


def test_default_profile_methods_are_the_profile_task_methods(tmp_path):
    assert sorted(reproduce.PROFILE_METHODS) == sorted(profile.METHODS)
    spec = reproduce.spec_from_flags(
        _flag_values(
            [
                "--data_dir=d",
                "--pretrained=p",
                f"--out_dir={tmp_path}",
                "--task=profile",
            ]
        )
    )
    assert spec.methods == reproduce.PROFILE_METHODS
    assert spec.finetune_flagfile.endswith("profile_quick.cfg")
    # The recommendation task keeps its own defaults.
    spec = reproduce.spec_from_flags(
        _flag_values(
            ["--data_dir=d", "--pretrained=p", f"--out_dir={tmp_path}"]
        )
    )
    assert "mtl" in spec.methods
    assert spec.finetune_flagfile.endswith("finetune_quick.cfg")


def test_profile_task_end_to_end_then_rerun_skips(tmp_path, capsys):
    data_dir = testing.build_tiny_dataset_dir(
        str(tmp_path / "data"), num_users=120, num_source_items=60
    )
    testing.write_planted_profiles(data_dir, 60)
    pretrained = testing.pretrain_tiny_run(data_dir, str(tmp_path / "pretrain"))
    out_dir = str(tmp_path / "out")
    argv = [
        "--task=profile",
        "--profile_label=gender",
        f"--data_dir={data_dir}",
        f"--pretrained={pretrained}",
        f"--out_dir={out_dir}",
        "--methods=finetune-cls,rl",
        "--seeds=0",
        "--extra_finetune_flags=--epochs=2 --rl_curriculum_epochs=1 "
        "--jit_compile=false",
    ]

    assert reproduce.run(_flag_values(argv), "python reproduce.py") == 0

    printed = capsys.readouterr().out
    assert "2 cells: 0 done, 0 to resume, 2 to start." in printed
    assert "[2/2] profile/gender/rl/seed0 done in" in printed
    tests = {}
    for method in ("finetune-cls", "rl"):
        run_dir = os.path.join(out_dir, "profile", "gender", method, "seed0")
        with open(os.path.join(run_dir, "results.json")) as f:
            results = json.load(f)
        tests[method] = results["test"]
        assert results["epochs_run"] == 2
        with open(os.path.join(run_dir, "config.json")) as f:
            config = json.load(f)
        assert (config["task"], config["method"]) == ("profile", method)
        assert config["profile_label"] == "gender"
        # profile_quick.cfg, then --extra_finetune_flags.
        assert config["training"]["learning_rate"] == 1e-3
    with open(os.path.join(out_dir, "profile_gender.csv")) as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["finetune-cls", "rl", "majority"]
    for method, test in tests.items():
        assert float(rows[method]["accuracy_mean"]) == test["accuracy"]
        assert float(rows[method]["macro_f1_mean"]) == test["macro_f1"]
    assert (
        float(rows["majority"]["accuracy_mean"])
        == (tests["rl"]["majority/accuracy"])
    )
    assert (
        tests["rl"]["majority/accuracy"]
        == (tests["finetune-cls"]["majority/accuracy"])
    )
    with open(os.path.join(out_dir, "profile_gender.md")) as f:
        markdown = f.read()
    assert "Command: `python reproduce.py`" in markdown
    assert "| UAF-RL |" in markdown and "| Majority class |" in markdown

    # A second run finds both cells done and runs nothing.
    assert reproduce.run(_flag_values(argv), "python reproduce.py") == 0
    assert "2 cells: 2 done, 0 to resume, 0 to start." in (
        capsys.readouterr().out
    )
