"""A run directory that holds checkpoints is never overwritten by accident."""

import ast
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import uaf_tf
import uaf_tf.layers
import uaf_tf.models
from uaf_tf import config_flags
from uaf_tf import run_dir as run_dir_lib


def _make_started_run(path, config):
    run_dir_lib.write_config(str(path), config)
    checkpoint = tf.train.Checkpoint(step=tf.Variable(7))
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(str(path), run_dir_lib.CHECKPOINT_DIR), 1
    )
    manager.save()


def test_fresh_directory_gets_the_config_and_the_environment(tmp_path):
    run_dir_lib.start_run(str(tmp_path / "run"), {"lr": 0.1}, resume=False)
    config = run_dir_lib.read_config(str(tmp_path / "run"))
    environment = config.pop(run_dir_lib.ENVIRONMENT_KEY)
    assert config == {"lr": 0.1}
    assert environment["python"] == platform.python_version()
    assert environment["packages"] == {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tensorflow-probability": tfp.__version__,
        "numpy": np.__version__,
        "uaf_tf": uaf_tf.__version__,
    }
    assert environment["argv"] == sys.argv
    assert {"type": "CPU", "name": "/physical_device:CPU:0"} in environment[
        "devices"
    ]
    assert len(environment["devices"]) == len(tf.config.list_physical_devices())
    assert environment["cpu"] == run_dir_lib.cpu_model() != ""
    # The checkout the tests import uaf_tf from (None outside git).
    assert environment["git"] == run_dir_lib.git_state(
        os.path.dirname(uaf_tf.__file__)
    )


def test_environment_in_the_config_is_replaced(tmp_path):
    run_dir_lib.start_run(
        str(tmp_path), {"lr": 0.1, "environment": "stale"}, resume=False
    )
    environment = run_dir_lib.read_config(str(tmp_path))["environment"]
    assert environment["argv"] == sys.argv


