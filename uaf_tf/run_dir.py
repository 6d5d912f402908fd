"""Self-describing run directories: config, model spec, weights, vocabularies.

```
<run_dir>/config.json        resolved run configuration (`write_config`)
<run_dir>/model.json         `keras.saving.serialize_keras_object(model)`
<run_dir>/best.weights.h5    weights of the selected epoch (the trainer)
<run_dir>/results.json       final metrics (the trainer)
<run_dir>/ckpt/              checkpoints for `--resume` (the trainer)
<run_dir>/tb/                TensorBoard event files
<run_dir>/source_vocab.txt   copied from the dataset (`copy_vocabularies`)
<run_dir>/target_vocab.txt
<run_dir>/dataset.json
```

Training writes run directories and serving reads them; both import this
module, which names every file in it.

`load_model(run_dir)` rebuilds the exact model from `model.json` and loads
the weights: no pickle, no code besides the registered `uaf_tf` classes.
"""

import importlib.metadata
import json
import os
import platform
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf
from absl import logging

import uaf_tf

# Imported for their side effect: every `uaf_tf` class a model.json may
# name is registered with Keras (see the packages' __init__.py).
import uaf_tf.layers  # noqa: F401
import uaf_tf.models  # noqa: F401
from uaf_tf.data import dataset_info
from uaf_tf.models.sequence_backbone import SequenceBackbone

CONFIG_FILE = "config.json"
MODEL_FILE = "model.json"
BEST_WEIGHTS_FILE = "best.weights.h5"
RESULTS_FILE = "results.json"
CHECKPOINT_DIR = "ckpt"
TENSORBOARD_DIR = "tb"
# The one key of config.json that `start_run` adds: how and where the run
# was started, not how it is configured (a flag preset skips it).
ENVIRONMENT_KEY = "environment"
_PACKAGES = ("tensorflow", "keras", "tensorflow-probability", "numpy")
_GIT_TIMEOUT_S = 5
VOCABULARY_FILES = (
    dataset_info.SOURCE_VOCAB_FILE,
    dataset_info.TARGET_VOCAB_FILE,
    dataset_info.DATASET_INFO_FILE,
)


