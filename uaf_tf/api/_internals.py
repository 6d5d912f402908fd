"""Everything `uaf_tf.api` uses from the rest of the package, in one place.

The other `uaf_tf.api` modules import no `uaf_tf` module but this one, so
when a builder, config, task or file name elsewhere is renamed or moved,
this file is the one to adapt. It holds no logic of its own beyond
translating the API's calls into those of the library:

- datasets: `builders.build_dataset` with its `WriteOptions`,
  `DatasetInfo`, the file names;
- configs: `PretrainConfig` / `FinetuneConfig`, built through
  `config_flags` (so nested config fields are set by their flat names,
  exactly as flags and `config.json` presets set them);
- runs: `run_pretraining` / `run_finetuning`, `run_dir.load_model`, the
  run directory's file names, the tasks' `evaluate`;
- inference: the recommender's call contract (`user_embedding`, `policy`,
  `score_all_items`) and serving's history encoding and id lookup.
"""

import dataclasses
import inspect
import os

from absl import flags

from uaf_tf import config_flags
from uaf_tf import run_dir as run_dir_lib
from uaf_tf.data import dataset_info
from uaf_tf.data.preparation import builders
from uaf_tf.data.preparation import synthetic
from uaf_tf.data.preparation.write_options import WriteOptions
from uaf_tf.models import uaf_recommender
from uaf_tf.serving import history_encoding
from uaf_tf.serving import id_lookup
from uaf_tf.serving import saved_model_export
from uaf_tf.serving import signature_keys
from uaf_tf.training import finetune as finetune_lib
from uaf_tf.training import pretrain as pretrain_lib
from uaf_tf.training import profile as profile_lib

# === Files ===
CONFIG_FILE = run_dir_lib.CONFIG_FILE
MODEL_FILE = run_dir_lib.MODEL_FILE
BEST_WEIGHTS_FILE = run_dir_lib.BEST_WEIGHTS_FILE
RESULTS_FILE = run_dir_lib.RESULTS_FILE
CHECKPOINT_DIR = run_dir_lib.CHECKPOINT_DIR
DATASET_INFO_FILE = dataset_info.DATASET_INFO_FILE
STATS_FILE = dataset_info.STATS_FILE
SOURCE_VOCAB_FILE = dataset_info.SOURCE_VOCAB_FILE
TARGET_VOCAB_FILE = dataset_info.TARGET_VOCAB_FILE

# === Run kinds (`config.json`'s "task") and their evaluation splits ===
PRETRAIN = "pretrain"
FINETUNE = "finetune"
PROFILE = "profile"
SPLITS = {
    PRETRAIN: dataset_info.PRETRAIN_SPLITS,
    FINETUNE: dataset_info.FINETUNE_SPLITS,
    PROFILE: (profile_lib.TRAIN, profile_lib.VALID, profile_lib.TEST),
}
DEFAULT_SPLIT = {PRETRAIN: "valid", FINETUNE: "test", PROFILE: "test"}

DatasetInfo = dataset_info.DatasetInfo
DATASET_KINDS = tuple(sorted(builders.BUILDERS))
# Options that go into the `WriteOptions` every builder takes; the others
# are the builder's own inputs.
WRITE_OPTIONS = tuple(f.name for f in dataclasses.fields(WriteOptions))
# Builders that take `**kwargs`, and what they pass them to.
_FORWARDED_TO = {
    "movielens-100k": builders.build_movielens_release,
    "movielens-1m": builders.build_movielens_release,
    "synthetic": synthetic.PlantedConfig,
}
# Parameters the builders set themselves.
_NOT_INPUTS = ("out_dir", "options", "release", *WRITE_OPTIONS)

DEFAULT_METHOD = finetune_lib.FinetuneConfig.__dataclass_fields__[
    "method"
].default
DEFAULT_PROFILE_LABEL = profile_lib.ProfileConfig.__dataclass_fields__[
    "profile_label"
].default

# === Inference ===
USER_EMBEDDING = uaf_recommender.USER_EMBEDDING
POLICY = uaf_recommender.POLICY
encode_history = history_encoding.encode_history
IdLookup = id_lookup.IdLookup
check_top_k = saved_model_export.check_top_k
# Dropped from a history before it is encoded (rows of a batch are padded
# to one length with it), as the serving signature does.
PADDING_TOKEN = signature_keys.PADDING_TOKEN


def _inputs(kind: str) -> tuple[set, set]:
    """`(accepted, required)` input names of the builder of `kind`."""
    accepted, required = set(), set()
    for function in (builders.BUILDERS[kind], _FORWARDED_TO.get(kind)):
        if function is None:
            continue
        for name, param in inspect.signature(function).parameters.items():
            if name in _NOT_INPUTS or param.kind in (
                param.VAR_POSITIONAL,
                param.VAR_KEYWORD,
            ):
                continue
            accepted.add(name)
            if param.default is param.empty:
                required.add(name)
    return accepted, required


