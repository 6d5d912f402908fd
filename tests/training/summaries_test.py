"""A run's final metrics and hyperparameters in TensorBoard, read back."""

import glob
import json
import os

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import metadata as hparams_metadata

from uaf_tf.training import policy_summaries
from uaf_tf.training import summaries

FINETUNE_RESULTS = {
    "valid": {"sampled/mrr@5": 0.25, "sampled/hr@5": 0.5, "num_examples": 9},
    "test": {
        "sampled/mrr@5": 0.125,
        "sampled/hr@10": 0.75,
        "policy/block_0": 0.5,
        "num_examples": 12,
    },
    "selection_metric": "sampled/mrr@5",
    "best_epoch": 3,
    "steps": 42,
}
PRETRAIN_RESULTS = {
    "valid": {"loss": 6.5, "full/hr@5": 0.125, "num_examples": 47},
    "test": None,
    "selection_metric": "loss",
    "best_epoch": 2,
    "steps": 10,
}


def test_final_metrics_of_both_kinds_of_run():
    assert summaries.final_metrics(FINETUNE_RESULTS) == {
        "test/sampled/mrr@5": 0.125,
        "test/sampled/hr@10": 0.75,
        "test/policy/block_0": 0.5,
        "best_valid/sampled/mrr@5": 0.25,
        "best_epoch": 3,
    }
    # No test split: every validation metric of the best epoch.
    assert summaries.final_metrics(PRETRAIN_RESULTS) == {
        "best_valid/full/hr@5": 0.125,
        "best_valid/loss": 6.5,
        "best_epoch": 2,
    }
    assert summaries.final_metrics({"valid": None, "test": None}) == {}


def test_hparams_of_config_flattens_to_flag_names():
    config = {
        "method": "gumbel",
        "training": {"learning_rate": 1e-3, "seed": 2, "jit_compile": None},
        "dilations": [1, 2, 4],
        "freeze_embedding": False,
        "environment": {"git": {"commit": "abc"}},
    }
    assert summaries.hparams_of_config(config) == {
        "method": "gumbel",
        "learning_rate": 1e-3,
        "seed": 2,
        "jit_compile": "none",
        "dilations": "1,2,4",
        "freeze_embedding": False,
    }


def test_write_final_summaries_reads_back(tmp_path):
    run_dir = str(tmp_path)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump({"method": "rl", "training": {"learning_rate": 0.01}}, f)
    log_dir = summaries.write_final_summaries(run_dir, FINETUNE_RESULTS)
    assert log_dir == os.path.join(run_dir, "tb", "final")

    scalars = summaries.read_scalars(log_dir)
    expected = summaries.final_metrics(FINETUNE_RESULTS)
    assert set(scalars) == set(expected)
    for tag, value in expected.items():
        ((step, read),) = scalars[tag]
        assert step == 42
        np.testing.assert_allclose(read, value, rtol=1e-7, err_msg=tag)

    # The HParams session of the run: its hyperparameters.
    (path,) = glob.glob(os.path.join(log_dir, "events.*"))
    infos = []
    for event in tf.compat.v1.train.summary_iterator(path):
        for value in event.summary.value:
            if value.tag == hparams_metadata.SESSION_START_INFO_TAG:
                infos.append(
                    hparams_metadata.parse_session_start_info_plugin_data(
                        value.metadata.plugin_data.content
                    )
                )
    (info,) = infos
    assert info.hparams["method"].string_value == "rl"
    assert info.hparams["learning_rate"].number_value == 0.01


def test_read_scalars_skips_images_and_text(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default(step=3):
        summaries.scalar("a", 0.5)
        policy_summaries.write_text("t", "| x |")
        policy_summaries.write_image("i", np.zeros([2, 2, 3], np.uint8))
    writer.close()
    assert summaries.read_scalars(str(tmp_path)) == {"a": [(3, 0.5)]}
