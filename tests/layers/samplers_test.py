"""Tests for the samplers, `get` / `serialize` and the action convention."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import testing
from uaf_tf.layers import samplers
from uaf_tf.layers.samplers import FINETUNE_INDEX
from uaf_tf.layers.samplers import FREEZE_INDEX


def _logits_with_finetune_probability(p, batch, num_blocks=4):
    """Logits `[batch, N, 2]` with softmax(...)[FINETUNE_INDEX] = p."""
    logits = np.zeros([batch, num_blocks, 2], np.float32)
    logits[..., FINETUNE_INDEX] = math.log(p / (1 - p))
    return tf.constant(logits)


def test_action_convention():
    assert (FREEZE_INDEX, FINETUNE_INDEX) == (0, 1)
    logits = tf.constant([[[0.0, 3.0], [3.0, 0.0]]])  # [1, 2, 2]
    np.testing.assert_array_equal(samplers.greedy_policy(logits), [[1.0, 0.0]])


def test_log_prob_of_policy():
    logits = tf.constant([[[0.0, math.log(3.0)], [0.0, 0.0]]])
    # p(finetune) = 0.75 in block 0, 0.5 in block 1.
    np.testing.assert_allclose(
        samplers.log_prob_of_policy(logits, tf.constant([[1.0, 0.0]])),
        [math.log(0.75) + math.log(0.5)],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        samplers.log_prob_of_policy(logits, tf.constant([[0.0, 1.0]])),
        [math.log(0.25) + math.log(0.5)],
        rtol=1e-6,
    )


def test_gumbel_hard_samples_follow_the_categorical():
    # Gumbel-max: argmax of the relaxed sample is an exact categorical draw
    # for any temperature, so the fine-tuned fraction is p = 0.8.
    sampler = samplers.GumbelSampler(temperature=10.0, seed=1)
    logits = _logits_with_finetune_probability(0.8, batch=4000)
    policy = sampler(logits, training=True).numpy()
    assert set(np.unique(policy)) <= {0.0, 1.0}
    assert abs(policy.mean() - 0.8) < 0.02


def test_gumbel_original_sigmoid_logits_are_nearly_random():
    # The original feeds sigmoid(logits) as logits: with logits (0, 10),
    # p(finetune) = softmax(0.5, ~1)[1] = sigmoid(0.5) = 0.622, not ~1.
    sampler = samplers.GumbelSampler(gumbel_logits=samplers.SIGMOID, seed=2)
    logits = np.zeros([4000, 4, 2], np.float32)
    logits[..., FINETUNE_INDEX] = 10.0
    policy = sampler(tf.constant(logits), training=True).numpy()
    expected = 1.0 / (1.0 + math.exp(-(1.0 / (1.0 + math.exp(-10)) - 0.5)))
    assert abs(expected - 0.6225) < 1e-3
    assert abs(policy.mean() - expected) < 0.02


def test_gumbel_straight_through_gradient():
    sampler = samplers.GumbelSampler(temperature=1.0, seed=3)
    logits = tf.Variable(tf.random.normal([8, 3, 2], seed=4))
    weights = tf.random.normal([8, 3], seed=5)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(sampler(logits, training=True) * weights)
    grad = tape.gradient(loss, logits)
    assert grad is not None and np.abs(grad.numpy()).max() > 0


def test_gumbel_inference_is_argmax_unless_stochastic_eval():
    logits = _logits_with_finetune_probability(0.6, batch=500)
    sampler = samplers.GumbelSampler(seed=6)
    np.testing.assert_array_equal(sampler(logits), np.ones([500, 4]))
    stochastic = samplers.GumbelSampler(stochastic_eval=True, seed=6)
    first, second = stochastic(logits).numpy(), stochastic(logits).numpy()
    assert abs(first.mean() - 0.6) < 0.05
    assert (first != second).any()


def test_soft_gate_is_sigmoid_of_logit_difference():
    logits = tf.constant([[[1.0, 3.0], [0.5, -1.0]]])
    gate = samplers.SoftSampler()(logits, training=True).numpy()
    np.testing.assert_allclose(
        gate, [[1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.5))]], rtol=1e-6
    )
    np.testing.assert_allclose(
        gate, tf.nn.softmax(logits)[..., FINETUNE_INDEX], rtol=1e-6
    )


def test_self_critical_samples_without_gradient_and_is_greedy_at_inference():
    sampler = samplers.SelfCriticalSampler(seed=7)
    logits = tf.Variable(_logits_with_finetune_probability(0.3, batch=4000))
    with tf.GradientTape() as tape:
        policy = sampler(logits, training=True)
        loss = tf.reduce_sum(policy)
    assert tape.gradient(loss, logits) is None
    assert abs(policy.numpy().mean() - 0.3) < 0.02
    np.testing.assert_array_equal(sampler(logits), np.zeros([4000, 4]))


def _random_policies(mode, source, training, num_blocks=8, **kwargs):
    sampler = samplers.RandomSampler(seed=8, mode=mode, **kwargs)
    return sampler(
        None, source_ids=source, num_blocks=num_blocks, training=training
    ).numpy()


def _sources(users=4000, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.integers(0, 1000, [users, 12]), tf.int32)


@pytest.mark.parametrize("mode", samplers.RANDOM_MODES)
def test_random_policy_utilisation_and_per_user_determinism(mode):
    source = _sources()
    train = _random_policies(mode, source, training=True)
    assert train.shape == (4000, 8)
    # Bernoulli(0.5): 4000 draws per block, std 0.008.
    np.testing.assert_allclose(train.mean(axis=0), 0.5, atol=0.03)
    infer = _random_policies(mode, source, training=False)
    np.testing.assert_allclose(infer.mean(axis=0), 0.5, atol=0.03)
    # Blocks are drawn independently: P(a_1 = a_2 = 1) = 0.25.
    assert abs((infer[:, 0] * infer[:, 1]).mean() - 0.25) < 0.03
    # Same user, same policy: across calls and batch compositions.
    np.testing.assert_array_equal(
        infer, _random_policies(mode, source, training=False)
    )
    np.testing.assert_array_equal(
        infer[10:20], _random_policies(mode, source[10:20], training=False)
    )
    # Different users get different policies (not one shared draw).
    assert len(np.unique(infer, axis=0)) > 200


def test_random_fixed_mode_keeps_a_users_policy_in_training_and_inference():
    """Paper sec. 5.3.1 case 1: seeds fixed during training and inference."""
    source = _sources()
    train = _random_policies("fixed", source, training=True)
    np.testing.assert_array_equal(
        train, _random_policies("fixed", source, training=False)
    )
    # Training steps repeat the user's policy too (no per-step stream).
    np.testing.assert_array_equal(
        train[:7], _random_policies("fixed", source[:7], training=True)
    )
    # Another key (seed of the run) draws other policies.
    other = _random_policies("fixed", source, training=True, hash_key=1)
    assert abs((other == train).mean() - 0.5) < 0.03


@pytest.mark.parametrize("mode", ["reseeded", "per_step"])
def test_random_modes_whose_evaluation_policy_is_not_the_training_one(mode):
    """Case 2 (`reseeded`, and the former `per_step`): the evaluation policy
    is independent of training's, so a block agrees with p = 1/2."""
    source = _sources()
    train = _random_policies(mode, source, training=True)
    infer = _random_policies(mode, source, training=False)
    assert abs((train == infer).mean() - 0.5) < 0.03
    if mode == "reseeded":  # Training draws are `fixed`'s, per user.
        np.testing.assert_array_equal(
            train, _random_policies("fixed", source, training=False)
        )
    else:  # Evaluation is `fixed`'s hash.
        np.testing.assert_array_equal(
            infer, _random_policies("fixed", source, training=False)
        )