def _git(path, *args):
    return subprocess.run(
        ["git", "-C", str(path), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_state_reports_commit_and_tracked_changes(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(
        tmp_path,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qm",
        "first",
    )
    commit = _git(tmp_path, "rev-parse", "HEAD")
    assert len(commit) == 40
    assert run_dir_lib.git_state(str(tmp_path)) == {
        "commit": commit,
        "dirty": False,
    }
    # An untracked file (a run output, say) leaves the checkout clean.
    (tmp_path / "new.txt").write_text("out")
    assert not run_dir_lib.git_state(str(tmp_path))["dirty"]
    (tmp_path / "a.py").write_text("x = 2\n")
    assert run_dir_lib.git_state(str(tmp_path)) == {
        "commit": commit,
        "dirty": True,
    }


def test_git_state_is_none_outside_a_checkout(tmp_path, monkeypatch):
    # GIT_CEILING_DIRECTORIES stops git from finding a checkout above.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert run_dir_lib.git_state(str(tmp_path)) is None
    assert run_dir_lib.git_state(str(tmp_path / "missing")) is None
    monkeypatch.setenv("PATH", "")  # no git at all
    assert run_dir_lib.git_state(str(tmp_path)) is None


def test_started_run_is_refused_without_resume_and_left_untouched(tmp_path):
    _make_started_run(tmp_path, {"lr": 0.1, "epochs": 5})
    before = (tmp_path / run_dir_lib.CONFIG_FILE).read_text()
    with pytest.raises(run_dir_lib.RunExistsError, match="--resume"):
        run_dir_lib.start_run(str(tmp_path), {"lr": 0.5}, resume=False)
    assert (tmp_path / run_dir_lib.CONFIG_FILE).read_text() == before


def test_resume_keeps_the_original_config(tmp_path):
    original = {"lr": 0.1, "dilations": [1, 4], "environment": {"argv": []}}
    _make_started_run(tmp_path, original)
    with mock.patch.object(run_dir_lib.logging, "warning") as warning:
        effective = run_dir_lib.start_run(
            str(tmp_path),
            {"lr": 0.5, "dilations": (1, 4), "environment": {"argv": ["x"]}},
            resume=True,
        )
    saved = json.loads((tmp_path / run_dir_lib.CONFIG_FILE).read_text())
    assert saved == original
    # Only the changed value is reported, never the environment ...
    assert [call.args[1] for call in warning.call_args_list] == ["lr"]
    # ... and the run really uses the saved one.
    assert effective["lr"] == 0.1 and effective["dilations"] == [1, 4]


def test_resume_applies_and_records_the_resumable_options(tmp_path):
    original = {
        "task": "pretrain",
        "channels": 8,
        "training": {"epochs": 20, "learning_rate": 0.01, "seed": 0},
        "environment": {"argv": []},
    }
    _make_started_run(tmp_path, original)
    asked = {
        "task": "pretrain",
        "channels": 16,  # Not resumable: ignored.
        "training": {"epochs": 22, "learning_rate": 0.001, "seed": 0},
    }
    with mock.patch.object(sys, "argv", ["pretrain", "--epochs=22"]):
        effective = run_dir_lib.start_run(str(tmp_path), asked, resume=True)
    assert effective == {
        "task": "pretrain",
        "channels": 8,
        "training": {"epochs": 22, "learning_rate": 0.001, "seed": 0},
    }
    saved = run_dir_lib.read_config(str(tmp_path))
    history = saved.pop(run_dir_lib.RESUME_HISTORY_KEY)
    assert saved == {
        **original,
        "training": {"epochs": 22, "learning_rate": 0.001, "seed": 0},
    }
    assert len(history) == 1
    assert history[0]["argv"] == ["pretrain", "--epochs=22"]
    assert history[0]["changed"] == {
        "epochs": {"from": 20, "to": 22},
        "learning_rate": {"from": 0.01, "to": 0.001},
    }
    # A second resume appends; one without changes records nothing.
    run_dir_lib.start_run(
        str(tmp_path), {**asked, "training": {"epochs": 30}}, resume=True
    )
    run_dir_lib.start_run(
        str(tmp_path), {**asked, "training": {"epochs": 30}}, resume=True
    )
    history = run_dir_lib.read_config(str(tmp_path))["resume_history"]
    assert [h["changed"] for h in history[1:]] == [
        {"epochs": {"from": 22, "to": 30}}
    ]


def _write_dataset(path, sizes=None, missing=()):
    """A dataset directory's dataset.json and (empty) shard files."""
    from uaf_tf.data import dataset_info

    splits = ("pretrain/train", "pretrain/valid", "finetune/train")
    files = {
        s: [f"{s}-0000{i}-of-00002.tfrecord" for i in (0, 1)] for s in splits
    }
    info = dataset_info.DatasetInfo(
        seq_len=5,
        num_source_ids=7,
        num_target_ids=4,
        num_eval_negatives=2,
        split_files=files,
        split_sizes=sizes or {s: 3 for s in splits},
        name="tiny",
    )
    os.makedirs(os.path.join(path, "pretrain"), exist_ok=True)
    os.makedirs(os.path.join(path, "finetune"), exist_ok=True)
    info.save(str(path))
    for names in files.values():
        for name in names:
            if name not in missing:
                open(os.path.join(path, name), "w").close()
    return info


PRETRAIN_SPLITS = ("pretrain/train", "pretrain/valid")


def test_check_dataset_dir_accepts_a_dataset(tmp_path):
    info = _write_dataset(tmp_path)
    assert run_dir_lib.check_dataset_dir(str(tmp_path), PRETRAIN_SPLITS) == info


@pytest.mark.parametrize(
    "case, reason",
    [
        ("missing", "no such directory"),
        ("file", "not a directory"),
        ("empty_dir", "not a dataset directory (no dataset.json)"),
        ("run_dir", "is a run directory, not a dataset"),
        ("bad_json", "unreadable dataset.json"),
        ("no_split", "has no pretrain/valid split"),
        ("missing_shard", "1 of the 2 files of pretrain/train listed"),
        ("empty_train", "pretrain/train is empty (0 examples)"),
    ],
)
def test_check_dataset_dir_names_the_flag_and_the_problem(
    tmp_path, case, reason
):
    path = tmp_path / "data"
    if case == "file":
        path.write_text("x")
    elif case == "empty_dir":
        path.mkdir()
    elif case == "run_dir":
        _write_dataset(path)  # Run directories copy dataset.json.
        (path / "config.json").write_text("{}")
    elif case == "bad_json":
        path.mkdir()
        (path / "dataset.json").write_text('{"seq_len": ')
    elif case == "no_split":
        _write_dataset(path)
        raw = json.loads((path / "dataset.json").read_text())
        del raw["split_files"]["pretrain/valid"]
        (path / "dataset.json").write_text(json.dumps(raw))
    elif case == "missing_shard":
        _write_dataset(
            path, missing=("pretrain/train-00001-of-00002.tfrecord",)
        )
    elif case == "empty_train":
        _write_dataset(path, sizes={"pretrain/train": 0, "pretrain/valid": 3})
    with pytest.raises(config_flags.ConfigError) as info:
        run_dir_lib.check_dataset_dir(str(path), PRETRAIN_SPLITS)
    assert info.value.flag_message().startswith(f"--data_dir={path}: {reason}")
    assert "\n" not in info.value.flag_message()


def _write_run(path, task="pretrain", model=True, weights=True):
    os.makedirs(path)
    config = {"task": task}
    if task == "finetune":
        config["pretrained"] = "/runs/pre"
    run_dir_lib.write_config(str(path), config)
    if model:
        (path / run_dir_lib.MODEL_FILE).write_text("{}")
    if weights:
        (path / run_dir_lib.BEST_WEIGHTS_FILE).write_text("")


@pytest.mark.parametrize(
    "case, reason",
    [
        ("missing", "no such directory"),
        ("dataset", "is a dataset directory, not a pretraining run"),
        ("empty_dir", "not a pretraining run (no model.json)"),
        (
            "finetune_run",
            "is a finetune run, not a pretraining run; it started from "
            "--pretrained=/runs/pre",
        ),
        ("no_model", "not a pretraining run (no model.json)"),
        ("no_weights", "has no best.weights.h5"),
    ],
)
def test_check_pretraining_run_names_the_flag_and_the_problem(
    tmp_path, case, reason
):
    path = tmp_path / "run"
    if case == "dataset":
        _write_dataset(path)
    elif case == "empty_dir":
        path.mkdir()
    elif case == "finetune_run":
        _write_run(path, task="finetune")
    elif case == "no_model":
        _write_run(path, model=False)
    elif case == "no_weights":
        _write_run(path, weights=False)
    with pytest.raises(config_flags.ConfigError) as info:
        run_dir_lib.check_pretraining_run(str(path))
    assert info.value.flag_message().startswith(
        f"--pretrained={path}: {reason}"
    )


def test_check_pretraining_run_accepts_a_run(tmp_path):
    _write_run(tmp_path / "run")
    run_dir_lib.check_pretraining_run(str(tmp_path / "run"))


def test_a_dataset_or_a_file_is_no_run_directory(tmp_path):
    _write_dataset(tmp_path / "data")
    with pytest.raises(config_flags.ConfigError, match="is a dataset dir"):
        run_dir_lib.start_run(str(tmp_path / "data"), {}, resume=False)
    assert not (tmp_path / "data" / "config.json").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(config_flags.ConfigError, match="not a directory"):
        run_dir_lib.start_run(str(tmp_path / "file"), {}, resume=False)


def test_write_json_never_leaves_a_partial_file(tmp_path):
    path = str(tmp_path / "results.json")
    run_dir_lib.write_json(path, {"a": 1})
    # Fails halfway through the dump: the old file stays whole, no
    # temporary file is left.
    with pytest.raises(TypeError):
        run_dir_lib.write_json(path, {"a": 2, "b": object()})
    assert json.loads(pathlib.Path(path).read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["results.json"]


def _registered_class_names(package_dir):
    """Names of `@register_keras_serializable(package="uaf_tf")` classes
    defined in a package, read from the source (nothing imported)."""
    names = []
    for path in sorted(pathlib.Path(package_dir).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            for decorator in node.decorator_list:
                if "register_keras_serializable" in ast.unparse(decorator):
                    names.append(node.name)
    return names


def test_importing_run_dir_registers_every_uaf_tf_class():
    # A fresh interpreter: in this one the tests have imported the modules.
    names = _registered_class_names(
        os.path.dirname(uaf_tf.layers.__file__)
    ) + _registered_class_names(os.path.dirname(uaf_tf.models.__file__))
    assert "GatedResidualBlock" in names and "UAFRecommender" in names
    code = (
        "import keras, sys\n"
        "import uaf_tf.run_dir\n"
        "missing = [n for n in sys.argv[1:]\n"
        "           if keras.saving.get_registered_object('uaf_tf>' + n)\n"
        "           is None]\n"
        "print('missing:', missing)\n"
        "sys.exit(1 if missing else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *names],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "PYTHONPATH": os.path.dirname(os.path.dirname(uaf_tf.__file__)),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
