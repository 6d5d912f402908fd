"""TensorBoard scalars without the `tensorboard` package; a run's final
metrics and hyperparameters.

TF 2.21 no longer installs `tensorboard`, and `tf.summary.scalar` raises
`TBNotInstalledError` without it; uaf-tf installs it for viewing, but
training must not fail in an environment that left the viewer out.
`scalar` writes the same event record (`tf.summary.write` plus the "scalars"
plugin metadata) with core TF only, so TensorBoard shows it as a scalar and
tests read it back with
`tf.compat.v1.train.summary_iterator`.

`write_final_summaries` (the trainer, once per run) writes the run
`<run_dir>/tb/final`: the final metrics, one point each, and the run's
hyperparameters for the HParams dashboard, whose table then has one row per
run and one column per final metric (the metrics of a session are the
scalars of its own run directory, so only these).
"""

import json
import os

import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.core.framework import summary_pb2

from uaf_tf.run_dir import CONFIG_FILE
from uaf_tf.run_dir import ENVIRONMENT_KEY
from uaf_tf.run_dir import TENSORBOARD_DIR

# `<run_dir>/tb/final`: final metrics and the HParams session.
FINAL_DIR = "final"

_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
    data_class=summary_pb2.DATA_CLASS_SCALAR,
)


def scalar(name: str, value, step=None) -> bool:
    """Writes scalar `value` as `name` to the default summary writer.

    Args:
        name: tag, e.g. `"train/loss"`.
        value: a Python number or scalar tensor (stored as float32).
        step: int64 step; `None` uses the default set by
            `writer.as_default(step=...)`.

    Returns:
        True if a default writer took the value (as `tf.summary.write`).
    """
    return tf.summary.write(
        name,
        tf.cast(value, tf.float32),
        step=step,
        metadata=_SCALAR_METADATA,
    )


def read_scalars(event_file_or_dir: str) -> dict:
    """`{tag: [(step, value), ...]}` from event file(s), for tests/reports."""
    if tf.io.gfile.isdir(event_file_or_dir):
        paths = sorted(
            tf.io.gfile.glob(f"{event_file_or_dir}/events.out.tfevents.*")
        )
    else:
        paths = [event_file_or_dir]
    scalars = {}
    for path in paths:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if not value.HasField("tensor"):
                    continue
                array = tf.make_ndarray(value.tensor)
                # Images, text, histograms and layouts are not scalars.
                if array.size != 1 or not np.issubdtype(array.dtype, np.number):
                    continue
                scalars.setdefault(value.tag, []).append(
                    (event.step, array.item())
                )
    return scalars


def final_metrics(results: dict) -> dict:
    """`{tag: value}` of a run's final metrics, from `trainer.fit`'s results.

    `test/<metric>` for every test metric (the best weights on the test
    split), `best_valid/<metric>` for the selection metric (every
    validation metric when there is no test split, as in pretraining) and
    `best_epoch`; example counts are left out.
    """
    metrics = {}
    test = results.get("test") or {}
    for key, value in test.items():
        if key != "num_examples":
            metrics[f"test/{key}"] = value
    valid = results.get("valid") or {}
    keys = [results.get("selection_metric")] if test else sorted(valid)
    for key in keys:
        if key in valid and key != "num_examples":
            metrics[f"best_valid/{key}"] = valid[key]
    if results.get("best_epoch") is not None:
        metrics["best_epoch"] = results["best_epoch"]
    return metrics


def hparams_of_config(config: dict) -> dict:
    """A run's `config.json` as HParams values: `{name: bool|int|float|str}`.

    Nested configs (`training`) are flattened to their fields' names, the
    flag names (`learning_rate`, not `training.learning_rate`); lists become
    comma-separated strings, None `"none"`; the environment is left out.
    """
    flat = {}

    def visit(mapping):
        for key, value in mapping.items():
            if isinstance(value, dict):
                visit(value)
            elif isinstance(value, (list, tuple)):
                flat[key] = ",".join(str(v) for v in value)
            elif value is None:
                flat[key] = "none"
            else:
                flat[key] = value

    visit({k: v for k, v in config.items() if k != ENVIRONMENT_KEY})
    return flat


def write_final_summaries(run_dir: str, results: dict) -> str | None:
    """Writes `<run_dir>/tb/final`: `final_metrics(results)` at the run's
    last step, and the HParams of `<run_dir>/config.json` (if any).

    Returns the log directory; None if `results` has no metric (no epoch
    ran). Without the `tensorboard` package the HParams are skipped with a
    warning.
    """
    metrics = final_metrics(results)
    if not metrics:
        return None
    log_dir = os.path.join(run_dir, TENSORBOARD_DIR, FINAL_DIR)
    config_path = os.path.join(run_dir, CONFIG_FILE)
    config = None
    if tf.io.gfile.exists(config_path):
        with tf.io.gfile.GFile(config_path) as f:
            config = json.load(f)
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default(step=results.get("steps", 0)):
        for tag, value in metrics.items():
            scalar(tag, value)
        if config is not None:
            _write_hparams(hparams_of_config(config))
    writer.close()
    return log_dir


def _write_hparams(hparams: dict) -> None:
    try:
        from tensorboard.plugins.hparams import api as hparams_api
    except ImportError:
        logging.warning("tensorboard is not installed: no HParams written.")
        return
    hparams_api.hparams(hparams)
