"""Small helpers shared by the tests: planted-signal data, tiny datasets."""

import numpy as np
import tensorflow as tf


def planted_sequences(
    num_sequences: int,
    seq_len: int,
    num_ids: int,
    *,
    multiplier: int = 7,
    increment: int = 3,
    min_length: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Left-padded item sequences with a deterministic next-item rule.

    After a random first item, item `x` is always followed by
    `(x * multiplier + increment) % (num_ids - 1) + 1`, so ids stay in
    `[1, num_ids)` and a model that learns the rule ranks every next item
    first. With `min_length`, each sequence keeps a random length in
    `[min_length, seq_len]` and is left-padded with 0.

    Returns:
        int32 `[num_sequences, seq_len]`.
    """
    rng = np.random.default_rng(seed)
    items = num_ids - 1
    out = np.zeros([num_sequences, seq_len], np.int32)
    out[:, 0] = rng.integers(1, num_ids, num_sequences)
    for t in range(1, seq_len):
        out[:, t] = (out[:, t - 1] * multiplier + increment) % items + 1
    if min_length is not None:
        lengths = rng.integers(min_length, seq_len + 1, num_sequences)
        for row, length in zip(out, lengths, strict=True):
            row[:] = np.concatenate(
                [np.zeros(seq_len - length, np.int32), row[:length]]
            )
    return out


def sequence_dataset(
    sequences: np.ndarray,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """`{"source": [B, L]}` batches of `sequences` (the remainder kept)."""
    dataset = tf.data.Dataset.from_tensor_slices({"source": sequences})
    if shuffle_seed is not None:
        dataset = dataset.shuffle(
            len(sequences), seed=shuffle_seed, reshuffle_each_iteration=False
        )
    return dataset.batch(batch_size)


def build_tiny_dataset_dir(out_dir: str, **overrides) -> str:
    """A small synthetic dataset directory (`data.preparation.synthetic`).

    Keyword arguments override the small defaults: `WriteOptions` fields
    (`seq_len`, `seed`, `num_shards`...) or planted-data sizes
    (`num_users`...). Returns `out_dir`.
    """
    import dataclasses

    from uaf_tf.data.preparation import synthetic
    from uaf_tf.data.preparation.write_options import WriteOptions

    kwargs = dict(
        num_users=200,
        num_source_items=60,
        num_target_items=40,
        seq_len=12,
        num_eval_negatives=9,
        num_shards=2,
        seed=0,
    )
    kwargs.update(overrides)
    option_names = {f.name for f in dataclasses.fields(WriteOptions)}
    options = WriteOptions(
        **{k: kwargs.pop(k) for k in list(kwargs) if k in option_names}
    )
    synthetic.build_synthetic_dataset(out_dir, options, **kwargs)
    return out_dir