def build_dataset(kind: str, out_dir: str, options: dict) -> dict:
    """Builds dataset `kind` into `out_dir`; returns its stats.

    `options` holds `WriteOptions` fields and the builder's own inputs.

    Raises:
        ValueError: unknown `kind`.
        TypeError: unknown or missing options (all of them named), before
            anything is read or downloaded.
    """
    if kind not in DATASET_KINDS:
        raise ValueError(
            f"`kind` must be one of {DATASET_KINDS}. Received: kind={kind!r}"
        )
    accepted, required = _inputs(kind)
    unknown = sorted(set(options) - accepted - set(WRITE_OPTIONS))
    missing = sorted(required - set(options))
    if unknown or missing:
        raise TypeError(
            f"Dataset kind {kind!r} takes the write options "
            f"{sorted(WRITE_OPTIONS)} and the inputs {sorted(accepted)}, of "
            f"which it needs {sorted(required) or 'none'}. Received "
            f"unknown: {unknown}, missing: {missing}"
        )
    write = {k: v for k, v in options.items() if k in WRITE_OPTIONS}
    if write.get("source_vocab") is not None:  # A `Run` or a path.
        write["source_vocab"] = os.fspath(write["source_vocab"])
    inputs = {k: v for k, v in options.items() if k not in WRITE_OPTIONS}
    return builders.build_dataset(
        kind, out_dir, WriteOptions(**write), **inputs
    )


# === Configs ===


def _config(config_cls: type, values: dict, fixed: tuple = ()):
    """`config_cls` from `{flat option name: value}`, validated.

    `fixed` names the options the API sets from its own arguments (left
    out of the list of valid options an error shows). Goes through
    `config_flags` (a private `FlagValues`, no argv parsed), so options
    are the flag names: nested config fields are set by their flat names,
    and JSON lists become tuples.
    """
    names = {spec.name for spec in config_flags.flag_specs(config_cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise TypeError(
            f"Unknown {config_cls.__name__} option(s) {unknown}; the options "
            f"are {sorted(names - set(fixed))}. Received: {unknown}"
        )
    flat = config_flags.flatten_config_dict(config_cls, values)
    flag_values = flags.FlagValues()
    config_flags.define_config_flags(config_cls, flag_values)
    flag_values(["uaf_tf.api"])
    return config_flags.config_from_flags(
        config_cls, flag_values, defaults=flat, config_errors=True
    )


def pretrain_config(data_dir: str, overrides: dict):
    return _config(
        pretrain_lib.PretrainConfig,
        {**overrides, "data_dir": data_dir},
        fixed=("data_dir",),
    )


def finetune_config(
    data_dir: str, pretrained: str, method: str, overrides: dict
):
    return _config(
        finetune_lib.FinetuneConfig,
        {
            **overrides,
            "data_dir": data_dir,
            "pretrained": pretrained,
            "method": method,
        },
        fixed=("data_dir", "pretrained", "method"),
    )


def profile_config(
    data_dir: str, pretrained: str, label: str, method: str, overrides: dict
):
    return _config(
        profile_lib.ProfileConfig,
        {
            **overrides,
            "data_dir": data_dir,
            "pretrained": pretrained,
            "profile_label": label,
            "method": method,
        },
        fixed=("data_dir", "pretrained", "profile_label", "method"),
    )


def config_from_run(kind: str, saved: dict, **changes):
    """A run's config object from its `config.json` values.

    Keys that are not options (`task`, `environment`, ...) are dropped.
    """
    config_cls = _CLS[kind]
    top_level = {spec.path[0] for spec in config_flags.flag_specs(config_cls)}
    values = config_flags.flatten_config_dict(
        config_cls,
        saved,
        ignore=tuple(key for key in saved if key not in top_level),
    )
    return _config(config_cls, {**values, **changes})


_CLS = {
    PRETRAIN: pretrain_lib.PretrainConfig,
    FINETUNE: finetune_lib.FinetuneConfig,
    PROFILE: profile_lib.ProfileConfig,
}

# === Runs ===


def run(kind: str, config, run_dir: str, resume: bool) -> dict:
    """Trains a run (`run_pretraining`, `run_finetuning` or
    `run_profile_prediction`)."""
    if kind == PRETRAIN:
        return pretrain_lib.run_pretraining(config, run_dir, resume=resume)
    if kind == PROFILE:
        return profile_lib.run_profile_prediction(
            config, run_dir, resume=resume
        )
    return finetune_lib.run_finetuning(config, run_dir, resume=resume)


def load_model(run_dir: str):
    """The run's model with `best.weights.h5` loaded."""
    return run_dir_lib.load_model(run_dir)


def evaluate(kind: str, config, model, split: str) -> dict:
    """The metrics training reports for `split`, with `model`'s weights.

    The task that trained the run computes them (same batches, same
    candidates, same code), so a reloaded best model reproduces the run's
    `results.json`.
    """
    if kind == PROFILE:
        return profile_lib.evaluate_profile_run(config, model, split)
    if kind == PRETRAIN:
        task = pretrain_lib.PretrainTask.from_data_dir(
            model,
            config.data_dir,
            config.training.batch_size,
            seed=config.training.seed,
            eval_batch_size=config.training.eval_batch_size,
        )
    else:
        info = DatasetInfo.load(config.data_dir)
        task = finetune_lib.FinetuneTask(config, model, info)
    return task.evaluate(split)
