"""Tests for UAFRecommender: Eq. 6-7 wiring, freezing, determinism, saving."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import run_dir as run_dir_lib
from uaf_tf import testing
from uaf_tf.layers import samplers
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.uaf_recommender import POLICY
from uaf_tf.models.uaf_recommender import POLICY_LOGITS
from uaf_tf.models.uaf_recommender import USER_EMBEDDING
from uaf_tf.models.uaf_recommender import UAFRecommender

V, T, C, L = 40, 25, 8, 9
DILATIONS = (1, 2, 4)  # N = 3 blocks


def _backbone(seed=0):
    keras.utils.set_random_seed(seed)
    backbone = NextItNetBackbone(V, C, DILATIONS)
    backbone.build((None, L))
    return backbone


def _model(method="gumbel", **kwargs):
    return UAFRecommender.from_pretrained(
        _backbone(),
        T,
        seq_len=L,
        sampler=samplers.from_options(method, seed=3),
        **kwargs,
    )


def _ids(batch=6, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, V, [batch, L])
    ids[0, :4] = 0  # a left-padded history
    return tf.constant(ids, tf.int32)


def _perturb(layer, seed=1):
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [w + 0.1 * rng.standard_normal(w.shape) for w in layer.get_weights()]
    )


def test_all_frozen_policy_equals_the_pretrained_encoder():
    model = _model()
    for gated in model.gated_blocks:
        _perturb(gated.finetuned)
    ids = _ids()
    user = model.encode(ids, tf.zeros([6, 3]))
    expected = tf.reduce_mean(model.backbone(ids), axis=1)
    np.testing.assert_array_equal(user, expected)


def test_all_finetuned_policy_equals_the_copies():
    model = _model()
    for gated in model.gated_blocks:
        _perturb(gated.finetuned)
    ids = _ids()
    hidden = model.backbone.embed(ids)
    for gated in model.gated_blocks:
        hidden = gated.finetuned(hidden)
    user = model.encode(ids, tf.ones([6, 3]))
    np.testing.assert_array_equal(user, tf.reduce_mean(hidden, axis=1))
    assert np.abs(user - model.encode(ids, tf.zeros([6, 3]))).max() > 1e-3


def test_from_pretrained_initialisation():
    model = _model()
    for gated, block in zip(
        model.gated_blocks, model.backbone.blocks, strict=True
    ):
        assert gated.frozen is block
        for a, b in zip(
            block.get_weights(), gated.finetuned.get_weights(), strict=True
        ):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        model.policy_network.item_embedding.embeddings,
        model.backbone.item_embedding.embeddings,
    )
    # Separate tables: fine-tuning one does not move the other.
    assert (
        model.policy_network.item_embedding.embeddings
        is not model.backbone.item_embedding.embeddings
    )
    assert model.target_item_embeddings.shape == (T, C)


# Weights: source embedding 1; each DilatedResidualBlock 8; policy network =
# embedding 1 + 2 conv blocks x 8 + head 2 = 19 (GRU: 1 + 3 + 2 = 6);
# target head 2 (item table + item bias, Eq. 7).
@pytest.mark.parametrize(
    "method, kwargs, trainable, frozen",
    [
        ("gumbel", {}, 1 + 3 * 8 + 19 + 2, 3 * 8),
        ("soft", {"policy_encoder": "gru"}, 1 + 3 * 8 + 6 + 2, 3 * 8),
        ("rl", {}, 1 + 3 * 8 + 19 + 2, 3 * 8),
        ("random", {}, 1 + 3 * 8 + 2, 3 * 8),
        ("gumbel", {"freeze_embedding": True}, 3 * 8 + 19 + 2, 1 + 3 * 8),
        ("gumbel", {"item_bias": False}, 1 + 3 * 8 + 19 + 1, 3 * 8),
    ],
)
def test_weight_counts(method, kwargs, trainable, frozen):
    model = _model(method, **kwargs)
    assert len(model.trainable_weights) == trainable
    assert len(model.non_trainable_weights) == frozen
    frozen_ids = {id(v) for v in model.non_trainable_weights}
    for block in model.backbone.blocks:
        assert {id(v) for v in block.weights} <= frozen_ids


@pytest.mark.parametrize("method", samplers.METHODS)
def test_call_outputs_and_deterministic_inference(method):
    model = _model(method)
    ids = _ids()
    out = model(ids)
    assert out[USER_EMBEDDING].shape == (6, C)
    assert out[POLICY].shape == (6, 3)
    assert (POLICY_LOGITS in out) == (method != "random")
    again = model(ids)
    np.testing.assert_array_equal(out[POLICY], again[POLICY])
    np.testing.assert_array_equal(out[USER_EMBEDDING], again[USER_EMBEDDING])
    # Per-user: a user's output does not depend on the rest of the batch.
    np.testing.assert_allclose(
        model(ids[2:4])[USER_EMBEDDING], out[USER_EMBEDDING][2:4], atol=1e-6
    )
    if method != "soft":
        assert set(np.unique(out[POLICY])) <= {0.0, 1.0}


def test_scores_are_dot_products_with_the_target_table():
    model = _model()
    user = model(_ids())[USER_EMBEDDING]
    items = tf.constant(np.random.default_rng(2).integers(0, T, [6, 4]))
    all_scores = model.score_all_items(user)
    assert all_scores.shape == (6, T)
    np.testing.assert_allclose(
        model.score_items(user, items),
        tf.gather(all_scores, items, batch_dims=1),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        all_scores,
        user.numpy() @ model.target_item_embeddings.numpy().T,
        rtol=1e-5,
        atol=1e-7,
    )


@pytest.mark.parametrize("method", samplers.METHODS)
def test_save_and_load_give_identical_outputs(method, tmp_path):
    model = _model(method, policy_encoder="gru" if method == "soft" else "conv")
    for gated in model.gated_blocks:
        _perturb(gated.finetuned)
    ids = _ids()
    expected = model(ids)
    run_dir = str(tmp_path)
    run_dir_lib.save_model_spec(model, run_dir)
    weights = str(tmp_path / "model.weights.h5")
    model.save_weights(weights)
    restored = run_dir_lib.load_model(run_dir, weights=weights)
    assert isinstance(restored, UAFRecommender)
    # JSON turns tuples into lists; compare the JSON forms.
    assert json.dumps(restored.get_config(), sort_keys=True) == json.dumps(
        model.get_config(), sort_keys=True
    )
    assert len(restored.trainable_weights) == len(model.trainable_weights)
    assert len(restored.non_trainable_weights) == len(
        model.non_trainable_weights
    )
    out = restored(ids, training=False)
    for key in expected:
        np.testing.assert_array_equal(out[key], expected[key])


def test_rejects_unknown_method():
    with pytest.raises(ValueError, match="method"):
        UAFRecommender(_backbone(), T, sampler="hard")


@pytest.mark.parametrize("method", samplers.METHODS)
def test_from_config_round_trip(method):
    model = _model(method, ranking_loss="pointwise")
    for gated in model.gated_blocks:
        _perturb(gated.finetuned)
    config = model.get_config()
    json.dumps(config)  # Nested objects are serialised, not referenced.
    restored = UAFRecommender.from_config(config)
    restored.build((None, L))
    restored.set_weights(model.get_weights())
    # Nested objects come back as objects, with their settings.
    assert type(restored.sampler) is type(model.sampler)
    assert restored.sampler.get_config() == model.sampler.get_config()
    assert type(restored.backbone) is type(model.backbone)
    assert restored.ranking_loss == "pointwise"
    ids = _ids()
    expected, out = model(ids), restored(ids)
    assert sorted(out) == sorted(expected)
    for key in expected:
        np.testing.assert_array_equal(out[key], expected[key])


@pytest.mark.parametrize("sampler", ["gumbel", "soft", "rl", "random"])
def test_sampler_by_name_or_instance(sampler):
    by_name = UAFRecommender(_backbone(), T, sampler=sampler)
    assert by_name.sampler is not None
    assert (by_name.policy_network is None) == (sampler == "random")
    instance = samplers.get(sampler)
    assert UAFRecommender(_backbone(), T, sampler=instance).sampler is instance


@pytest.mark.parametrize(
    "head_init, max_confidence",
    [("normal_0.01", 0.55), ("glorot", None)],
)
def test_untrained_policy_start(head_init, max_confidence):
    """Default (original) head init: the untrained policy is near-uniform
    and its greedy actions differ across users; with Glorot it is not."""
    model = _model(policy_head_init=head_init)
    ids = _ids(batch=32)
    out = model(ids)
    probs = tf.nn.softmax(out[POLICY_LOGITS]).numpy()[..., 1]
    if head_init == "normal_0.01":
        assert np.abs(probs - 0.5).max() < max_confidence - 0.5
        distinct = {tuple(p) for p in out[POLICY].numpy()}
        assert len(distinct) > 1
    else:
        assert np.abs(probs - 0.5).max() > 0.05
    assert model.get_config()["policy_head_init"] == head_init


@pytest.mark.parametrize("method", samplers.METHODS)
def test_keras_file_round_trip(method):
    model = _model(method)
    for gated in model.gated_blocks:
        _perturb(gated.finetuned)
    testing.run_model_saving_test(model, _ids())


# === Conditional computation at inference ===


def _both_branches(model, ids):
    """Today's Eq. (6) path: both branches of every block for every user."""
    policy = model.choose_policy(model.policy_logits(ids), ids)
    return model.encode(ids, policy, hard_policy=False), policy


