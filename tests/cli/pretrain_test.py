"""`uaf-pretrain` (uaf_tf.cli.pretrain) end to end on tiny synthetic data."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from absl import app
from absl import flags

from uaf_tf import errors
from uaf_tf import run_dir as run_dir_lib
from uaf_tf import testing
from uaf_tf.cli import common_flags
from uaf_tf.cli import pretrain
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.training import pretrain as pretrain_lib
from uaf_tf.training import summaries
from uaf_tf.training import trainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _flags(argv):
    fv = flags.FlagValues()
    pretrain.define_flags(fv)
    fv(["pretrain", *argv])
    return fv


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return testing.build_tiny_dataset_dir(str(tmp_path_factory.mktemp("data")))


def test_main_writes_a_complete_run_directory(data_dir, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    flagfile = tmp_path / "tiny.cfg"
    flagfile.write_text(
        "--channels=16\n--dilations=1,2\n--batch_size=32\n--epochs=2\n"
    )
    fv = _flags(
        [
            f"--flagfile={flagfile}",
            f"--data_dir={data_dir}",
            f"--run_dir={run_dir}",
            "--learning_rate=1e-3",
            "--log_every_steps=2",
            "--jit_compile=false",
        ]
    )
    pretrain.main(["pretrain"], fv)
    assert "full/mrr@5" in capsys.readouterr().out

    for name in [
        "config.json",
        "model.json",
        "best.weights.h5",
        "results.json",
        "source_vocab.txt",
        "target_vocab.txt",
        "dataset.json",
    ]:
        assert os.path.isfile(os.path.join(run_dir, name)), name
    assert os.listdir(os.path.join(run_dir, "ckpt"))
    config = run_dir_lib.read_config(run_dir)
    assert config["channels"] == 16 and config["dilations"] == [1, 2]
    assert config["dataset_name"] == "synthetic"
    with open(os.path.join(run_dir, "results.json")) as f:
        results = json.load(f)
    # 190 pretraining users in batches of 32: 6 steps per epoch.
    assert results["epochs_run"] == 2 and results["steps"] == 12
    assert results["valid"]["num_examples"] == 10
    assert 0.0 <= results["valid"]["full/mrr@5"] <= 1.0
    scalars = summaries.read_scalars(os.path.join(run_dir, "tb"))
    assert len(scalars["train/loss"]) == 6
    assert len(scalars["valid/full/hr@5"]) == 2

    backbone = run_dir_lib.load_pretrained_backbone(run_dir)
    assert isinstance(backbone, NextItNetBackbone)
    assert backbone.num_items == 61 and backbone.channels == 16

    # --resume with more epochs continues the same run.
    fv = _flags(
        [
            f"--flagfile={flagfile}",
            f"--data_dir={data_dir}",
            f"--run_dir={run_dir}",
            "--epochs=3",
            "--learning_rate=1e-3",
            "--resume",
            "--jit_compile=false",
        ]
    )
    pretrain.main(["pretrain"], fv)
    with open(os.path.join(run_dir, "results.json")) as f:
        results = json.load(f)
    assert results["epochs_run"] == 3 and results["steps"] == 18
    assert [h["epoch"] for h in results["history"]] == [1, 2, 3]


def test_default_run_dir_is_named_after_the_dataset(data_dir, tmp_path):
    fv = _flags([f"--data_dir={data_dir}"])
    assert common_flags.resolve_run_dir("pretrain-synthetic", fv) == (
        os.path.join("checkpoints", "pretrain-synthetic")
    )
    fv = _flags([f"--data_dir={data_dir}", "--run_name=x"])
    assert common_flags.resolve_run_dir("pretrain-synthetic", fv) == (
        os.path.join("checkpoints", "x")
    )


@pytest.mark.parametrize(
    "name,expected",
    [
        ("pretrain_paper.cfg", (128, (1, 4, 1, 4, 1, 4, 1, 4), 1e-4, 256)),
        ("pretrain_quick.cfg", (64, (1, 4, 1, 4), 1e-3, 64)),
    ],
)
def test_config_files_parse(name, expected):
    path = os.path.join(REPO, "launch", "configs", name)
    fv = _flags([f"--flagfile={path}", "--data_dir=unused"])
    config = pretrain.config_from_flags(fv)
    assert (
        config.channels,
        config.dilations,
        config.training.learning_rate,
        config.training.batch_size,
    ) == expected
    assert config.mask_padding and config.num_sampled == 0


def _main_error(argv, capsys) -> str:
    """The one stderr line of `pretrain.main` that exits with status 2."""
    with pytest.raises(SystemExit) as exit_info:
        pretrain.main(["pretrain"], _flags(argv))
    assert exit_info.value.code == errors.EXIT_STATUS
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.rstrip("\n")


def test_missing_data_dir_is_one_line(capsys):
    assert _main_error([], capsys) == "error: --data_dir is required."


@pytest.mark.parametrize(
    "flag, expected",
    [
        ("--learning_rate=-1", "--learning_rate=-1.0: must be > 0 and finite"),
        ("--learning_rate=nan", "--learning_rate=nan: must be > 0 and finite"),
        ("--batch_size=0", "--batch_size=0: must be an integer >= 1"),
        ("--epochs=0", "--epochs=0: must be an integer >= 1"),
        ("--channels=0", "--channels=0: must be an integer >= 1"),
        ("--dilations=1,0", "--dilations=1,0: must be one or more integers"),
        ("--seed=-3", "--seed=-3: must be an integer >= 0"),
    ],
)
def test_invalid_values_are_refused_before_any_work(
    data_dir, tmp_path, capsys, flag, expected
):
    run_dir = tmp_path / "run"
    argv = [f"--data_dir={data_dir}", f"--run_dir={run_dir}", flag]
    assert _main_error(argv, capsys).startswith(f"error: {expected}")
    assert not run_dir.exists()


def test_wrong_data_dirs_are_one_line(data_dir, tmp_path, capsys):
    missing = tmp_path / "missing"
    assert _main_error([f"--data_dir={missing}"], capsys) == (
        f"error: --data_dir={missing}: no such directory"
    )
    (tmp_path / "empty").mkdir()
    assert _main_error([f"--data_dir={tmp_path / 'empty'}"], capsys).startswith(
        f"error: --data_dir={tmp_path / 'empty'}: not a dataset directory"
    )
    # The dataset directory as the run directory.
    assert _main_error(
        [f"--data_dir={data_dir}", f"--run_dir={data_dir}"], capsys
    ) == (
        f"error: --run_dir={data_dir}: is a dataset directory; a run needs "
        "a directory of its own"
    )


def test_config_json_is_a_preset(data_dir, tmp_path):
    first = str(tmp_path / "first")
    fv = _flags(
        [
            f"--data_dir={data_dir}",
            f"--run_dir={first}",
            "--channels=8",
            "--dilations=1",
            "--batch_size=64",
            "--epochs=1",
            "--learning_rate=3e-3",
            "--nomask_padding",
            "--jit_compile=false",
        ]
    )
    pretrain.main(["pretrain"], fv)
    config = pretrain.config_from_flags(fv)
    path = os.path.join(first, "config.json")

    # Everything comes back from config.json ...
    again_dir = str(tmp_path / "again")
    again = _flags([f"--config={path}", f"--run_dir={again_dir}"])
    assert pretrain.config_from_flags(again) == config
    pretrain.main(["pretrain"], again)

    def saved(run_dir):  # Run metadata such as the environment may differ.
        values = run_dir_lib.read_config(run_dir)
        values.pop("environment", None)
        return values

    assert saved(again_dir) == saved(first)
    # ... except what is given explicitly.
    changed = _flags([f"--config={path}", "--epochs=3", "--jit_compile=auto"])
    assert pretrain.config_from_flags(changed) == dataclasses.replace(
        config,
        training=dataclasses.replace(
            config.training, epochs=3, jit_compile=None
        ),
    )
    # The shared trainer options are nested in config.json ...
    written = run_dir_lib.read_config(first)
    assert written["training"]["learning_rate"] == 3e-3
    assert "learning_rate" not in written
    # ... and a flat config.json (written before they were) still loads.
    flat = {k: v for k, v in written.items() if k != "training"}
    flat.update(written["training"])
    flat_path = tmp_path / "flat.json"
    flat_path.write_text(json.dumps(flat))
    assert pretrain.config_from_flags(_flags([f"--config={flat_path}"])) == (
        config
    )


def test_config_file_with_an_unknown_key_is_a_usage_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"task": "pretrain", "chanels": 8}))
    with pytest.raises(app.UsageError, match=r"config.json.*`chanels`"):
        pretrain.config_from_flags(_flags([f"--config={path}"]))


def test_help_lists_exactly_the_scripts_flags():
    fv = _flags([])
    key_flags = {f.name for f in fv.get_key_flags_for_module(pretrain)}
    fields = {f.name for f in dataclasses.fields(pretrain_lib.PretrainConfig)}
    fields.remove("training")  # Flattened: its fields are plain flags.
    fields |= {f.name for f in dataclasses.fields(trainer.TrainingConfig)}
    assert key_flags == fields | {"config", "run_dir", "run_name", "resume"}


def test_command_help_shows_the_flags_without_tf_noise():
    env = {**os.environ, "PYTHONPATH": REPO}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    completed = subprocess.run(
        [sys.executable, os.path.join(REPO, "launch", "pretrain.py"), "--help"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert completed.returncode == 1, completed.stderr  # absl's --help exit.
    for flag in ["data_dir", "run_dir", "seed", "config", "[no]resume"]:
        assert f"  --{flag}: " in completed.stdout, flag
    assert "logtostderr" not in completed.stdout  # absl's, --helpfull only.
    assert completed.stderr == ""
