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