def test_random_hash_compiles_with_xla_to_the_same_values():
    source = _sources(users=64)
    sampler = samplers.RandomSampler(mode="fixed")
    compiled = tf.function(
        lambda ids: sampler(None, source_ids=ids, num_blocks=4, training=True),
        jit_compile=True,
    )
    np.testing.assert_array_equal(
        compiled(source),
        sampler(None, source_ids=source, num_blocks=4, training=True),
    )


def test_random_sampler_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        samplers.RandomSampler(mode="fresh")


def test_random_sampler_needs_num_blocks():
    with pytest.raises(ValueError, match="num_blocks"):
        samplers.RandomSampler()(None, source_ids=tf.ones([2, 3], "int32"))


# Non-default settings of every sampler, to check they survive a round trip.
SETTINGS = {
    "gumbel": {
        "temperature": 5.0,
        "gumbel_logits": samplers.SIGMOID,
        "stochastic_eval": True,
        "seed": 11,
    },
    "soft": {},
    "rl": {
        "seed": 11,
        "reward": "original",
        "gamma": 0.5,
        "beta": 2.0,
        "reward_cutoff": 10,
        "curriculum_epochs": 2,
        "curriculum_actions": "greedy",
        "cost_weight": 0.25,
        "num_reward_negatives": 49,
    },
    "random": {
        "probability": 0.25,
        "seed": 11,
        "hash_key": 3,
        "mode": "reseeded",
    },
}
CLASSES = {
    "gumbel": samplers.GumbelSampler,
    "soft": samplers.SoftSampler,
    "rl": samplers.SelfCriticalSampler,
    "random": samplers.RandomSampler,
}


