"""Seeded splits: fine-tuning instances 80/5/15, pretraining users 95/5.

Split membership is a seeded permutation over positions in the build's
instance (or user) stream, so a split depends only on the seed and the
input, never on sharding. `train_fraction_mask` is the one definition of the
"fraction of the training split" subset (paper sec. 5.4); the training
pipeline applies it in-graph and `prepare_data --train_fraction` applies it
at write time, so the two give the same subset for the same seed.
"""

import numpy as np
import tensorflow as tf

FINETUNE_FRACTIONS = {"train": 0.80, "valid": 0.05, "test": 0.15}
PRETRAIN_VALID_FRACTION = 0.05

# Codes stored per fine-tuning instance by `finetune_split_codes`.
TRAIN, VALID, TEST = 0, 1, 2
SPLIT_CODES = {"train": TRAIN, "valid": VALID, "test": TEST}

# Salts keep the seeded streams of different uses independent.
_FINETUNE_SALT = 1
_PRETRAIN_SALT = 2
_TRAIN_FRACTION_SALT = 3


def finetune_split_sizes(num_instances: int) -> dict[str, int]:
    """Valid and test are rounded; train takes the rest."""
    valid = round(num_instances * FINETUNE_FRACTIONS["valid"])
    test = round(num_instances * FINETUNE_FRACTIONS["test"])
    return {
        "train": num_instances - valid - test,
        "valid": valid,
        "test": test,
    }


def finetune_split_codes(num_instances: int, seed: int) -> np.ndarray:
    """int8 [num_instances]: `TRAIN`, `VALID` or `TEST` per instance."""
    if num_instances < 1:
        raise ValueError(
            "There must be at least one fine-tuning instance. "
            f"Received: num_instances={num_instances}"
        )
    sizes = finetune_split_sizes(num_instances)
    rng = np.random.default_rng([seed, _FINETUNE_SALT])
    order = rng.permutation(num_instances)
    codes = np.empty(num_instances, np.int8)
    train_end = sizes["train"]
    valid_end = train_end + sizes["valid"]
    codes[order[:train_end]] = TRAIN
    codes[order[train_end:valid_end]] = VALID
    codes[order[valid_end:]] = TEST
    return codes


def pretrain_valid_mask(num_users: int, seed: int) -> np.ndarray:
    """bool [num_users]: True for the seeded 5% (at least 1) held out."""
    if num_users < 2:
        raise ValueError(
            "Pretraining needs at least 2 users (one is held out for "
            f"validation). Received: num_users={num_users}"
        )
    num_valid = max(1, round(num_users * PRETRAIN_VALID_FRACTION))
    rng = np.random.default_rng([seed, _PRETRAIN_SALT])
    mask = np.zeros(num_users, bool)
    mask[rng.permutation(num_users)[:num_valid]] = True
    return mask


def shard_assignment(
    num_examples: int, num_shards: int, seed: int, salt: int
) -> np.ndarray:
    """int32 [num_examples]: shard of each example, round-robin over a
    seeded permutation, so no shard holds a contiguous run of users."""
    rng = np.random.default_rng([seed, 100 + salt])
    shards = np.empty(num_examples, np.int32)
    shards[rng.permutation(num_examples)] = (
        np.arange(num_examples, dtype=np.int32) % num_shards
    )
    return shards


def train_fraction_mask(
    num_train: int, train_fraction: float, seed: int
) -> tf.Tensor:
    """bool [num_train]: which training `index` values a fraction keeps.

    Exactly `round(train_fraction * num_train)` (at least 1) indices are
    kept, chosen by a seeded in-graph permutation; a smaller fraction keeps
    a subset of what a larger one keeps for the same seed.
    """
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(
            "`train_fraction` must be in (0, 1]. "
            f"Received: train_fraction={train_fraction}"
        )
    num_kept = min(num_train, max(1, round(train_fraction * num_train)))
    order = tf.random.experimental.stateless_shuffle(
        tf.range(num_train, dtype=tf.int64),
        seed=tf.constant([seed, _TRAIN_FRACTION_SALT], tf.int64),
    )
    return tf.scatter_nd(
        order[:num_kept, None],
        tf.ones([num_kept], tf.bool),
        tf.constant([num_train], tf.int64),
    )
