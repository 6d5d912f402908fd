"""Ranking metrics: pessimistic ties, closed-form HR/MRR/NDCG, means."""

import math

import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import metrics


def test_rank_among_candidates_counts_ties_against_the_positive():
    scores = tf.constant(
        [
            [0.5, 0.1, 0.9, 0.5, 0.2],  # 0.9 beats it, 0.5 ties: rank 2
            [1.0, 0.0, 0.0, 0.0, 0.0],  # best: rank 0
            [0.3, 0.3, 0.3, 0.3, 0.3],  # all equal: M - 1, never lucky
        ]
    )
    expected = [2, 0, 4]
    np.testing.assert_array_equal(
        metrics.rank_among_candidates(scores), expected
    )
    np.testing.assert_array_equal(
        tf.function(metrics.rank_among_candidates)(scores), expected
    )
    assert metrics.rank_among_candidates(scores).dtype == tf.int32


def test_rank_among_all_items_skips_padding_and_the_positive():
    scores = tf.constant(
        [
            # Padding scores highest but never competes; item 3 ties: 1.
            [9.0, 0.2, 0.7, 0.7, 0.1],
            [0.0, 0.5, 0.4, 0.3, 0.2],  # item 1 is best: 0
            [0.0, 0.1, 0.1, 0.1, 0.1],  # all items tie: T - 2 = 3
        ]
    )
    positives = tf.constant([2, 1, 4], tf.int64)
    np.testing.assert_array_equal(
        metrics.rank_among_all_items(scores, positives), [1, 0, 3]
    )
    np.testing.assert_array_equal(
        tf.function(metrics.rank_among_all_items)(scores, positives),
        [1, 0, 3],
    )


def _numpy_rank(scores, positive_column, competitors):
    return sum(
        scores[j] >= scores[positive_column]
        for j in competitors
        if j != positive_column
    )


def test_both_ranks_match_a_numpy_loop_on_tied_integer_scores():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(50, 12)).astype("float32")
    positives = rng.integers(1, 12, size=50)
    sampled = metrics.rank_among_candidates(scores).numpy()
    full = metrics.rank_among_all_items(scores, positives).numpy()
    for b in range(50):
        assert sampled[b] == _numpy_rank(scores[b], 0, range(12))
        assert full[b] == _numpy_rank(scores[b], positives[b], range(1, 12))


def test_metrics_from_ranks_closed_form_at_5_10_and_20():
    ranks = tf.constant([0, 4, 5, 19, 20])
    values = metrics.metrics_from_ranks(ranks, metrics.SAMPLED)
    assert sorted(values) == sorted(
        f"sampled/{name}@{k}"
        for name in ("hr", "mrr", "ndcg")
        for k in (5, 10, 20)
    )
    log2 = math.log2
    expected = {
        "sampled/hr@5": [1, 1, 0, 0, 0],
        "sampled/mrr@5": [1, 1 / 5, 0, 0, 0],
        "sampled/ndcg@5": [1, 1 / log2(6), 0, 0, 0],
        "sampled/hr@10": [1, 1, 1, 0, 0],
        "sampled/mrr@10": [1, 1 / 5, 1 / 6, 0, 0],
        "sampled/ndcg@10": [1, 1 / log2(6), 1 / log2(7), 0, 0],
        "sampled/hr@20": [1, 1, 1, 1, 0],
        "sampled/mrr@20": [1, 1 / 5, 1 / 6, 1 / 20, 0],
        "sampled/ndcg@20": [1, 1 / log2(6), 1 / log2(7), 1 / log2(21), 0],
    }
    for name, value in expected.items():
        np.testing.assert_allclose(values[name], value, rtol=1e-6, err_msg=name)


def test_protocol_names_the_metrics_and_cutoffs_are_configurable():
    values = metrics.metrics_from_ranks([0, 1], metrics.FULL, cutoffs=(1,))
    assert sorted(values) == ["full/hr@1", "full/mrr@1", "full/ndcg@1"]
    np.testing.assert_array_equal(values["full/hr@1"], [1.0, 0.0])


def test_unknown_protocol_is_rejected():
    with pytest.raises(ValueError, match="Received: protocol='top'"):
        metrics.metrics_from_ranks([0], "top")


