"""Tests for FinetuneRecommender's target head (Eq. 7) and objective."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import losses
from uaf_tf.models.finetune_baseline import FinetuneBaseline
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone

V, T, C, L, B = 40, 12, 8, 7, 5


def _model(item_bias=True):
    keras.utils.set_random_seed(0)
    backbone = NextItNetBackbone(V, C, (1, 2))
    backbone.build((None, L))
    return FinetuneBaseline.from_pretrained(
        backbone, T, seq_len=L, item_bias=item_bias
    )


def _with_bias(model, seed=0):
    bias = np.random.default_rng(seed).normal(size=[T]).astype("float32")
    model.target_bias.embeddings.assign(bias[:, None])
    return bias


def test_scores_are_dot_product_plus_item_bias():
    """Eq. (7): o_y = <h, W_y> + b_y, for all items and for a subset."""
    model = _model()
    bias = _with_bias(model)
    user = np.random.default_rng(1).normal(size=[B, C]).astype("float32")
    table = model.target_item_embeddings.numpy()
    expected = user @ table.T + bias  # [B, T]
    np.testing.assert_allclose(
        model.score_all_items(user), expected, rtol=1e-5, atol=1e-5
    )
    items = np.random.default_rng(2).integers(0, T, [B, 3])
    np.testing.assert_allclose(
        model.score_items(user, items),
        np.take_along_axis(expected, items, axis=1),
        rtol=1e-5,
        atol=1e-5,
    )


def test_bias_starts_at_zero_and_can_be_dropped():
    model = _model()
    np.testing.assert_array_equal(model.target_bias.embeddings, 0.0)
    plain = _model(item_bias=False)
    assert plain.target_bias is None
    user = np.ones([B, C], "float32")
    np.testing.assert_allclose(
        plain.score_all_items(user),
        user @ plain.target_item_embeddings.numpy().T,
        rtol=1e-6,
    )


@pytest.mark.parametrize("item_bias", [True, False])
def test_loss_is_the_ranking_loss_of_the_scores(item_bias):
    model = _model(item_bias)
    if item_bias:
        _with_bias(model)
    rng = np.random.default_rng(3)
    batch = {
        "source": tf.constant(rng.integers(0, V, [B, L]), tf.int32),
        "target": tf.constant([1, 2, 3, 4, 5]),
        "negative": tf.constant([6, 7, 8, 9, 10]),
    }
    loss, logs = model.compute_loss_and_logs(batch, training=False)
    user = model(batch["source"])["user_embedding"]
    scores = model.score_all_items(user).numpy()
    rows = np.arange(B)
    expected = losses.bpr_loss(
        scores[rows, batch["target"].numpy()],
        scores[rows, batch["negative"].numpy()],
    )
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
    assert float(logs["ranking_loss"]) == float(loss)


def test_config_round_trip_keeps_item_bias():
    for item_bias in (True, False):
        model = _model(item_bias)
        clone = FinetuneBaseline.from_config(model.get_config())
        assert clone.item_bias is item_bias