def _force_policy(model, finetune):
    """Sets the policy head's bias so every action is `finetune` (bool)."""
    head = model.policy_network.head
    bias = np.zeros([model.num_blocks, 2], "float32")
    bias[:, int(finetune)] = 100.0
    head.bias.assign(bias.reshape(-1))


@pytest.mark.parametrize(
    "method, hard",
    [("gumbel", True), ("rl", True), ("random", True), ("soft", False)],
)
def test_hardness_is_decided_by_the_sampler(method, hard):
    assert _model(method).hard_policy is hard


@pytest.mark.parametrize("policy", ["learned", "all_frozen", "all_finetuned"])
@pytest.mark.parametrize("batch", [1, 6, 32])
def test_conditional_inference_equals_both_branches(policy, batch):
    model = _model("gumbel")
    for gated in model.gated_blocks:
        _perturb(gated.finetuned)
    if policy != "learned":
        _force_policy(model, policy == "all_finetuned")
    ids = _ids(batch=batch)
    expected, expected_policy = _both_branches(model, ids)
    for call in (model, tf.function(lambda x: model(x, training=False))):
        out = call(ids)
        np.testing.assert_array_equal(out[POLICY], expected_policy)
        np.testing.assert_allclose(
            out[USER_EMBEDDING], expected, rtol=1e-5, atol=1e-6
        )
    if policy == "learned" and batch == 32:
        # The untrained policy mixes actions within a block's batch.
        fractions = expected_policy.numpy().mean(axis=0)
        assert ((fractions > 0) & (fractions < 1)).any()
    if policy != "learned":
        assert set(np.unique(expected_policy)) == {
            float(policy != "all_frozen")
        }


