"""Exports a fine-tuned run directory as a TF Serving model version."""

import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from uaf_tf import errors
from uaf_tf import run_dir as run_dir_lib
from uaf_tf.data import dataset_info
from uaf_tf.serving import server_config
from uaf_tf.serving import signature_keys as keys
from uaf_tf.serving import versioned_dir
from uaf_tf.serving import warmup
from uaf_tf.serving.constant_weights import check_foldable
from uaf_tf.serving.id_lookup import count_vocab_lines
from uaf_tf.serving.saved_model_export import DEFAULT_TOP_K
from uaf_tf.serving.saved_model_export import check_top_k
from uaf_tf.serving.saved_model_export import export_saved_model

DEFAULT_MODEL_NAME = "uaf"
EXPORT_INFO_FILE = "uaf_export.json"  # in assets.extra/, for provenance


def read_run_dataset_info(run_dir: str) -> dataset_info.DatasetInfo:
    """The `DatasetInfo` a run directory was trained on.

    Read from `run_dir/dataset.json` (`DatasetInfo.load`, which also checks
    the format version) and checked against the run's vocabulary files
    (vocabulary + padding = number of ids).
    """
    path = os.path.join(run_dir, dataset_info.DATASET_INFO_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: `--run_dir` must be a fine-tuned run directory."
        )
    info = dataset_info.DatasetInfo.load(run_dir)
    for vocab_file, field in (
        (dataset_info.SOURCE_VOCAB_FILE, "num_source_ids"),
        (dataset_info.TARGET_VOCAB_FILE, "num_target_ids"),
    ):
        num_ids = getattr(info, field)
        num_lines = count_vocab_lines(os.path.join(run_dir, vocab_file))
        if num_lines + 1 != num_ids:
            raise ValueError(
                f"{os.path.join(run_dir, vocab_file)} has {num_lines} ids but "
                f"{path} says {field}={num_ids} (vocabulary + padding)."
            )
    return info


FINETUNE_TASK = "finetune"  # config.json "task" of a fine-tuned run


