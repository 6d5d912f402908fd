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

Full ranking over a large catalogue (`rank_among_all_items_chunked`) scans
the items in chunks and keeps only the positive's rank, so memory is
`[B, chunk_size]`, not `[B, T]`; it equals `rank_among_all_items` exactly.

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
# Items scored at once by `rank_among_all_items_chunked`: a [256, 65536]
# float32 chunk is 64 MiB, and catalogues up to 65,536 items (ML-1M, every
# dataset of the paper) take one chunk, i.e. the unchunked computation.
DEFAULT_CHUNK_SIZE = 65536
# Matmuls with fewer output columns than this may take another CPU kernel
# whose float sums differ in the last bit from the full matmul's (measured:
# 1 and 2 columns differ, 7 and more are bit-identical); see
# `rank_among_all_items_chunked`.
MIN_CHUNK_SIZE = 8


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


def rank_among_all_items_chunked(
    queries,
    item_embeddings,
    positives,
    item_biases=None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    excluded_fn=None,
):
    """`rank_among_all_items` of `queries @ item_embeddings^T (+ biases)`,
    computed over chunks of items so that `[B, T]` is never materialised.

    Each chunk's scores `[B, chunk_size]` are compared with the positive's
    score and only the counts of competitors scoring `>=` it are kept
    (pessimistic ties, padding id 0 and the positive never compete), so
    the result equals `rank_among_all_items(queries @ E^T + b, positives)`
    exactly, ties included. Exactness needs every chunk's matmul to give
    the same float bits as the full one: every chunk has exactly
    `chunk_size` columns (the last window is moved back to end at item T
    and its already-counted columns are masked out), and the positive's
    score comes from a matmul of at least 8 columns (the queries against
    the positives' rows), since CPU kernels for 1-2 columns round
    differently.

    Args:
        queries: float `[B, C]` (user embeddings or next-item features).
        item_embeddings: float `[T, C]`, row 0 = padding.
        positives: int `[B]`, the target item of each row.
        item_biases: optional float `[T]` added to the scores.
        chunk_size: items scored at once (memory `[B, chunk_size]`), at
            least 8; at least T means one chunk, the unchunked computation.
        excluded_fn: optional `(start, size) -> bool [B, size]`, items
            `start .. start + size - 1` removed from the competitors of
            each row (`full_filtered`, e.g. `KnownItems.mask(users, size,
            start=start)`). When given, both ranks are returned.

    Returns:
        int32 `[B]` ranks (0 = best); with `excluded_fn`, the pair
        `(full_rank, filtered_rank)`.
    """
    if chunk_size < MIN_CHUNK_SIZE:
        raise ValueError(
            f"`chunk_size` must be at least {MIN_CHUNK_SIZE} (narrower "
            "matmuls round differently). Received: "
            f"chunk_size={chunk_size}"
        )
    item_embeddings = tf.convert_to_tensor(item_embeddings)
    queries = tf.convert_to_tensor(queries, item_embeddings.dtype)
    positives = tf.cast(positives, tf.int32)
    num_items = tf.shape(item_embeddings)[0]
    positive_scores = _positive_scores(
        queries, item_embeddings, positives, item_biases
    )[:, None]
    size = tf.minimum(num_items, chunk_size)
    batch = tf.shape(queries)[0]
    full = tf.zeros([batch], tf.int32)
    filtered = tf.zeros([batch], tf.int32)
    for start in tf.range(0, num_items, size):
        # A window of `size` columns ending at T at most; columns before
        # `start` were counted by the previous chunk.
        begin = tf.minimum(start, num_items - size)
        chunk = tf.slice(item_embeddings, [begin, 0], [size, -1])
        scores = tf.matmul(queries, chunk, transpose_b=True)  # [B, size]
        if item_biases is not None:
            scores += tf.slice(item_biases, [begin], [size])
        item_ids = (begin + tf.range(size))[None, :]
        competitor = (
            (item_ids >= start)
            & (item_ids != 0)
            & (item_ids != positives[:, None])
        )
        beats = (scores >= positive_scores) & competitor
        full += tf.reduce_sum(tf.cast(beats, tf.int32), axis=1)
        if excluded_fn is not None:
            beats &= ~excluded_fn(begin, size)
            filtered += tf.reduce_sum(tf.cast(beats, tf.int32), axis=1)
    if excluded_fn is None:
        return full
    return full, filtered


def _positive_scores(queries, item_embeddings, positives, item_biases):
    """`[B]` scores of each row's positive, bit-identical to the full
    matmul's entries: the diagonal of `queries @ E[positives]^T`, padded to
    at least `MIN_CHUNK_SIZE` columns so that the matmul uses the
    same kernel as a wide one."""
    rows = tf.gather(item_embeddings, positives)  # [B, C]
    batch = tf.shape(rows)[0]
    padding = tf.maximum(MIN_CHUNK_SIZE - batch, 0)
    rows = tf.pad(rows, [[0, padding], [0, 0]])
    scores = tf.matmul(queries, rows, transpose_b=True)  # [B, max(B, 8)]
    scores = tf.linalg.diag_part(scores[:, :batch])
    if item_biases is not None:
        scores += tf.gather(item_biases, positives)
    return scores


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

    def mask(self, users, num_items, start=0):
        """Bool `[B, num_items]`: `[b, i]` iff item `start + i` is known for
        `users[b]` (`start` > 0: one chunk of the items, for
        `rank_among_all_items_chunked`).

        Unknown users get an all-False row.
        """
        rows = self._rows.lookup(tf.convert_to_tensor(users, tf.string))
        known = rows >= 0
        per_user = tf.gather(self._items, tf.maximum(rows, 0))  # [B, None]
        batch_index = per_user.value_rowids()
        columns = per_user.flat_values - tf.cast(start, tf.int32)
        keep = (
            tf.gather(known, batch_index)
            & (columns >= 0)
            & (columns < tf.cast(num_items, tf.int32))
        )
        indices = tf.stack(
            [
                tf.boolean_mask(batch_index, keep),
                tf.cast(tf.boolean_mask(columns, keep), tf.int64),
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
