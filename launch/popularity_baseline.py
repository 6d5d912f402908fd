"""Ranks target items by training-split popularity: the floor any model
must beat.

    python launch/popularity_baseline.py --data_dir=data/movielens-100k

Scores every target item by how often it is a positive in `finetune/train`,
then reports the same protocol-named metrics as `launch/finetune.py` on the
valid and test splits (`sampled/`: the stored 1 + 99 candidates; `full/`: all
target items). Ties (items never seen in training) are broken by the
pessimistic rule of `uaf_tf.metrics`, so an unseen positive ranks last.
"""

import json

import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from uaf_tf import metrics
from uaf_tf.data import dataset_info
from uaf_tf.data import pipelines

_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Dataset directory made by launch/prepare_data.py."
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", 1024, "Evaluation batch size (memory only)."
)


def popularity_results(data_dir: str, batch_size: int = 1024) -> dict:
    """`{"valid": {...}, "test": {...}}` metrics of popularity ranking."""
    info = dataset_info.DatasetInfo.load(data_dir)
    counts = np.zeros([info.num_target_ids], np.float32)
    train = pipelines.finetune_train_dataset(data_dir, batch_size, seed=0)
    for batch in train:
        np.add.at(counts, batch[dataset_info.TARGET].numpy(), 1.0)
    popularity = tf.constant(counts)
    results = {}
    for split in ("valid", "test"):
        accumulator = metrics.MeanAccumulator()
        for batch in pipelines.eval_dataset(data_dir, split, batch_size):
            candidates = batch[dataset_info.CANDIDATES]
            sampled = tf.gather(popularity, candidates)  # [B, 1 + n_neg]
            values = metrics.metrics_from_ranks(
                metrics.rank_among_candidates(sampled), metrics.SAMPLED
            )
            every_item = tf.tile(
                popularity[None, :], [tf.shape(candidates)[0], 1]
            )  # [B, T]
            values.update(
                metrics.metrics_from_ranks(
                    metrics.rank_among_all_items(
                        every_item, batch[dataset_info.TARGET]
                    ),
                    metrics.FULL,
                )
            )
            accumulator.update(values)
        results[split] = accumulator.result()
    return results


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not _DATA_DIR.value:
        raise app.UsageError("--data_dir is required.")
    print(json.dumps(popularity_results(_DATA_DIR.value, _BATCH_SIZE.value),
                     indent=1))


if __name__ == "__main__":
    app.run(main)