def check_exportable_run(run_dir: str, weights: str = "best") -> None:
    """Raises `UserError` unless `run_dir` is a finished fine-tuned run.

    Checked before anything is loaded or created, so a wrong `--run_dir`
    (a pretraining run, a dataset directory, a typo) is one line naming
    the run and why, and leaves no `exports/<model_name>/` behind.
    """
    where = f"--run_dir={run_dir}"
    if not os.path.isdir(run_dir):
        raise errors.UserError(f"{where}: no such directory.")
    config_path = os.path.join(run_dir, run_dir_lib.CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise errors.UserError(
            f"{where}: not a run directory ({run_dir_lib.CONFIG_FILE} is "
            "missing); pass a fine-tuned run (launch/finetune.py writes one)."
        )
    task = run_dir_lib.read_config(run_dir).get("task")
    if task != FINETUNE_TASK:
        raise errors.UserError(
            f"{where}: a {task!r} run, not a fine-tuned one; only fine-tuned "
            "runs export (they hold the target vocabulary and scoring "
            "head). Fine-tune it first: launch/finetune.py "
            f"--pretrained={run_dir}"
        )
    needed = [
        run_dir_lib.MODEL_FILE,
        *run_dir_lib.VOCABULARY_FILES,
    ]
    if weights == "best":
        needed.append(run_dir_lib.BEST_WEIGHTS_FILE)
    missing = [n for n in needed if not os.path.isfile(f"{run_dir}/{n}")]
    if weights != "best" and not os.path.isfile(weights):
        missing.append(f"--weights={weights}")
    if missing:
        raise errors.UserError(
            f"{where}: not a finished fine-tuned run: missing "
            f"{', '.join(missing)}."
        )


def check_export(export_dir: str, examples) -> None:
    """Loads the SavedModel and runs every example request through it.

    Raises if a signature fails, returns the wrong number of rows, or
    returns the padding id "" in `top_k_items` anywhere but in the slots
    left over when fewer than K unseen items remain, so a broken export is
    never published.
    """
    loaded = tf.saved_model.load(export_dir)
    for signature_name, inputs in examples:
        fn = loaded.signatures[signature_name]
        outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        rows = len(inputs[keys.SOURCE_ITEMS])
        for name, value in outputs.items():
            if value.shape[0] != rows:
                raise ValueError(
                    f"Exported {signature_name} returned {value.shape[0]} "
                    f"rows of {name} for {rows} rows of input."
                )
        if keys.TOP_K_ITEMS in outputs:
            top_items = outputs[keys.TOP_K_ITEMS].numpy()
            left_over = (
                outputs[keys.TOP_K_SCORES].numpy() == keys.UNKNOWN_ITEM_SCORE
            )
            if np.any((top_items == b"") & ~left_over):
                raise ValueError(
                    f"Exported {signature_name} returned the padding id in "
                    f"{keys.TOP_K_ITEMS}: {top_items}"
                )


def export_run(
    run_dir: str,
    export_base: str,
    model_name: str = DEFAULT_MODEL_NAME,
    version: int | None = None,
    top_k: int = DEFAULT_TOP_K,
    overwrite: bool = False,
    weights: str = "best",
    model=None,
    exclude_history: bool = True,
    batching: server_config.BatchingConfig | None = None,
    server_base_path: str | None = None,
    jit_compile: bool = False,
    constant_weights: bool = False,
) -> str:
    """Exports a fine-tuned run to `<export_base>/<model_name>/<version>/`.

    Loads the run's model (`uaf_tf.run_dir.load_model`), writes the
    SavedModel (`saved_model_export`) with the run's vocabularies as assets,
    the warm-up requests and `assets.extra/uaf_export.json`, replays the
    warm-up requests against the written SavedModel, and only then publishes
    the version by an atomic rename (`versioned_dir`). Then it writes the
    TF Serving model config, batching parameters and serve script beside
    the model directory (`server_config`); the warm-up requests cover the
    batching configuration's batch sizes.

    Args:
        run_dir: str, a fine-tuned run directory (any method or backbone).
        export_base: str, local directory TF Serving watches models under.
        model_name: str, the TF Serving model name.
        version: int, defaults to `versioned_dir.timestamp_version()`.
        top_k: int, K of the `serving_default` signature.
        overwrite: bool, replace an existing version.
        weights: str, which checkpoint of the run to load ("best").
        model: optional already-loaded model of this run (skips loading).
        exclude_history: bool, default of `serving_default`'s
            `exclude_history` input (see `saved_model_export`).
        batching: `server_config.BatchingConfig`; default: its defaults.
        server_base_path: the model directory as the server will see it,
            written into the model config; default: the local path.
        jit_compile: bool, XLA-compile the model's forward pass in the
            signatures (`saved_model_export.build_export_archive`); the
            serve script then passes `--xla_cpu_compilation_enabled=true`.
        constant_weights: bool, fold the forward pass's weights into the
            signatures as constants (`saved_model_export`): faster
            requests, same SavedModel size; refused (`UserError`) over
            1 GiB of weights.

    Returns:
        str, the published version directory.
    """
    # Every check a user can fail comes before anything is created.
    check_exportable_run(run_dir, weights)
    if version is None:
        version = versioned_dir.timestamp_version()
    try:
        final_dir = versioned_dir.version_dir(export_base, model_name, version)
    except ValueError as error:
        raise errors.UserError(f"--model_name/--version: {error}") from error
    if os.path.exists(final_dir) and not overwrite:
        raise errors.UserError(
            f"Version directory {final_dir} already exists; choose another "
            "--version or pass --overwrite."
        )
    info = read_run_dataset_info(run_dir)
    try:
        check_top_k(top_k, info.num_target_ids - 1)  # before any loading
    except ValueError as error:
        raise errors.UserError(f"--top_k={top_k}: {error}") from error
    source_vocab = os.path.join(run_dir, dataset_info.SOURCE_VOCAB_FILE)
    target_vocab = os.path.join(run_dir, dataset_info.TARGET_VOCAB_FILE)
    if model is None:
        model = run_dir_lib.load_model(run_dir, weights=weights)
    if constant_weights:
        try:
            check_foldable(model.weights)
        except ValueError as error:
            raise errors.UserError(f"--constant_weights: {error}") from error
    batching = batching or server_config.BatchingConfig()
    examples = warmup.warmup_examples(
        source_vocab, target_vocab, info.seq_len, batching.batch_sizes
    )

    with versioned_dir.atomic_version_dir(
        export_base, model_name, version, overwrite=overwrite
    ) as tmp_dir:
        export_saved_model(
            model,
            tmp_dir,
            source_vocab,
            target_vocab,
            info.seq_len,
            top_k,
            exclude_history,
            jit_compile,
            constant_weights,
        )
        warmup.write_warmup_requests(tmp_dir, model_name, examples)
        _write_export_info(
            tmp_dir,
            run_dir,
            weights,
            top_k,
            info,
            exclude_history,
            batching,
            jit_compile,
            constant_weights,
        )
        check_export(tmp_dir, examples)
    server_config.write_server_files(
        export_base,
        model_name,
        batching,
        server_base_path,
        xla_cpu=jit_compile,
    )
    logging.info("Exported %s to %s", run_dir, final_dir)
    return final_dir


def _write_export_info(
    export_dir,
    run_dir,
    weights,
    top_k,
    info,
    exclude_history,
    batching,
    jit_compile,
    constant_weights,
):
    method = None
    if os.path.exists(os.path.join(run_dir, run_dir_lib.CONFIG_FILE)):
        method = run_dir_lib.read_config(run_dir).get("method")
    export_info = {
        "run_dir": os.path.abspath(run_dir),
        "weights": weights,
        "method": method,
        "top_k": top_k,
        "exclude_history_default": bool(exclude_history),
        "jit_compile": bool(jit_compile),
        "constant_weights": bool(constant_weights),
        "warmup_batch_sizes": list(batching.batch_sizes),
        "signatures": [keys.SERVE, keys.SCORE_ITEMS],
        "unknown_item_score": keys.UNKNOWN_ITEM_SCORE,
        "seq_len": info.seq_len,
        "num_source_ids": info.num_source_ids,
        "num_target_ids": info.num_target_ids,
    }
    extra_dir = os.path.join(export_dir, warmup.WARMUP_DIR)
    os.makedirs(extra_dir, exist_ok=True)
    with open(os.path.join(extra_dir, EXPORT_INFO_FILE), "w") as f:
        json.dump(export_info, f, indent=2, sort_keys=True)
