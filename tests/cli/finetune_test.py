"""`uaf-finetune` (uaf_tf.cli.finetune) end to end on tiny synthetic data."""

import json
import os

import pytest
from absl import flags

from uaf_tf import errors
from uaf_tf import run_dir as run_dir_lib
from uaf_tf import testing
from uaf_tf.cli import finetune as finetune_launch
from uaf_tf.training import trainer

CONFIGS = os.path.join(
    os.path.dirname(__file__), "..", "..", "launch", "configs"
)


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("launch_finetune")
    data_dir = testing.build_tiny_dataset_dir(str(root / "data"))
    pretrained = testing.pretrain_tiny_run(data_dir, str(root / "pretrain"))
    return data_dir, pretrained, root


def _flag_values(argv):
    fv = flags.FlagValues()
    finetune_launch.define_flags(fv)
    fv(["finetune.py", *argv])
    return fv


@pytest.mark.parametrize(
    "flagfile", ["finetune_quick.cfg", "finetune_paper.cfg"]
)
def test_flag_files_parse(flagfile):
    fv = _flag_values(
        [
            f"--flagfile={os.path.join(CONFIGS, flagfile)}",
            "--data_dir=d",
            "--pretrained=p",
        ]
    )
    config = finetune_launch.config_from_flags(fv)
    assert config.loss == "bpr" and config.temperature == 10.0
    if flagfile == "finetune_paper.cfg":
        assert (
            config.training.learning_rate,
            config.training.batch_size,
            config.training.eval_batch_size,
        ) == (1e-4, 256, 1024)
        assert config.rl_curriculum_epochs == 5


@pytest.mark.parametrize("nested", [True, False])
def test_config_json_is_a_preset(tmp_path, nested):
    """`--config` reads a fine-tuning config.json, nested or flat (runs
    written before the trainer options moved to `training`)."""
    training = {"learning_rate": 3e-3, "epochs": 2, "jit_compile": False}
    values = {"task": "finetune", "method": "rl", "rl_num_negatives": 9}
    if nested:
        values["training"] = training
    else:
        values.update(training)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    fv = _flag_values(
        [f"--config={path}", "--data_dir=d", "--pretrained=p", "--epochs=4"]
    )
    config = finetune_launch.config_from_flags(fv)
    assert (config.method, config.rl_num_negatives) == ("rl", 9)
    assert config.training == trainer.TrainingConfig(
        learning_rate=3e-3, epochs=4, jit_compile=False, eval_batch_size=1024
    )


def test_policy_encoder_flag_reaches_the_model_kwargs():
    fv = _flag_values(
        ["--data_dir=d", "--pretrained=p", "--policy_encoder=gru"]
    )
    assert "policy" not in fv  # Renamed: "policy" meant four things.
    config = finetune_launch.config_from_flags(fv)
    assert config.policy_encoder == "gru"
    assert config.model_kwargs()["policy_encoder"] == "gru"


def test_every_flag_has_help():
    fv = flags.FlagValues()
    finetune_launch.define_flags(fv)
    for name in fv:
        assert fv[name].help, name


