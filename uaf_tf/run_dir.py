"""Self-describing run directories: config, model spec, weights, vocabularies.

```
<run_dir>/config.json        resolved run configuration (`start_run`)
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

import datetime
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
from uaf_tf import config_flags
from uaf_tf import errors
from uaf_tf.data import dataset_info
from uaf_tf.models.sequence_backbone import SequenceBackbone
from uaf_tf.training import precision as precision_lib

CONFIG_FILE = "config.json"
MODEL_FILE = "model.json"
BEST_WEIGHTS_FILE = "best.weights.h5"
RESULTS_FILE = "results.json"
CHECKPOINT_DIR = "ckpt"
TENSORBOARD_DIR = "tb"
# The one key of config.json that `start_run` adds: how and where the run
# was started, not how it is configured (a flag preset skips it).
ENVIRONMENT_KEY = "environment"
# Key of config.json listing the option changes of resumed runs.
RESUME_HISTORY_KEY = "resume_history"
# Options a resumed run may change (`start_run`): how long and how fast it
# trains, how it logs and checkpoints, on which devices; not what it trains.
# A learning rate lowered on resume is the way past a diverged loss
# (`trainer`). The `strategy` may change because neither the checkpoint nor
# the batch order depends on it: the checkpoint holds one value per variable
# under every strategy, and each replica trains its slice of the same global
# batch (`--batch_size` stays), so a run resumed under another strategy
# continues the uninterrupted one (tests/training/distribute_test.py).
RESUMABLE_OPTIONS = (
    "epochs",
    "learning_rate",
    "log_every_steps",
    "checkpoint_every_steps",
    "max_checkpoints",
    "strategy",
)
_PACKAGES = ("tensorflow", "keras", "tensorflow-probability", "numpy")
_GIT_TIMEOUT_S = 5
VOCABULARY_FILES = (
    dataset_info.SOURCE_VOCAB_FILE,
    dataset_info.TARGET_VOCAB_FILE,
    dataset_info.DATASET_INFO_FILE,
)


# === Checks of the directories a run is given ===


def _path_error(field: str, path: str, reason: str):
    return config_flags.ConfigError(field, path, reason, is_requirement=False)


def _exists(path: str) -> bool:
    return tf.io.gfile.exists(path)


def _check_directory(path: str, field: str) -> None:
    if not path:
        raise _path_error(field, path, "is empty; give a directory")
    if not _exists(path):
        raise _path_error(field, path, "no such directory")
    if not tf.io.gfile.isdir(path):
        raise _path_error(field, path, "not a directory")


def is_run_dir(path: str) -> bool:
    """Whether `path` holds a run (its `config.json` or `model.json`)."""
    return any(
        _exists(os.path.join(path, name)) for name in (CONFIG_FILE, MODEL_FILE)
    )


def check_dataset_dir(
    path: str, splits: tuple[str, ...], *, field: str = "data_dir"
) -> dataset_info.DatasetInfo:
    """The `DatasetInfo` of a prepared dataset directory, or a clear error.

    Done before any model is built, so a wrong `--data_dir` costs no
    TensorFlow work and ends in one line naming the flag.

    Args:
        path: the directory (`--data_dir`).
        splits: the splits the run reads, e.g. `("pretrain/train",
            "pretrain/valid")`; each must be listed in `dataset.json` with
            all its files present, and the first (training) one non-empty.
        field: the config field (= flag) `path` came from.

    Raises:
        config_flags.ConfigError: `path` is missing, not a directory, a run
            directory, not a dataset (no `dataset.json`), unreadable, or
            lacks (files of) a split.
    """
    _check_directory(path, field)
    if is_run_dir(path):
        raise _path_error(
            field,
            path,
            "is a run directory, not a dataset; pass the directory "
            "launch/prepare_data.py built (the run's config.json names it)",
        )
    if not _exists(os.path.join(path, dataset_info.DATASET_INFO_FILE)):
        raise _path_error(
            field,
            path,
            f"not a dataset directory (no {dataset_info.DATASET_INFO_FILE}); "
            "build one with launch/prepare_data.py",
        )
    try:
        info = dataset_info.DatasetInfo.load(path)
    except (ValueError, TypeError) as error:  # JSON, keys, format version.
        raise _path_error(
            field,
            path,
            f"unreadable {dataset_info.DATASET_INFO_FILE}: "
            + " ".join(str(error).split()),
        ) from None
    for i, split in enumerate(splits):
        if split not in info.split_files:
            raise _path_error(
                field,
                path,
                f"has no {split} split (its {dataset_info.DATASET_INFO_FILE} "
                f"lists {sorted(info.split_files)})",
            )
        files = info.files(path, split)
        missing = [f for f in files if not _exists(f)]
        if missing:
            raise _path_error(
                field,
                path,
                f"{len(missing)} of the {len(files)} files of {split} listed "
                f"in {dataset_info.DATASET_INFO_FILE} are missing (first: "
                f"{missing[0]}); rebuild it with launch/prepare_data.py",
            )
        if i == 0 and info.split_sizes.get(split) == 0:
            raise _path_error(
                field, path, f"{split} is empty (0 examples): nothing to train"
            )
    return info


def check_pretraining_run(path: str, *, field: str = "pretrained") -> None:
    """Raises a clear error unless `path` is a finished-epoch pretraining run.

    A pretraining run directory holds `model.json` and `best.weights.h5`
    (written at its first epoch end), and its `config.json` says
    `"task": "pretrain"` (runs older than that key pass).

    Raises:
        config_flags.ConfigError: `path` is missing, a dataset directory, a
            fine-tuning run, or a run without `model.json` or
            `best.weights.h5`.
    """
    _check_directory(path, field)
    config_path = os.path.join(path, CONFIG_FILE)
    config = {}
    if _exists(config_path):
        try:
            config = read_config(path)
        except (OSError, ValueError) as error:
            raise _path_error(
                field, path, f"unreadable {CONFIG_FILE}: {error}"
            ) from None
    task = config.get("task") if isinstance(config, dict) else None
    if task not in (None, "pretrain"):
        reason = f"is a {task} run, not a pretraining run"
        if config.get("pretrained"):
            reason += f"; it started from --pretrained={config['pretrained']}"
        raise _path_error(field, path, reason)
    if not _exists(os.path.join(path, MODEL_FILE)):
        if _exists(os.path.join(path, dataset_info.DATASET_INFO_FILE)) and (
            not config
        ):
            reason = (
                "is a dataset directory, not a pretraining run; pass the run "
                "directory launch/pretrain.py wrote (e.g. "
                "checkpoints/pretrain-<dataset>)"
            )
        else:
            reason = (
                f"not a pretraining run (no {MODEL_FILE}); pass the run "
                "directory launch/pretrain.py wrote"
            )
        raise _path_error(field, path, reason)
    if not _exists(os.path.join(path, BEST_WEIGHTS_FILE)):
        raise _path_error(
            field,
            path,
            f"has no {BEST_WEIGHTS_FILE}: the pretraining run has not "
            "finished an epoch (continue it with launch/pretrain.py --resume "
            f"--run_dir={path})",
        )


# === Writing a run directory ===


def write_json(path: str, value, **dump_kwargs) -> str:
    """Writes `value` as JSON to `path` atomically: a reader (or a crash)
    sees the old file or the new one, never a part (tmp file + rename)."""
    tmp_path = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp_path, "w") as f:
            json.dump(value, f, **dump_kwargs)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
    return path


def write_config(run_dir: str, config: dict) -> str:
    """Writes `config` (JSON-serialisable) to `run_dir/config.json`."""
    os.makedirs(run_dir, exist_ok=True)
    return write_json(
        os.path.join(run_dir, CONFIG_FILE), config, indent=2, sort_keys=True
    )


class RunExistsError(errors.UserError, FileExistsError):
    """The run directory already holds a run and `resume` was not asked."""


def start_run(
    run_dir: str,
    config: dict,
    *,
    resume: bool,
    resumable: tuple[str, ...] = RESUMABLE_OPTIONS,
) -> dict:
    """Claims `run_dir` for a run with `config`, before anything is written.

    A fresh run writes `config` to `config.json`, plus the key
    `"environment"` (`describe_environment()`: versions, devices, git
    commit, command line), which replaces any value `config` has there.

    A directory that already holds checkpoints belongs to an earlier run:
    without `resume` it is refused (nothing in it is touched). With
    `resume`, its `config.json` describes the run, and wins: of the values
    `config` changes, only the options named in `resumable` (by their flag
    name, nested or not; default `RESUMABLE_OPTIONS`: how long and how fast
    the run trains, how it logs and checkpoints) take the new value, each
    change logged and appended to `config.json`'s `"resume_history"` as
    `{"time", "argv", "changed": {name: {"from": old, "to": new}}}`; every
    other changed value is logged as ignored and the saved one is used.

    Args:
        run_dir: the run directory (created).
        config: the run's JSON-serialisable config (nested dicts allowed).
        resume: continue the run in `run_dir`, if it holds one.
        resumable: option names a resumed run may change.

    Returns:
        The config the run must use: `config`, or for a resumed run
        `config` with the saved value of every option not in `resumable`.

    Raises:
        RunExistsError: `run_dir` holds checkpoints and `resume` is False.
        config_flags.ConfigError: `run_dir` is a file or a dataset
            directory.
    """
    if _exists(run_dir) and not tf.io.gfile.isdir(run_dir):
        raise _path_error("run_dir", run_dir, "exists and is not a directory")
    if _exists(
        os.path.join(run_dir, dataset_info.DATASET_INFO_FILE)
    ) and not is_run_dir(run_dir):
        raise _path_error(
            "run_dir",
            run_dir,
            "is a dataset directory; a run needs a directory of its own",
        )
    checkpoint_dir = os.path.join(run_dir, CHECKPOINT_DIR)
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest and not resume:
        raise RunExistsError(
            f"{run_dir} already holds a run (checkpoint {latest}). Pass "
            "--resume to continue it, or choose another --run_dir."
        )
    if latest and _exists(os.path.join(run_dir, CONFIG_FILE)):
        return _resume_config(run_dir, config, resumable)
    write_config(run_dir, {**config, ENVIRONMENT_KEY: describe_environment()})
    return config


def _resume_config(run_dir: str, config: dict, resumable) -> dict:
    """`start_run` of a run that holds checkpoints and a config.json."""
    saved = read_config(run_dir)
    # JSON turns tuples into lists; compare and return in that form.
    effective = json.loads(json.dumps(config))
    saved_leaves = dict(_config_leaves(saved))
    changed = {}
    for name, (holder, key) in _config_leaves(effective):
        if name not in saved_leaves:
            continue  # An option newer than the run: its default applies.
        saved_holder, saved_key = saved_leaves[name]
        old, new = saved_holder[saved_key], holder[key]
        if old == new:
            continue
        if name in resumable:
            changed[name] = {"from": old, "to": new}
            saved_holder[saved_key] = new
            logging.info(
                "--resume changes %s from %r to %r (recorded in %s).",
                name,
                old,
                new,
                CONFIG_FILE,
            )
        else:
            holder[key] = old
            logging.warning(
                "--resume keeps %s=%r from %s; ignoring the new value %r "
                "(only %s may change when a run resumes).",
                name,
                old,
                os.path.join(run_dir, CONFIG_FILE),
                new,
                ", ".join(resumable),
            )
    if changed:
        saved.setdefault(RESUME_HISTORY_KEY, []).append(
            {
                "time": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds"
                ),
                "argv": list(sys.argv),
                "changed": changed,
            }
        )
        write_config(run_dir, saved)
    return effective


def _config_leaves(config: dict):
    """`(name, (dict, key))` of each option of a config dict, nested dicts
    (e.g. `training`) flattened to their own keys, as the flags name them;
    the environment and the resume history are not options."""
    for key, value in config.items():
        if key in (ENVIRONMENT_KEY, RESUME_HISTORY_KEY):
            continue
        if isinstance(value, dict):
            yield from _config_leaves(value)
        else:
            yield key, (config, key)


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
        "cpu": cpu_model(),
        "git": git_state(os.path.dirname(os.path.abspath(uaf_tf.__file__))),
        "argv": list(sys.argv),
    }


def cpu_model() -> str:
    """The CPU's model name (`/proc/cpuinfo`, else `platform.processor()`
    or the machine type), e.g. `"AMD EPYC"`; never raises."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


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
    return write_json(os.path.join(run_dir, MODEL_FILE), spec, indent=2)


