"""Tests for the fine-tuning losses against closed forms."""

import math

import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import losses
from uaf_tf.layers import samplers


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@pytest.mark.parametrize(
    "pos, neg",
    [([0.0], [0.0]), ([2.0, -1.0], [0.5, 1.0]), ([3.0], [-2.0])],
)
def test_bpr_and_pointwise_closed_form(pos, neg):
    bpr = np.mean(
        [-math.log(_sigmoid(p - n)) for p, n in zip(pos, neg, strict=True)]
    )
    pointwise = np.mean(
        [
            -math.log(_sigmoid(p)) - math.log(1 - _sigmoid(n))
            for p, n in zip(pos, neg, strict=True)
        ]
    )
    pos, neg = tf.constant(pos), tf.constant(neg)
    np.testing.assert_allclose(losses.bpr_loss(pos, neg), bpr, rtol=1e-6)
    np.testing.assert_allclose(
        losses.pointwise_loss(pos, neg), pointwise, rtol=1e-6
    )


def test_equal_scores():
    zero = tf.zeros([4])
    np.testing.assert_allclose(losses.bpr_loss(zero, zero), math.log(2))
    np.testing.assert_allclose(
        losses.pointwise_loss(zero, zero), 2 * math.log(2), rtol=1e-6
    )


def test_numerically_stable_for_large_scores():
    pos, neg = tf.constant([-100.0, 100.0]), tf.constant([100.0, -100.0])
    # -log sigmoid(-200) = 200 (+ e^-200), -log sigmoid(200) ~ 0.
    np.testing.assert_allclose(losses.bpr_loss(pos, neg), 100.0, rtol=1e-6)
    np.testing.assert_allclose(
        losses.pointwise_loss(pos, neg), 100.0, rtol=1e-6
    )
    with tf.GradientTape() as tape:
        tape.watch(pos)
        loss = losses.bpr_loss(pos, neg)
    assert np.isfinite(tape.gradient(loss, pos).numpy()).all()


def test_ranking_loss_by_name():
    assert losses.ranking_loss("bpr") is losses.bpr_loss
    assert losses.ranking_loss("pointwise") is losses.pointwise_loss
    with pytest.raises(ValueError):
        losses.ranking_loss("bce")


def test_self_critical_loss_value():
    log_prob = tf.constant([-1.0, -2.0])
    loss = losses.self_critical_loss(
        log_prob, tf.constant([1.0, -1.0]), tf.constant([-1.0, 0.0])
    )
    # mean(-(-1) * 2, -(-2) * (-1)) = mean(2, -2) = 0.
    np.testing.assert_allclose(loss, 0.0)


@pytest.mark.parametrize(
    "sampled_reward, greedy_reward, increases",
    [(1.0, -1.0, True), (-1.0, 0.75, False)],
)
def test_one_step_moves_sampled_policy_by_the_advantage_sign(
    sampled_reward, greedy_reward, increases
):
    """A sampled policy better than greedy becomes more likely, else less."""
    logits = tf.Variable(tf.random.normal([1, 4, 2], seed=1))
    sampled = 1.0 - samplers.greedy_policy(logits)  # not the greedy
    before = float(samplers.log_prob_of_policy(logits, sampled)[0])
    with tf.GradientTape() as tape:
        loss = losses.self_critical_loss(
            samplers.log_prob_of_policy(logits, sampled),
            tf.constant([sampled_reward]),
            tf.constant([greedy_reward]),
        )
    logits.assign_sub(0.1 * tape.gradient(loss, logits))
    after = float(samplers.log_prob_of_policy(logits, sampled)[0])
    assert (after > before) == increases
    assert abs(after - before) > 1e-3


@pytest.mark.parametrize("chunk_size", [1, 7, 16, 61, 1000])
@pytest.mark.parametrize("scale", [1.0, 300.0], ids=["unit", "large"])
def test_chunked_softmax_cross_entropy_equals_the_full_softmax(
    chunk_size, scale
):
    """V = 61 (prime: no chunk size in (1, 61) divides it). `large` puts
    logits in the thousands, where a naive exp overflows: the running
    maximum keeps it finite and equal."""
    rng = np.random.default_rng(0)
    features = tf.constant(rng.normal(size=(40, 12)) * scale, tf.float32)
    kernel = tf.constant(rng.normal(size=(61, 12)), tf.float32)
    bias = tf.constant(rng.normal(size=61), tf.float32)
    labels = tf.constant(rng.integers(0, 61, 40), tf.int32)
    expected = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels,
        logits=tf.matmul(features, kernel, transpose_b=True) + bias,
    )
    got = losses.chunked_softmax_cross_entropy(
        features, kernel, bias, labels, chunk_size
    )
    in_graph = tf.function(losses.chunked_softmax_cross_entropy)(
        features, kernel, bias, labels, chunk_size
    )
    assert np.isfinite(got).all()
    tolerance = 1e-5 * scale
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=tolerance)
    np.testing.assert_allclose(in_graph, expected, rtol=1e-5, atol=tolerance)