def test_main_end_to_end(pretrained_run, capsys):
    data_dir, pretrained, root = pretrained_run
    run_dir = str(root / "rl")
    fv = _flag_values(
        [
            f"--flagfile={os.path.join(CONFIGS, 'finetune_quick.cfg')}",
            f"--data_dir={data_dir}",
            f"--pretrained={pretrained}",
            f"--run_dir={run_dir}",
            "--method=rl",
            "--epochs=2",
            "--rl_curriculum_epochs=1",
            "--batch_size=64",
            "--log_every_steps=0",
            # XLA compilation would dominate this tiny run.
            "--jit_compile=false",
        ]
    )
    finetune_launch.main(["finetune.py"], fv)
    printed = capsys.readouterr().out
    assert "sampled/mrr@5" in printed and "utilisation" in printed

    for name in (
        "config.json",
        "model.json",
        "best.weights.h5",
        "results.json",
        "source_vocab.txt",
        "target_vocab.txt",
    ):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert os.listdir(os.path.join(run_dir, "tb"))
    with open(os.path.join(run_dir, "results.json")) as f:
        results = json.load(f)
    assert {
        "valid",
        "test",
        "best_epoch",
        "epochs_run",
        "wall_time_s",
        "train_examples_per_sec",
        "history",
    } <= set(results)
    assert results["epochs_run"] == 2
    for split in ("valid", "test"):
        for key in (
            "sampled/mrr@5",
            "sampled/hr@5",
            "sampled/ndcg@5",
            "sampled/hr@20",
            "full/mrr@5",
            "full/hr@20",
            "policy/block_0",
            "policy/block_1",
            "policy/mean_finetuned_blocks",
            "policy/distinct_policies",
            "num_examples",
        ):
            assert key in results[split], (split, key)
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    assert config["method"] == "rl" and config["training"]["epochs"] == 2
    assert config["policy_encoder"] == "conv"
    assert config["pretrained"] == pretrained


def _main_error(argv, capsys) -> str:
    """The one stderr line of `finetune.main` that exits with status 2."""
    with pytest.raises(SystemExit) as exit_info:
        finetune_launch.main(["finetune.py"], _flag_values(argv))
    assert exit_info.value.code == errors.EXIT_STATUS
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.rstrip("\n")


def test_missing_pretrained_is_one_line(pretrained_run, capsys):
    data_dir, _, _ = pretrained_run
    assert _main_error([f"--data_dir={data_dir}"], capsys) == (
        "error: --pretrained is required."
    )


def test_wrong_paths_are_one_line_naming_the_flag(pretrained_run, capsys):
    data_dir, pretrained, root = pretrained_run
    finetuned = root / "a-finetune-run"
    cases = [
        (
            ["--data_dir=/nonexistent", f"--pretrained={pretrained}"],
            "--data_dir=/nonexistent: no such directory",
        ),
        (
            [f"--data_dir={data_dir}", "--pretrained=/nonexistent"],
            "--pretrained=/nonexistent: no such directory",
        ),
        (
            [f"--data_dir={data_dir}", f"--pretrained={data_dir}"],
            f"--pretrained={data_dir}: is a dataset directory, not a "
            "pretraining run",
        ),
        (
            [f"--data_dir={pretrained}", f"--pretrained={pretrained}"],
            f"--data_dir={pretrained}: is a run directory, not a dataset",
        ),
        (
            [
                f"--data_dir={data_dir}",
                f"--pretrained={pretrained}",
                f"--run_dir={pretrained}",
            ],
            f"--run_dir={pretrained}: is the pretraining run",
        ),
        (
            [
                f"--data_dir={data_dir}",
                f"--pretrained={pretrained}",
                "--gamma=-1",
            ],
            "--gamma=-1.0: must be >= 0 and finite",
        ),
        (
            [
                f"--data_dir={data_dir}",
                f"--pretrained={pretrained}",
                "--temperature=0",
            ],
            "--temperature=0.0: must be > 0 and finite",
        ),
        (
            [
                f"--data_dir={data_dir}",
                f"--pretrained={pretrained}",
                "--train_fraction=0",
            ],
            "--train_fraction=0.0: must be in (0, 1]",
        ),
    ]
    for argv, expected in cases:
        assert _main_error(argv, capsys).startswith(f"error: {expected}"), argv
    # A fine-tuning run as --pretrained.
    run_dir_lib.write_config(
        str(finetuned), {"task": "finetune", "pretrained": pretrained}
    )
    argv = [f"--data_dir={data_dir}", f"--pretrained={finetuned}"]
    assert _main_error(argv, capsys) == (
        f"error: --pretrained={finetuned}: is a finetune run, not a "
        f"pretraining run; it started from --pretrained={pretrained}"
    )