def test_mean_accumulator_keeps_every_example():
    accumulator = metrics.MeanAccumulator()
    assert accumulator.result() == {"num_examples": 0}
    # Batches of 3 and 2: the remainder counts like any other batch.
    accumulator.update({"a": [1.0, 0.0, 1.0], "b": [0.5, 0.5, 0.5]})
    accumulator.update({"a": tf.constant([1.0, 1.0]), "b": [0.0, 1.0]})
    assert accumulator.result() == pytest.approx(
        {"a": 4 / 5, "b": 2.5 / 5, "num_examples": 5}
    )


def test_mean_accumulator_equals_the_mean_over_all_examples():
    rng = np.random.default_rng(1)
    ranks = rng.integers(0, 30, size=103)
    accumulator = metrics.MeanAccumulator()
    for start in range(0, 103, 16):  # 6 batches of 16 and one of 7
        accumulator.update(
            metrics.metrics_from_ranks(ranks[start : start + 16], "full")
        )
    result = accumulator.result()
    assert result["num_examples"] == 103
    assert result["full/hr@20"] == pytest.approx(np.mean(ranks < 20))
    assert result["full/mrr@5"] == pytest.approx(
        np.mean(np.where(ranks < 5, 1 / (ranks + 1), 0)), rel=1e-6
    )


def test_filtered_rank_drops_the_users_training_positives_closed_form():
    """Planted: T = 8 items (0 = padding). User "a" trained on items 2, 5
    and 6, user "b" on 3; "c" is unknown. Scores rise with the item id.
    Row 0 ("a", positive 4): full competitors scoring >= s(4) are 5, 6, 7
    (rank 3); filtered drops 5 and 6 (rank 1). Row 1 ("b", positive 3, also
    one of its training positives): its own target is never filtered, so
    both ranks are 4 (items 4..7). Row 2 ("c", positive 1): nothing known,
    rank 6 both ways. Row 3 ("a", positive 6, a training positive): 7 beats
    it in both (5 and 2 score lower); rank 1 both ways."""
    known = metrics.KnownItems(
        np.array(["a", "b", "a", "a"]), np.array([5, 3, 2, 6])
    )
    assert (known.num_users, known.num_pairs) == (2, 4)
    users = tf.constant(["a", "b", "c", "a"])
    mask = known.mask(users, 8).numpy()
    expected_mask = np.zeros([4, 8], bool)
    expected_mask[[0, 0, 0, 3, 3, 3], [2, 5, 6, 2, 5, 6]] = True
    expected_mask[1, 3] = True
    np.testing.assert_array_equal(mask, expected_mask)
    scores = tf.tile(tf.range(8, dtype=tf.float32)[None, :], [4, 1])
    positives = tf.constant([4, 3, 1, 6])
    full = metrics.rank_among_all_items(scores, positives).numpy()
    filtered = metrics.rank_among_all_items(
        scores, positives, excluded=known.mask(users, 8)
    ).numpy()
    np.testing.assert_array_equal(full, [3, 4, 6, 1])
    np.testing.assert_array_equal(filtered, [1, 4, 6, 1])
    values = metrics.metrics_from_ranks(filtered, metrics.FULL_FILTERED)
    np.testing.assert_allclose(
        values["full_filtered/mrr@5"], [1 / 2, 1 / 5, 0.0, 1 / 2]
    )


def test_known_items_work_inside_a_tf_function_and_unknown_users():
    known = metrics.KnownItems(["u1", "u2"], [1, 2])
    masked = tf.function(lambda users: known.mask(users, 4))
    np.testing.assert_array_equal(
        masked(tf.constant(["u2", "zz"])).numpy(),
        [[False, False, True, False], [False] * 4],
    )
    empty = metrics.KnownItems(np.zeros([0], bytes), np.zeros([0], int))
    assert not empty.mask(tf.constant(["u1"]), 3).numpy().any()


