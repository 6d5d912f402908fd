"""Exports a fine-tuned run directory as a TF Serving model version."""

import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from uaf_tf import run_dir as run_dir_lib
from uaf_tf.data import dataset_info
from uaf_tf.serving import signature_keys as keys
from uaf_tf.serving import versioned_dir
from uaf_tf.serving import warmup
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


def check_export(export_dir: str, examples) -> None:
    """Loads the SavedModel and runs every example request through it.

    Raises if a signature fails or returns a padding id in `top_k_items`,
    so a broken export is never published.
    """
    loaded = tf.saved_model.load(export_dir)
    for signature_name, inputs in examples:
        fn = loaded.signatures[signature_name]
        outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        if keys.TOP_K_ITEMS in outputs:
            top_items = outputs[keys.TOP_K_ITEMS].numpy()
            if np.any(top_items == b""):
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
) -> str:
    """Exports a fine-tuned run to `<export_base>/<model_name>/<version>/`.

    Loads the run's model (`uaf_tf.run_dir.load_model`), writes the
    SavedModel (`saved_model_export`) with the run's vocabularies as assets,
    the warm-up requests and `assets.extra/uaf_export.json`, replays the
    warm-up requests against the written SavedModel, and only then publishes
    the version by an atomic rename (`versioned_dir`).

    Args:
        run_dir: str, a fine-tuned run directory (any method or backbone).
        export_base: str, local directory TF Serving watches models under.
        model_name: str, the TF Serving model name.
        version: int, defaults to `versioned_dir.timestamp_version()`.
        top_k: int, K of the `serving_default` signature.
        overwrite: bool, replace an existing version.
        weights: str, which checkpoint of the run to load ("best").
        model: optional already-loaded model of this run (skips loading).

    Returns:
        str, the published version directory.
    """
    if version is None:
        version = versioned_dir.timestamp_version()
    final_dir = versioned_dir.version_dir(export_base, model_name, version)
    if os.path.exists(final_dir) and not overwrite:
        raise FileExistsError(
            f"Version directory {final_dir} already exists; choose another "
            "`--version` or pass `--overwrite`."
        )
    info = read_run_dataset_info(run_dir)
    check_top_k(top_k, info.num_target_ids - 1)  # before any loading
    source_vocab = os.path.join(run_dir, dataset_info.SOURCE_VOCAB_FILE)
    target_vocab = os.path.join(run_dir, dataset_info.TARGET_VOCAB_FILE)
    if model is None:
        model = run_dir_lib.load_model(run_dir, weights=weights)
    examples = warmup.warmup_examples(source_vocab, target_vocab, info.seq_len)

    with versioned_dir.atomic_version_dir(
        export_base, model_name, version, overwrite=overwrite
    ) as tmp_dir:
        export_saved_model(
            model, tmp_dir, source_vocab, target_vocab, info.seq_len, top_k
        )
        warmup.write_warmup_requests(tmp_dir, model_name, examples)
        _write_export_info(tmp_dir, run_dir, weights, top_k, info)
        check_export(tmp_dir, examples)
    logging.info("Exported %s to %s", run_dir, final_dir)
    return final_dir


def _write_export_info(export_dir, run_dir, weights, top_k, info):
    method = None
    if os.path.exists(os.path.join(run_dir, run_dir_lib.CONFIG_FILE)):
        method = run_dir_lib.read_config(run_dir).get("method")
    export_info = {
        "run_dir": os.path.abspath(run_dir),
        "weights": weights,
        "method": method,
        "top_k": top_k,
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
