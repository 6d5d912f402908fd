"""A run directory that holds checkpoints is never overwritten by accident."""

import json
import os

import pytest
import tensorflow as tf

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
