"""Prepare or open a dataset directory from Python: `prepare_dataset`,
`open_dataset`, and the `Dataset` they return."""

import dataclasses
import json
import os

from uaf_tf.api import _internals

DATASET_KINDS = _internals.DATASET_KINDS


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A prepared dataset directory (layout: `uaf_tf/data/dataset_info.py`).

    Pass it wherever a dataset directory is expected (`uaf_tf.pretrain`,
    `uaf_tf.finetune`, `os.fspath`).

    Attributes:
        path: the directory.
        info: its `DatasetInfo` (`dataset.json`): `seq_len`,
            `num_source_ids`, `num_target_ids`, `split_sizes`, ...
        stats: its `stats.json` (users, exclusions, unknown items, bad
            lines, histograms); `{}` if the file is absent.
    """

    path: str
    info: _internals.DatasetInfo
    stats: dict

    def __fspath__(self) -> str:
        return self.path


def open_dataset(data_dir: str | os.PathLike) -> Dataset:
    """Opens a dataset directory written by `prepare_dataset` (or
    `launch/prepare_data.py`).

    Raises:
        FileNotFoundError: `data_dir` holds no `dataset.json`; the message
            names the path.
    """
    path = os.fspath(data_dir)
    info_path = os.path.join(path, _internals.DATASET_INFO_FILE)
    if not os.path.isfile(info_path):
        raise FileNotFoundError(
            f"{path} is not a dataset directory: {info_path} is missing. "
            "Write one with uaf_tf.prepare_dataset(kind, out_dir, ...)."
        )
    stats_path = os.path.join(path, _internals.STATS_FILE)
    stats = {}
    if os.path.isfile(stats_path):
        with open(stats_path) as f:
            stats = json.load(f)
    return Dataset(path, _internals.DatasetInfo.load(path), stats)


def prepare_dataset(
    kind: str, out_dir: str | os.PathLike, **options
) -> Dataset:
    """Builds a dataset directory for pretraining and UAF fine-tuning.

    The same builders as `launch/prepare_data.py --dataset=<kind>`; an
    existing directory is written over.

    Args:
        kind: one of `DATASET_KINDS`: `"synthetic"` (planted data,
            `uaf_tf.data.preparation.synthetic`), `"movielens-100k"` and
            `"movielens-1m"` (downloaded and cached), `"movielens"`
            (`ratings_file=` a GroupLens file), `"original"`
            (`pretrain_file=`, `finetune_file=` the original UAF CSVs),
            `"interactions"` (`source_log=`, `target_log=`, `columns=`,
            `delimiter=`, `has_header=`).
        out_dir: directory to write.
        **options: the `WriteOptions` fields (`seq_len`, `seed`,
            `num_shards`, `num_eval_negatives`, `train_fraction`,
            `source_vocab`, ...) and the builder's own inputs (above; for
            synthetic `num_users`, `num_source_items`, `num_target_items`,
            ...). Defaults are the builder's. `source_vocab=` a pretraining
            run (or its `source_vocab.txt`) builds the dataset with that
            run's source vocabulary, so the run can be fine-tuned on it.

    Returns:
        The `Dataset` written.

    Raises:
        ValueError: an unknown `kind`.
        TypeError: unknown or missing options (all named), raised before
            anything is read, downloaded or written.

    Example:
    ```python
    data = uaf_tf.prepare_dataset("synthetic", "/tmp/data", num_users=500)
    data.info.split_sizes  # {"finetune/test": ..., "pretrain/train": ...}
    data = uaf_tf.prepare_dataset("movielens-100k", "data/ml100k")
    # A new target domain for an existing pretraining run:
    data = uaf_tf.prepare_dataset(
        "interactions", "data/books", source_log="movies.csv",
        target_log="books.csv", source_vocab=pretrained_run,
    )
    ```
    """
    path = os.fspath(out_dir)
    _internals.build_dataset(kind, path, options)
    return open_dataset(path)