def test_conditional_inference_of_an_empty_batch():
    # UAF-Random has no policy network (whose convolutions would need rows).
    model = _model("random")
    out = model(tf.zeros([0, L], tf.int32))
    assert out[USER_EMBEDDING].shape == (0, C)
    assert out[POLICY].shape == (0, 3)


def test_conditional_inference_through_a_saved_model(tmp_path):
    model = _model("random")
    for gated in model.gated_blocks:
        _perturb(gated.finetuned)

    class Serving(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, L], tf.int32)])
        def serve(self, ids):
            return self.model(ids, training=False)

    path = str(tmp_path / "saved")
    tf.saved_model.save(Serving(model), path)
    loaded = tf.saved_model.load(path)  # keeps the variables alive
    serve = loaded.serve
    for batch in (1, 6, 32):
        ids = _ids(batch=batch, seed=batch)
        expected, policy = _both_branches(model, ids)
        out = serve(ids)
        np.testing.assert_array_equal(out[POLICY], policy)
        np.testing.assert_allclose(
            out[USER_EMBEDDING], expected, rtol=1e-5, atol=1e-6
        )
    # UAF-Random's per-user hash mixes the actions of a 32-user batch.
    assert 0 < policy.numpy().mean() < 1
    assert serve(tf.zeros([0, L], tf.int32))[USER_EMBEDDING].shape == (0, C)