def write_config(run_dir: str, config: dict) -> str:
    """Writes `config` (JSON-serialisable) to `run_dir/config.json`."""
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, CONFIG_FILE)
    with open(path, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    return path


def start_run(run_dir: str, config: dict, *, resume: bool) -> None:
    """Claims `run_dir` for a run with `config`, before anything is written.

    A fresh run writes `config` to `config.json`, plus the key
    `"environment"` (`describe_environment()`: versions, devices, git
    commit, command line), which replaces any value `config` has there.

    A directory that already holds checkpoints belongs to an earlier run:
    without `resume` it is refused (nothing in it is touched); with `resume`
    its `config.json` is kept, since it describes how the run started, and
    every value the new `config` changes is logged as ignored.

    Raises:
        FileExistsError: `run_dir` holds checkpoints and `resume` is False.
    """
    checkpoint_dir = os.path.join(run_dir, CHECKPOINT_DIR)
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest and not resume:
        raise FileExistsError(
            f"{run_dir} already holds a run (checkpoint {latest}). Pass "
            "--resume to continue it, or choose another --run_dir."
        )
    config_path = os.path.join(run_dir, CONFIG_FILE)
    if latest and os.path.exists(config_path):
        saved = read_config(run_dir)
        # JSON turns tuples into lists; compare in that form.
        fresh = json.loads(json.dumps(config))
        changed = sorted(
            k
            for k in fresh
            if k != ENVIRONMENT_KEY and saved.get(k) != fresh[k]
        )
        for key in changed:
            logging.warning(
                "--resume keeps %s=%r from %s; ignoring the new value %r.",
                key,
                saved.get(key),
                config_path,
                fresh[key],
            )
        return
    write_config(run_dir, {**config, ENVIRONMENT_KEY: describe_environment()})


def describe_environment() -> dict:
    """What a run depends on besides its configuration.

    Returns:
        A JSON-serialisable dict: `python` and `packages` (the versions of
        tensorflow, keras, tensorflow-probability, numpy and uaf_tf; `None`
        for one not installed), `devices` (TF's physical devices, with the
        GPU model where TF reports it), `git` (`{"commit", "dirty"}` of the
        checkout `uaf_tf` is imported from, `dirty` meaning tracked files
        differ from the commit; `None` outside a git checkout or without
        git) and `argv` (`sys.argv`).
    """
    packages = {}
    for name in _PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    # The imported modules win over the metadata: they are what runs.
    packages["tensorflow"] = tf.__version__
    packages["keras"] = keras.__version__
    packages["numpy"] = np.__version__
    packages["uaf_tf"] = uaf_tf.__version__
    return {
        "python": platform.python_version(),
        "packages": packages,
        "devices": _describe_devices(),
        "git": git_state(os.path.dirname(os.path.abspath(uaf_tf.__file__))),
        "argv": list(sys.argv),
    }


def git_state(path: str) -> dict | None:
    """`{"commit": sha, "dirty": bool}` of the git checkout holding `path`.

    `None` when `path` is not in a git checkout, git is missing, or git
    does not answer within a few seconds: never raises.
    """

    def git(*args):
        return subprocess.run(
            ["git", "-C", path, *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=True,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def _describe_devices() -> list[dict]:
    devices = []
    for device in tf.config.list_physical_devices():
        entry = {"type": device.device_type, "name": device.name}
        if device.device_type == "GPU":
            details = tf.config.experimental.get_device_details(device)
            entry["model"] = details.get("device_name")
        devices.append(entry)
    return devices


def read_config(run_dir: str) -> dict:
    """Reads `run_dir/config.json`."""
    with open(os.path.join(run_dir, CONFIG_FILE)) as f:
        return json.load(f)


def save_model_spec(model: keras.Model, run_dir: str) -> str:
    """Writes `run_dir/model.json`, enough for `load_model` to rebuild it.

    The spec also records the model's input shape (`build_input_shape`) so the
    rebuilt model can be built before its weights are loaded.
    """
    os.makedirs(run_dir, exist_ok=True)
    spec = keras.saving.serialize_keras_object(model)
    path = os.path.join(run_dir, MODEL_FILE)
    with open(path, "w") as f:
        json.dump(spec, f, indent=2)
    return path


def load_model(run_dir: str, weights: str | None = "best") -> keras.Model:
    """Rebuilds the model of `run_dir` and loads its weights.

    Args:
        run_dir: a run directory holding `model.json`.
        weights: `"best"` loads `best.weights.h5`; a path loads that
            `.weights.h5` file; `None` leaves the fresh initialisation.

    Returns:
        The built `keras.Model`.
    """
    with open(os.path.join(run_dir, MODEL_FILE)) as f:
        spec = json.load(f)
    model = keras.saving.deserialize_keras_object(spec)
    _build(model, spec)
    if weights is not None:
        path = (
            os.path.join(run_dir, BEST_WEIGHTS_FILE)
            if weights == "best"
            else weights
        )
        model.load_weights(path)
    return model


def load_pretrained_backbone(run_dir: str) -> SequenceBackbone:
    """The backbone of a pretraining run, with its best weights.

    Args:
        run_dir: directory written by `run_pretraining`.

    Returns:
        The `SequenceBackbone` (built; trainable as loaded). The pretraining
        softmax head is dropped.
    """
    model = load_model(run_dir)
    backbone = getattr(model, "backbone", model)
    if not isinstance(backbone, SequenceBackbone):
        raise TypeError(
            f"{run_dir}/{MODEL_FILE} holds a {type(model).__name__} without a "
            "SequenceBackbone `backbone`; is it a pretraining run?"
        )
    return backbone


def copy_vocabularies(data_dir: str, run_dir: str) -> list[str]:
    """Copies the dataset's vocabularies and `dataset.json` into `run_dir`.

    Files missing from `data_dir` are skipped. Returns the copied names.
    """
    os.makedirs(run_dir, exist_ok=True)
    copied = []
    for name in VOCABULARY_FILES:
        source = os.path.join(data_dir, name)
        if tf.io.gfile.exists(source):
            tf.io.gfile.copy(source, os.path.join(run_dir, name), True)
            copied.append(name)
    return copied


def _build(model: keras.Model, spec: dict) -> None:
    """Builds a deserialised model so its weights exist before loading."""
    if model.built:
        return
    shape = spec.get("build_config", {}).get("input_shape")
    if shape is None:
        raise ValueError(
            "model.json has no `build_config.input_shape`; save the model "
            "after it was built."
        )
    model.build(tuple(shape))
