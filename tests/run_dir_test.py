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
    with pytest.raises(FileExistsError, match="--resume"):
        run_dir_lib.start_run(str(tmp_path), {"lr": 0.5}, resume=False)
    assert (tmp_path / run_dir_lib.CONFIG_FILE).read_text() == before


def test_resume_keeps_the_original_config(tmp_path):
    original = {"lr": 0.1, "dilations": [1, 4], "environment": {"argv": []}}
    _make_started_run(tmp_path, original)
    with mock.patch.object(run_dir_lib.logging, "warning") as warning:
        run_dir_lib.start_run(
            str(tmp_path),
            {"lr": 0.5, "dilations": (1, 4), "environment": {"argv": ["x"]}},
            resume=True,
        )
    saved = json.loads((tmp_path / run_dir_lib.CONFIG_FILE).read_text())
    assert saved == original
    # Only the changed value is reported, never the environment.
    assert [call.args[1] for call in warning.call_args_list] == ["lr"]


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
