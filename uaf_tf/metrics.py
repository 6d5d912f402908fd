"""Top-N ranking metrics with an explicit protocol and tie policy.

Every metric name carries its protocol, because sampled and full-ranking
metrics disagree and are easy to mix up:

- `sampled`: the positive is ranked among a fixed list of candidates (the
  paper's protocol: 1 positive + 99 negatives stored with the dataset).
- `full`: the positive is ranked among all target items (padding excluded),
  unfiltered: items the user already interacted with in training compete.
- `full_filtered`: as `full`, but the user's own training positives (other
  than the instance's target) are removed from the competitors, the
  "filtered" full-ranking protocol of most recommender papers.

Names look like `sampled/mrr@5`, `full/hr@10`, `full_filtered/hr@20`
(cut-offs `DEFAULT_CUTOFFS`: 5, 10 and 20).

Tie policy: pessimistic. The rank of the positive is the number of other
candidates scoring *greater than or equal* to it (0 = best), so a model that
scores everything equally gets rank M - 1, never a lucky rank 0.

For rank r (0-based) and cut-off K:
    HR@K   = 1[r < K]
    MRR@K  = 1[r < K] / (r + 1)
    NDCG@K = 1[r < K] / log2(r + 2)
"""

import numpy as np
import tensorflow as tf

SAMPLED = "sampled"
FULL = "full"
FULL_FILTERED = "full_filtered"
PROTOCOLS = (SAMPLED, FULL, FULL_FILTERED)
DEFAULT_CUTOFFS = (5, 10, 20)


def rank_among_candidates(scores):
    """Rank of column 0 among `scores [B, M]` -> int32 `[B]` (pessimistic)."""
    positive = scores[:, :1]
    return tf.reduce_sum(tf.cast(scores[:, 1:] >= positive, tf.int32), axis=1)


def rank_among_all_items(scores, positives, excluded=None):
    """Rank of `positives [B]` among all items `scores [B, T]` -> `[B]`.

    Column 0 (padding/unknown) is never a competitor; nor is the positive;
    nor, when given, is any item of `excluded` (bool `[B, T]`, e.g.
    `known_items_mask` of the user's training positives: `full_filtered`).
    """
    positives = tf.cast(positives, tf.int32)
    positive_scores = tf.gather(scores, positives, batch_dims=1)[:, None]
    num_items = tf.shape(scores)[1]
    item_ids = tf.range(num_items)[None, :]
    competitor = (item_ids != 0) & (item_ids != positives[:, None])
    if excluded is not None:
        competitor &= ~excluded
    beats = (scores >= positive_scores) & competitor
    return tf.reduce_sum(tf.cast(beats, tf.int32), axis=1)


class KnownItems:
    """Each user's known items (e.g. training positives), sparse, in-graph.

    Holds one sorted row of item ids per user (a `tf.RaggedTensor`, memory
    O(number of pairs)) and a string -> row hash table, built once. `mask`
    gives the dense `[B, T]` of a batch only, which the full ranking
    materialises anyway.

    Args:
        users: string/bytes `[P]`, the user of each (user, item) pair.
        items: int `[P]`, the item of each pair (duplicates allowed).

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.metrics import KnownItems
    >>> known = KnownItems(["a", "b", "a"], [3, 1, 2])
    >>> known.mask(tf.constant(["a", "c"]), 5).numpy().astype(int)
    array([[0, 0, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """

    def __init__(self, users, items):
        users = np.asarray(users, dtype=object).astype(bytes)
        items = np.asarray(items, dtype=np.int64)
        if users.shape != items.shape or users.ndim != 1:
            raise ValueError(
                "`users` and `items` must be 1-D of one length. Received: "
                f"users.shape={users.shape}, items.shape={items.shape}"
            )
        keys, rows = np.unique(users, return_inverse=True)
        order = np.lexsort((items, rows))
        self.num_users = len(keys)
        self.num_pairs = len(items)
        if not self.num_users:  # A hash table cannot be empty: one key of
            keys = np.array([b""])  # an empty row, which masks nothing.
        self._items = tf.RaggedTensor.from_value_rowids(
            tf.constant(items[order], tf.int32),
            tf.constant(rows[order], tf.int64),
            nrows=len(keys),
        )
        self._rows = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys, tf.string),
                tf.range(len(keys), dtype=tf.int64),
            ),
            default_value=-1,
        )

    def mask(self, users, num_items):
        """Bool `[B, num_items]`: `[b, i]` iff item i is known for `users[b]`.

        Unknown users get an all-False row.
        """
        rows = self._rows.lookup(tf.convert_to_tensor(users, tf.string))
        known = rows >= 0
        per_user = tf.gather(self._items, tf.maximum(rows, 0))  # [B, None]
        batch_index = per_user.value_rowids()
        keep = tf.gather(known, batch_index)
        indices = tf.stack(
            [
                tf.boolean_mask(batch_index, keep),
                tf.cast(tf.boolean_mask(per_user.flat_values, keep), tf.int64),
            ],
            axis=1,
        )
        shape = tf.cast(tf.stack([tf.size(rows), num_items]), tf.int64)
        counts = tf.scatter_nd(
            indices, tf.ones(tf.shape(indices)[:1], tf.int32), shape
        )
        return counts > 0


def metrics_from_ranks(ranks, protocol: str, cutoffs=DEFAULT_CUTOFFS):
    """Per-example metrics `{"sampled/hr@5": [B], ...}` from 0-based ranks."""
    if protocol not in PROTOCOLS:
        raise ValueError(
            f"`protocol` must be one of {PROTOCOLS}. "
            f"Received: protocol={protocol!r}"
        )
    ranks = tf.cast(ranks, tf.float32)
    values = {}
    for k in cutoffs:
        hit = tf.cast(ranks < k, tf.float32)
        values[f"{protocol}/hr@{k}"] = hit
        values[f"{protocol}/mrr@{k}"] = hit / (ranks + 1.0)
        values[f"{protocol}/ndcg@{k}"] = hit / (
            tf.math.log(ranks + 2.0) / tf.math.log(2.0)
        )
    return values


class MeanAccumulator:
    """Sums per-example values over batches; `result()` gives their means.

    Keeps every example (no dropped remainder) and reports the count, so
    `results["num_examples"]` says exactly how many instances were ranked.
    """

    def __init__(self):
        self._sums = {}
        self._count = 0

    def update(self, values: dict) -> None:
        batch = None
        for name, value in values.items():
            value = tf.convert_to_tensor(value)
            batch = int(value.shape[0])
            total = float(tf.reduce_sum(tf.cast(value, tf.float64)))
            self._sums[name] = self._sums.get(name, 0.0) + total
        if batch is not None:
            self._count += batch

    def result(self) -> dict:
        if self._count == 0:
            return {"num_examples": 0}
        out = {k: v / self._count for k, v in sorted(self._sums.items())}
        out["num_examples"] = self._count
        return out