def _tied_catalogue(num_items=103, channels=16, batch=9, seed=0):
    """Queries and an item table with planted exact ties: items come in
    groups of identical rows (so a positive ties with its twins) and the
    queries and rows are small integers (so many distinct items tie too)."""
    rng = np.random.default_rng(seed)
    distinct = rng.integers(-2, 3, size=(num_items // 3 + 1, channels))
    table = distinct[rng.integers(0, len(distinct), num_items)]
    queries = rng.integers(-2, 3, size=(batch, channels))
    biases = rng.integers(0, 2, size=num_items)
    positives = rng.integers(1, num_items, size=batch)
    return (
        tf.constant(queries, tf.float32),
        tf.constant(table, tf.float32),
        tf.constant(positives, tf.int32),
        tf.constant(biases, tf.float32),
    )


@pytest.mark.parametrize("chunk_size", [8, 10, 32, 100, 103, 4096])
def test_chunked_rank_equals_the_full_rank_with_ties(chunk_size):
    """T = 103 is prime: no chunk size in (1, 103) divides it, so the last
    window always overlaps the one before. Exact equality, ties counted."""
    queries, table, positives, biases = _tied_catalogue()
    scores = tf.matmul(queries, table, transpose_b=True) + biases
    expected = metrics.rank_among_all_items(scores, positives).numpy()
    # Ties planted: some competitor scores exactly the positive's score.
    positive_scores = tf.gather(scores, positives, batch_dims=1).numpy()
    assert (scores.numpy() == positive_scores[:, None]).sum() > 2 * 9
    chunked = metrics.rank_among_all_items_chunked(
        queries, table, positives, biases, chunk_size=chunk_size
    )
    np.testing.assert_array_equal(chunked, expected)
    in_graph = tf.function(
        lambda q, t, p, b: metrics.rank_among_all_items_chunked(
            q, t, p, b, chunk_size=chunk_size
        )
    )(queries, table, positives, biases)
    np.testing.assert_array_equal(in_graph, expected)


@pytest.mark.parametrize("chunk_size", [8, 13, 64])
def test_chunked_rank_equals_the_full_rank_on_random_floats(chunk_size):
    """Float scores from a real-valued matmul, no bias, batch 1 and 37:
    the chunks' float sums must be bit-identical to the full matmul's."""
    rng = np.random.default_rng(1)
    table = tf.constant(rng.normal(size=(1001, 32)), tf.float32)
    for batch in (1, 37):
        queries = tf.constant(rng.normal(size=(batch, 32)), tf.float32)
        positives = tf.constant(rng.integers(1, 1001, batch), tf.int32)
        scores = tf.matmul(queries, table, transpose_b=True)
        np.testing.assert_array_equal(
            metrics.rank_among_all_items_chunked(
                queries, table, positives, chunk_size=chunk_size
            ),
            metrics.rank_among_all_items(scores, positives),
        )


@pytest.mark.parametrize("chunk_size", [8, 11, 103])
def test_chunked_filtered_rank_equals_the_full_filtered_rank(chunk_size):
    queries, table, positives, biases = _tied_catalogue()
    rng = np.random.default_rng(2)
    users = np.array([f"u{i % 4}" for i in range(9)])
    known = metrics.KnownItems(
        rng.choice(users, 60), rng.integers(1, 103, size=60)
    )
    scores = tf.matmul(queries, table, transpose_b=True) + biases
    users = tf.constant(users)
    full, filtered = metrics.rank_among_all_items_chunked(
        queries,
        table,
        positives,
        biases,
        chunk_size=chunk_size,
        excluded_fn=lambda start, size: known.mask(users, size, start=start),
    )
    np.testing.assert_array_equal(
        full, metrics.rank_among_all_items(scores, positives)
    )
    expected = metrics.rank_among_all_items(
        scores, positives, excluded=known.mask(users, 103)
    ).numpy()
    np.testing.assert_array_equal(filtered, expected)
    assert (expected < full.numpy()).any()  # Filtering removed someone.


def test_known_items_mask_of_a_chunk_is_a_slice_of_the_full_mask():
    known = metrics.KnownItems(["a", "a", "b", "a"], [1, 5, 6, 9])
    users = tf.constant(["a", "b", "c"])
    full = known.mask(users, 12).numpy()
    for start, size in [(0, 4), (4, 4), (5, 7), (8, 4)]:
        np.testing.assert_array_equal(
            known.mask(users, size, start=start), full[:, start : start + size]
        )


def test_chunk_size_below_eight_is_rejected():
    queries, table, positives, _ = _tied_catalogue()
    with pytest.raises(ValueError, match="Received: chunk_size=2"):
        metrics.rank_among_all_items_chunked(
            queries, table, positives, chunk_size=2
        )
