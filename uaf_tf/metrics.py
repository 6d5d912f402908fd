"""Top-N ranking metrics with an explicit protocol and tie policy.

Every metric name carries its protocol, because sampled and full-ranking
metrics disagree and are easy to mix up:

- `sampled`: the positive is ranked among a fixed list of candidates (the
  paper's protocol: 1 positive + 99 negatives stored with the dataset).
- `full`: the positive is ranked among all target items (padding excluded).

Names look like `sampled/mrr@5`, `full/hr@20`, `sampled/ndcg@5`.

Tie policy: pessimistic. The rank of the positive is the number of other
candidates scoring *greater than or equal* to it (0 = best), so a model that
scores everything equally gets rank M - 1, never a lucky rank 0.

For rank r (0-based) and cut-off K:
    HR@K   = 1[r < K]
    MRR@K  = 1[r < K] / (r + 1)
    NDCG@K = 1[r < K] / log2(r + 2)
"""

import tensorflow as tf

SAMPLED = "sampled"
FULL = "full"
DEFAULT_CUTOFFS = (5, 20)


def rank_among_candidates(scores):
    """Rank of column 0 among `scores [B, M]` -> int32 `[B]` (pessimistic)."""
    positive = scores[:, :1]
    return tf.reduce_sum(tf.cast(scores[:, 1:] >= positive, tf.int32), axis=1)


def rank_among_all_items(scores, positives):
    """Rank of `positives [B]` among all items `scores [B, T]` -> `[B]`.

    Column 0 (padding/unknown) is never a competitor; nor is the positive.
    """
    positives = tf.cast(positives, tf.int32)
    positive_scores = tf.gather(scores, positives, batch_dims=1)[:, None]
    num_items = tf.shape(scores)[1]
    item_ids = tf.range(num_items)[None, :]
    competitor = (item_ids != 0) & (item_ids != positives[:, None])
    beats = (scores >= positive_scores) & competitor
    return tf.reduce_sum(tf.cast(beats, tf.int32), axis=1)


def metrics_from_ranks(ranks, protocol: str, cutoffs=DEFAULT_CUTOFFS):
    """Per-example metrics `{"sampled/hr@5": [B], ...}` from 0-based ranks."""
    if protocol not in (SAMPLED, FULL):
        raise ValueError(
            f"`protocol` must be {SAMPLED!r} or {FULL!r}. "
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