@pytest.mark.parametrize("method", samplers.METHODS)
def test_get_resolves_names_dicts_and_instances(method):
    default = samplers.get(method)
    assert type(default) is CLASSES[method]
    configured = samplers.get(
        {"class_name": method, "config": SETTINGS[method]}
    )
    assert type(configured) is CLASSES[method]
    for name, value in SETTINGS[method].items():
        assert getattr(configured, name) == value, name
    assert samplers.get(configured) is configured


@pytest.mark.parametrize("method", samplers.METHODS)
def test_serialize_round_trip(method):
    sampler = CLASSES[method](**SETTINGS[method])
    config = samplers.serialize(sampler)
    json.dumps(config)  # Plain JSON, as written into model.json.
    restored = samplers.get(config)
    assert type(restored) is type(sampler)
    assert restored.get_config() == sampler.get_config()
    # Keras' own deserialisation finds the registered class as well.
    again = keras.saving.deserialize_keras_object(config)
    assert again.get_config() == sampler.get_config()


@pytest.mark.parametrize("method", samplers.METHODS)
def test_from_options_takes_what_the_sampler_accepts(method):
    options = {
        k: v for settings in SETTINGS.values() for k, v in settings.items()
    }
    sampler = samplers.from_options(method, **options)
    assert type(sampler) is CLASSES[method]
    for name, value in SETTINGS[method].items():
        assert getattr(sampler, name) == value, name


def test_same_seed_same_stream():
    logits = _logits_with_finetune_probability(0.5, batch=64)
    first = samplers.GumbelSampler(seed=4)(logits, training=True)
    second = samplers.GumbelSampler(seed=4)(logits, training=True)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize(
    "identifier", ["greedy", {"class_name": "Greedy", "config": {}}, 3]
)
def test_unknown_identifiers_are_rejected(identifier):
    with pytest.raises(ValueError):
        samplers.get(identifier)


@pytest.mark.parametrize(
    "kwargs",
    [{"reward": "hit"}, {"curriculum_epochs": -1}, {"num_reward_negatives": 0}],
)
def test_self_critical_sampler_validates_its_settings(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        samplers.SelfCriticalSampler(**kwargs)


@pytest.mark.parametrize("method", samplers.METHODS)
def test_keras_layer_contract_at_inference(method):
    # Inference is deterministic, so eager, tf.function, from_config and
    # deserialised samplers must agree exactly (training draws differ by
    # design and are covered by the distribution tests above).
    batch, num_blocks, seq_len = 5, 4, 7
    logits = tf.random.stateless_normal([batch, num_blocks, 2], seed=(1, 2))
    ids = tf.random.stateless_uniform(
        [batch, seq_len], seed=(3, 4), minval=1, maxval=50, dtype=tf.int32
    )
    testing.run_layer_test(
        CLASSES[method],
        {k: v for k, v in SETTINGS[method].items() if k != "stochastic_eval"},
        (logits,),
        expected_output_shape=(batch, num_blocks),
        expected_num_trainable_weights=0,
        call_kwargs={
            "source_ids": ids,
            "num_blocks": num_blocks,
            "training": False,
        },
        atol=0.0,
        rtol=0.0,
    )
