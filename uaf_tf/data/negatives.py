"""Negative target items: in-graph training samples, stored eval candidates.

Target ids live in [0, num_target_ids); 0 is padding, so valid items are
[1, num_target_ids). Both samplers draw `r` uniformly from the
`num_target_ids - 2` items other than the positive by drawing from
[1, num_target_ids - 1) and shifting `r >= positive` up by one: never 0,
never the positive, always `< num_target_ids` (the original drew from one
past the table end).
"""

import numpy as np
import tensorflow as tf

# Values drawn per chunk by `EvalCandidateSampler` (a fixed size keeps the
# draws, and so the candidates, a function of the seed alone).
_EVAL_CHUNK_ELEMENTS = 1 << 18


def _check_num_target_ids(num_target_ids: int) -> None:
    if num_target_ids < 3:
        raise ValueError(
            "Negative sampling needs at least 2 target items "
            "(`num_target_ids` >= 3 with padding). "
            f"Received: num_target_ids={num_target_ids}"
        )


def sample_negatives(
    positives: tf.Tensor,
    num_target_ids: int,
    num_negatives: int,
    seed_or_generator: "tf.random.Generator | tf.Tensor | tuple[int, int]",
) -> tf.Tensor:
    """Uniform in-graph negatives, excluding the positive and padding.

    Negatives of one row are drawn with replacement among themselves.

    Args:
        positives: int32 [B], positive target ids in [1, num_target_ids).
        num_target_ids: target table rows (vocabulary + padding).
        num_negatives: negatives per row.
        seed_or_generator: a `tf.random.Generator` (stateful: new draws on
            every call) or a stateless seed, shape [2] int or a Python int
            `s` meaning `(s, 0)` (same seed, same draws).

    Returns:
        int32 [B, num_negatives] in [1, num_target_ids), never equal to the
        row's positive.
    """
    _check_num_target_ids(num_target_ids)
    positives = tf.cast(positives, tf.int32)
    shape = tf.stack([tf.shape(positives)[0], num_negatives])
    if isinstance(seed_or_generator, int):
        seed_or_generator = (seed_or_generator, 0)
    if isinstance(seed_or_generator, tf.random.Generator):
        draws = seed_or_generator.uniform(
            shape, minval=1, maxval=num_target_ids - 1, dtype=tf.int32
        )
    else:
        draws = tf.random.stateless_uniform(
            shape,
            seed=seed_or_generator,
            minval=1,
            maxval=num_target_ids - 1,
            dtype=tf.int32,
        )
    return draws + tf.cast(draws >= positives[:, None], tf.int32)


def _distinct_rows(
    rng: np.random.Generator, num_rows: int, num_values: int, width: int
) -> np.ndarray:
    """int64 [num_rows, width]: distinct values of [0, num_values) per row,
    uniform over ordered distinct tuples."""
    if width * width > num_values:
        # Dense: collisions are likely, so rank random keys instead.
        keys = rng.random((num_rows, num_values))
        return np.argsort(keys, axis=1)[:, :width].astype(np.int64)
    # Sparse: draw with replacement and redraw rows with a repeat. A row is
    # repeat-free with probability >= 1/2, so this ends quickly.
    rows = rng.integers(0, num_values, size=(num_rows, width))
    todo = np.arange(num_rows)
    while todo.size:
        ordered = np.sort(rows[todo], axis=1)
        repeats = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        todo = todo[repeats]
        rows[todo] = rng.integers(0, num_values, size=(todo.size, width))
    return rows


class EvalCandidateSampler:
    """Seeded distinct evaluation negatives, one row per call.

    Draws rows in fixed-size chunks from one `np.random.Generator`, so the
    k-th call returns the same row in every build with the same seed.

    Args:
        num_target_ids: target table rows (vocabulary + padding).
        num_negatives: distinct negatives per row.
        seed: numpy seed (an int or a sequence of ints).
    """

    def __init__(self, num_target_ids: int, num_negatives: int, seed):
        _check_num_target_ids(num_target_ids)
        if num_negatives < 0:
            raise ValueError(
                "`num_eval_negatives` must be >= 0. "
                f"Received: num_eval_negatives={num_negatives}"
            )
        if num_negatives > num_target_ids - 2:
            raise ValueError(
                f"Cannot draw {num_negatives} distinct negatives from "
                f"{num_target_ids - 2} non-positive target items: lower "
                "`num_eval_negatives` or use a larger target vocabulary. "
                f"Received: num_eval_negatives={num_negatives}, "
                f"num_target_ids={num_target_ids}"
            )
        self.num_target_ids = num_target_ids
        self.num_negatives = num_negatives
        self._rng = np.random.default_rng(seed)
        self._num_values = num_target_ids - 2
        dense = num_negatives * num_negatives > self._num_values
        row_elements = self._num_values if dense else num_negatives
        self._chunk_rows = max(1, _EVAL_CHUNK_ELEMENTS // max(1, row_elements))
        self._chunk = np.empty((0, num_negatives), np.int64)
        self._next = 0

    def candidates(self, positive: int) -> list[int]:
        """`[positive, n_1, ..., n_k]`, negatives distinct, != positive."""
        if self._next == len(self._chunk):
            self._chunk = (
                _distinct_rows(
                    self._rng,
                    self._chunk_rows,
                    self._num_values,
                    self.num_negatives,
                )
                + 1
            )  # Draws in [1, num_target_ids - 1).
            self._next = 0
        row = self._chunk[self._next]
        self._next += 1
        shifted = row + (row >= positive)
        return [positive, *shifted.tolist()]
