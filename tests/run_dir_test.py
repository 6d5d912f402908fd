"""A run directory that holds checkpoints is never overwritten by accident."""

import ast
import json
import os
import pathlib
import subprocess
import sys

import pytest
import tensorflow as tf

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


def test_fresh_directory_gets_the_config(tmp_path):
    run_dir_lib.start_run(str(tmp_path / "run"), {"lr": 0.1}, resume=False)
    assert run_dir_lib.read_config(str(tmp_path / "run")) == {"lr": 0.1}


def test_started_run_is_refused_without_resume_and_left_untouched(tmp_path):
    _make_started_run(tmp_path, {"lr": 0.1, "epochs": 5})
    before = (tmp_path / run_dir_lib.CONFIG_FILE).read_text()
    with pytest.raises(FileExistsError, match="--resume"):
        run_dir_lib.start_run(str(tmp_path), {"lr": 0.5}, resume=False)
    assert (tmp_path / run_dir_lib.CONFIG_FILE).read_text() == before


def test_resume_keeps_the_original_config(tmp_path):
    _make_started_run(tmp_path, {"lr": 0.1, "dilations": [1, 4]})
    run_dir_lib.start_run(
        str(tmp_path), {"lr": 0.5, "dilations": (1, 4)}, resume=True
    )
    saved = json.loads((tmp_path / run_dir_lib.CONFIG_FILE).read_text())
    assert saved == {"lr": 0.1, "dilations": [1, 4]}


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