def load_model(
    run_dir: str, weights: str | None = "best", precision: str | None = None
) -> keras.Model:
    """Rebuilds the model of `run_dir` and loads its weights.

    Args:
        run_dir: a run directory holding `model.json`.
        weights: `"best"` loads `best.weights.h5`; a path loads that
            `.weights.h5` file; `None` leaves the fresh initialisation.
        precision: None keeps the saved layers' dtype policies; else
            `"float32"` or `"mixed_bfloat16"` rebuilds every float layer
            under it (`training.precision.respec`; same weights).

    Returns:
        The built `keras.Model`.
    """
    with open(os.path.join(run_dir, MODEL_FILE)) as f:
        spec = json.load(f)
    if precision is not None:
        spec = precision_lib.respec(spec, precision)
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


def load_pretrained_backbone(
    run_dir: str, precision: str | None = None
) -> SequenceBackbone:
    """The backbone of a pretraining run, with its best weights.

    Args:
        run_dir: directory written by `run_pretraining`.
        precision: None (as saved), `"float32"` or `"mixed_bfloat16"`:
            the dtype policy of the backbone's layers (`load_model`).

    Returns:
        The `SequenceBackbone` (built; trainable as loaded). The pretraining
        softmax head is dropped.
    """
    model = load_model(run_dir, precision=precision)
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
            # Copied then renamed, like every file of a run directory.
            target = os.path.join(run_dir, name)
            tmp_target = f"{target}.tmp-{os.getpid()}"
            tf.io.gfile.copy(source, tmp_target, True)
            tf.io.gfile.rename(tmp_target, target, overwrite=True)
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
