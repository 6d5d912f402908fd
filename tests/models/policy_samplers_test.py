"""Tests for the policy samplers and the action convention."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf.layers import policy_samplers
from uaf_tf.layers.policy_samplers import FINETUNE_INDEX
from uaf_tf.layers.policy_samplers import FREEZE_INDEX


def _logits_with_finetune_probability(p, batch, num_blocks=4):
    """Logits `[batch, N, 2]` with softmax(...)[FINETUNE_INDEX] = p."""
    logits = np.zeros([batch, num_blocks, 2], np.float32)
    logits[..., FINETUNE_INDEX] = math.log(p / (1 - p))
    return tf.constant(logits)


def test_action_convention():
    assert (FREEZE_INDEX, FINETUNE_INDEX) == (0, 1)
    logits = tf.constant([[[0.0, 3.0], [3.0, 0.0]]])  # [1, 2, 2]
    np.testing.assert_array_equal(
        policy_samplers.greedy_policy(logits), [[1.0, 0.0]]
    )


def test_log_prob_of_policy():
    logits = tf.constant([[[0.0, math.log(3.0)], [0.0, 0.0]]])
    # p(finetune) = 0.75 in block 0, 0.5 in block 1.
    np.testing.assert_allclose(
        policy_samplers.log_prob_of_policy(logits, tf.constant([[1.0, 0.0]])),
        [math.log(0.75) + math.log(0.5)],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        policy_samplers.log_prob_of_policy(logits, tf.constant([[0.0, 1.0]])),
        [math.log(0.25) + math.log(0.5)],
        rtol=1e-6,
    )


def test_gumbel_hard_samples_follow_the_categorical():
    # Gumbel-max: argmax of the relaxed sample is an exact categorical draw
    # for any temperature, so the fine-tuned fraction is p = 0.8.
    sampler = policy_samplers.GumbelPolicy(temperature=10.0, seed=1)
    logits = _logits_with_finetune_probability(0.8, batch=4000)
    policy = sampler(logits, training=True).numpy()
    assert set(np.unique(policy)) <= {0.0, 1.0}
    assert abs(policy.mean() - 0.8) < 0.02


def test_gumbel_original_sigmoid_logits_are_nearly_random():
    # The original feeds sigmoid(logits) as logits: with logits (0, 10),
    # p(finetune) = softmax(0.5, ~1)[1] = sigmoid(0.5) = 0.622, not ~1.
    sampler = policy_samplers.GumbelPolicy(
        gumbel_logits=policy_samplers.SIGMOID, seed=2
    )
    logits = np.zeros([4000, 4, 2], np.float32)
    logits[..., FINETUNE_INDEX] = 10.0
    policy = sampler(tf.constant(logits), training=True).numpy()
    expected = 1.0 / (1.0 + math.exp(-(1.0 / (1.0 + math.exp(-10)) - 0.5)))
    assert abs(expected - 0.6225) < 1e-3
    assert abs(policy.mean() - expected) < 0.02


def test_gumbel_straight_through_gradient():
    sampler = policy_samplers.GumbelPolicy(temperature=1.0, seed=3)
    logits = tf.Variable(tf.random.normal([8, 3, 2], seed=4))
    weights = tf.random.normal([8, 3], seed=5)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(sampler(logits, training=True) * weights)
    grad = tape.gradient(loss, logits)
    assert grad is not None and np.abs(grad.numpy()).max() > 0


def test_gumbel_inference_is_argmax_unless_stochastic_eval():
    logits = _logits_with_finetune_probability(0.6, batch=500)
    sampler = policy_samplers.GumbelPolicy(seed=6)
    np.testing.assert_array_equal(sampler(logits), np.ones([500, 4]))
    stochastic = policy_samplers.GumbelPolicy(stochastic_eval=True, seed=6)
    first, second = stochastic(logits).numpy(), stochastic(logits).numpy()
    assert abs(first.mean() - 0.6) < 0.05
    assert (first != second).any()


def test_soft_gate_is_sigmoid_of_logit_difference():
    logits = tf.constant([[[1.0, 3.0], [0.5, -1.0]]])
    gate = policy_samplers.SoftPolicy()(logits, training=True).numpy()
    np.testing.assert_allclose(
        gate, [[1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.5))]], rtol=1e-6
    )
    np.testing.assert_allclose(
        gate, tf.nn.softmax(logits)[..., FINETUNE_INDEX], rtol=1e-6
    )


def test_self_critical_samples_without_gradient_and_is_greedy_at_inference():
    sampler = policy_samplers.SelfCriticalPolicy(seed=7)
    logits = tf.Variable(_logits_with_finetune_probability(0.3, batch=4000))
    with tf.GradientTape() as tape:
        policy = sampler(logits, training=True)
        loss = tf.reduce_sum(policy)
    assert tape.gradient(loss, logits) is None
    assert abs(policy.numpy().mean() - 0.3) < 0.02
    np.testing.assert_array_equal(sampler(logits), np.zeros([4000, 4]))


def test_random_policy_utilisation_and_per_user_determinism():
    sampler = policy_samplers.RandomPolicy(num_blocks=8, seed=8)
    rng = np.random.default_rng(0)
    source = tf.constant(rng.integers(0, 1000, [4000, 12]), tf.int32)
    train = sampler(None, source_ids=source, training=True).numpy()
    assert abs(train.mean() - 0.5) < 0.02
    infer = sampler(None, source_ids=source).numpy()
    assert abs(infer.mean() - 0.5) < 0.05
    np.testing.assert_allclose(infer.mean(axis=0), 0.5, atol=0.05)
    # Same user, same policy: across calls and batch compositions.
    np.testing.assert_array_equal(infer, sampler(None, source_ids=source))
    np.testing.assert_array_equal(
        infer[10:20], sampler(None, source_ids=source[10:20])
    )
    # Different users get different policies (not one shared draw).
    assert len(np.unique(infer, axis=0)) > 200


@pytest.mark.parametrize("method", policy_samplers.METHODS)
def test_get_config_round_trip(method):
    sampler = policy_samplers.build_policy_sampler(
        method, 3, temperature=5.0, seed=11
    )
    config = keras.saving.serialize_keras_object(sampler)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(sampler)
    assert restored.get_config() == sampler.get_config()


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="method"):
        policy_samplers.build_policy_sampler("greedy", 3)
