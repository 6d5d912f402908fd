"""Synthetic source sequences generated inside tf.data, for scale tests.

`pretrain_stream(num_users, num_items, ...)` yields `{"source": [B, L]}`
batches of left-padded item sequences computed in-graph from stateless
random ops, batch by batch: nothing proportional to the number of users
or items is ever held in memory, so a million users over a million items
stream as cheaply as a thousand (`launch/benchmarks/scale.py`).

Each sequence has a planted, learnable rule on a popularity-skewed
catalogue:
- fresh items are drawn log-uniformly (Zipf-like, `P(k) ~ log(1 + 1/k)`),
  so id 1 is the most frequent, as the prepared vocabularies order ids and
  as sampled softmax's log-uniform proposal assumes;
- after an item `x`, the next one is its successor `x % (V - 1) + 1` with
  probability `1 - noise`, else a fresh draw.

Batch `b` is a pure function of `(seed, b, batch_size)`: the stream is
reproducible and can start at any batch without generating the others.
"""

import math

import tensorflow as tf

from uaf_tf.data.dataset_info import SOURCE
from uaf_tf.data.input_options import with_input_options


def log_uniform_items(shape, num_items: int, seed):
    """Item ids in `[1, num_items)`, `P(k) = log(1 + 1/k) / log(num_items)`.

    Args:
        shape: output shape.
        num_items: V, ids are `1 .. V - 1` (0 is padding).
        seed: int32 `[2]`, a stateless seed.

    Returns:
        int32 tensor of `shape`.
    """
    u = tf.random.stateless_uniform(shape, seed, dtype=tf.float64)
    items = tf.floor(tf.exp(u * math.log(num_items)))
    return tf.cast(tf.clip_by_value(items, 1, num_items - 1), tf.int32)


def synthetic_batch(
    batch_index,
    batch_size: int,
    num_items: int,
    seq_len: int,
    *,
    seed: int = 0,
    noise: float = 0.2,
    min_seq_len: int | None = None,
):
    """One batch `[batch_size, seq_len]` of the stream (see the module).

    Args:
        batch_index: int64 scalar, which batch (seeds the draws).
        batch_size: B.
        num_items: V, ids `1 .. V - 1`, 0 = left padding.
        seq_len: L.
        seed: the stream's seed.
        noise: probability that an item is a fresh draw instead of the
            previous item's successor.
        min_seq_len: shortest sequence; lengths are uniform in
            `[min_seq_len, L]` (default L: no padding).

    Returns:
        int32 `[B, L]`, left-padded.
    """
    min_seq_len = seq_len if min_seq_len is None else min_seq_len
    seeds = tf.random.experimental.stateless_split(
        tf.stack([tf.cast(seed, tf.int64), tf.cast(batch_index, tf.int64)]),
        num=3,
    )
    shape = [batch_size, seq_len]
    fresh = log_uniform_items(shape, num_items, seeds[0])
    positions = tf.range(seq_len)[None, :]
    restart = tf.random.stateless_uniform(shape, seeds[1]) < noise
    restart |= positions == 0
    # Position of the last fresh draw at or before t: x_t is that draw
    # moved forward t - s_t times by the successor rule.
    last_restart = tf.scan(
        tf.maximum, tf.transpose(tf.where(restart, positions, 0))
    )
    last_restart = tf.transpose(last_restart)  # [B, L]
    start = tf.gather(fresh, last_restart, batch_dims=1)
    items = (start - 1 + positions - last_restart) % (num_items - 1) + 1
    lengths = tf.random.stateless_uniform(
        [batch_size, 1],
        seeds[2],
        minval=min_seq_len,
        maxval=seq_len + 1,
        dtype=tf.int32,
    )
    return tf.where(positions >= seq_len - lengths, items, 0)


def pretrain_stream(
    num_users: int,
    num_items: int,
    seq_len: int,
    batch_size: int,
    *,
    seed: int = 0,
    noise: float = 0.2,
    min_seq_len: int | None = None,
) -> tf.data.Dataset:
    """`{"source": int32 [B, L]}` batches of `num_users` synthetic users.

    `ceil(num_users / B)` batches, the last one holding the remainder; each
    is generated when the pipeline asks for it (`synthetic_batch`), in
    parallel, so memory does not grow with `num_users` or `num_items`.
    """
    if num_items < 2 or num_users < 1 or batch_size < 1 or seq_len < 2:
        raise ValueError(
            "`num_items` >= 2, `num_users`, `batch_size` >= 1 and `seq_len` "
            f">= 2 are required. Received: num_items={num_items}, "
            f"num_users={num_users}, batch_size={batch_size}, "
            f"seq_len={seq_len}"
        )
    num_batches = -(-num_users // batch_size)

    def make(batch_index):
        # The last batch holds the remainder.
        rows = tf.minimum(
            tf.constant(batch_size, tf.int64),
            num_users - batch_index * batch_size,
        )
        ids = synthetic_batch(
            batch_index,
            batch_size,
            num_items,
            seq_len,
            seed=seed,
            noise=noise,
            min_seq_len=min_seq_len,
        )
        return {SOURCE: ids[:rows]}

    return with_input_options(
        tf.data.Dataset.range(num_batches)
        .map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
