"""CoNet and DDTCDR (paper sec. 4.2): their equations, checked by hand.

What every baseline shares (trainable sets, steps, `fit`, saving, serving,
runs end to end) is tested with the others in
tests/training/finetune_baselines_test.py.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import config_flags
from uaf_tf.data import dataset_info
from uaf_tf.models.conet_recommender import CoNetRecommender
from uaf_tf.models.ddtcdr_recommender import DDTCDRRecommender
from uaf_tf.models.ddtcdr_recommender import orthogonality_penalty
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.training import finetune

V, T, C, L, B = 40, 12, 8, 7, 6


def _model(cls, **kwargs):
    keras.utils.set_random_seed(0)
    backbone = NextItNetBackbone(V, C, (1, 2))
    backbone.build((None, L))
    return cls.from_pretrained(backbone, T, seq_len=L, **kwargs)


def _ids(seed=0):
    ids = np.random.default_rng(seed).integers(1, V, [B, L])
    ids[0, :3] = 0  # Left padding.
    return tf.constant(ids, tf.int32)


def _batch(seed=0):
    rng = np.random.default_rng(seed + 100)
    return {
        dataset_info.SOURCE: _ids(seed),
        dataset_info.TARGET: tf.constant(rng.integers(1, T, B), tf.int32),
        dataset_info.NEGATIVE: tf.constant(rng.integers(1, T, B), tf.int32),
    }


def _numpy_cross_entropy(logits, labels):
    logits = logits - logits.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels]


def _numpy_source_loss(model, source_user, ids):
    """Next-item cross-entropy of every prefix, padding labels left out."""
    logits = source_user @ model.source_kernel.numpy().T
    logits = (logits + model.source_bias.numpy()).reshape(-1, V)
    labels = ids[:, 1:].reshape(-1)
    keep = labels != 0
    return _numpy_cross_entropy(logits[keep], labels[keep]).mean()


def _numpy_prefix_means(hidden):
    """`[B, L - 1, C]`: at t, the mean of `hidden[:, :t + 1]`."""
    return np.stack(
        [hidden[:, : t + 1].mean(axis=1) for t in range(hidden.shape[1] - 1)],
        axis=1,
    )


# === The orthogonality penalty ===


@pytest.mark.parametrize(
    "matrix, expected",
    [
        ("identity", 0.0),
        ("rotation", 0.0),
        # X = 2 I (3 x 3): X^T X - I = 3 I, squared norm 3 * 9.
        ("twice_identity", 27.0),
        # X = [[1, 1], [0, 1]]: X^T X - I = [[0, 1], [1, 1]].
        ("shear", 3.0),
    ],
)
def test_orthogonality_penalty_of_known_matrices(matrix, expected):
    angle = 0.3
    value = {
        "identity": np.eye(4),
        "rotation": [
            [np.cos(angle), -np.sin(angle)],
            [np.sin(angle), np.cos(angle)],
        ],
        "twice_identity": 2.0 * np.eye(3),
        "shear": [[1.0, 1.0], [0.0, 1.0]],
    }[matrix]
    penalty = orthogonality_penalty(tf.constant(value, tf.float32))
    np.testing.assert_allclose(float(penalty), expected, atol=1e-6)


def test_ddtcdr_map_starts_orthogonal():
    model = _model(DDTCDRRecommender)
    x = model.transfer_matrix.numpy()
    np.testing.assert_allclose(x.T @ x, np.eye(C), atol=1e-5)


# === Objective: ranking + source + extra terms, computed by hand ===


@pytest.mark.parametrize("cls", [CoNetRecommender, DDTCDRRecommender])
def test_loss_is_the_ranking_loss_plus_the_weighted_terms(cls):
    batch = _batch()
    model = _model(cls, source_weight=2.5)
    if cls is DDTCDRRecommender:
        model.orthogonal_weight = 3.0
        # Away from orthogonal, so the penalty counts.
        model.transfer_matrix.assign(1.5 * model.transfer_matrix)
    loss, logs = model.compute_loss_and_logs(batch, training=False)

    target_user, source_user = model.encode(batch[dataset_info.SOURCE])
    assert source_user.shape == (B, L - 1, C)
    source = _numpy_source_loss(
        model, source_user.numpy(), batch[dataset_info.SOURCE].numpy()
    )
    np.testing.assert_allclose(logs["source_loss"], source, rtol=1e-5)
    scores = model.score_items(
        target_user,
        tf.stack([batch[dataset_info.TARGET], batch[dataset_info.NEGATIVE]], 1),
    ).numpy()
    ranking = np.mean(np.log1p(np.exp(-(scores[:, 0] - scores[:, 1]))))
    np.testing.assert_allclose(logs["ranking_loss"], ranking, rtol=1e-5)
    expected = ranking + 2.5 * source
    if cls is DDTCDRRecommender:
        # X = 1.5 Q, Q orthogonal: X^T X - I = 1.25 I, C * 1.25^2.
        np.testing.assert_allclose(
            logs["orthogonality_penalty"], C * 1.25**2, rtol=1e-4
        )
        expected += 3.0 * C * 1.25**2
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_padding_labels_are_left_out_of_the_source_loss():
    model = _model(CoNetRecommender)
    ids = _ids().numpy()
    ids[:2, :5] = 0  # Longer left padding: 4 of 6 labels padding.
    _, source_user = model.encode(tf.constant(ids))
    np.testing.assert_allclose(
        model.source_loss(source_user, tf.constant(ids)),
        _numpy_source_loss(model, source_user.numpy(), ids),
        rtol=1e-5,
    )
    all_padding = tf.zeros([B, L], tf.int32)
    assert float(model.source_loss(source_user, all_padding)) == 0.0


@pytest.mark.parametrize("cls", [CoNetRecommender, DDTCDRRecommender])
def test_source_side_never_sees_the_item_it_predicts(cls):
    """h_s at t comes from x_1..x_t only; h_t reads the whole sequence."""
    model = _model(cls)
    ids = _ids().numpy()
    k = 4
    other = ids.copy()
    other[:, k] = (other[:, k] % (V - 1)) + 1  # Another item at k.
    target_a, source_a = model.encode(tf.constant(ids))
    target_b, source_b = model.encode(tf.constant(other))
    # Prefixes 0..k-1 (predicting x_1..x_k) never saw position k.
    np.testing.assert_allclose(
        source_a[:, :k], source_b[:, :k], rtol=1e-6, atol=1e-7
    )
    assert np.abs(source_a[:, k:] - source_b[:, k:]).max() > 1e-4
    assert np.abs(target_a.numpy() - target_b.numpy()).max() > 1e-4


# === CoNet: the cross connections carry the transfer ===


def test_conet_towers_follow_the_cross_connection_equations():
    model = _model(CoNetRecommender, num_layers=2)
    user = np.random.default_rng(3).normal(size=[B, C]).astype("float32")

    def dense(layer, x):
        kernel, *bias = [w.numpy() for w in layer.weights]
        return x @ kernel + (bias[0] if bias else 0.0)

    a_t, a_s = user, user
    for index in range(2):
        cross = model.cross_layers[index]
        a_t, a_s = (
            dense(model.target_layers[index], a_t) + dense(cross, a_s),
            dense(model.source_layers[index], a_s) + dense(cross, a_t),
        )
        if index == 0:
            a_t, a_s = np.maximum(a_t, 0), np.maximum(a_s, 0)
    target, source = model.towers(tf.constant(user))
    np.testing.assert_allclose(target, a_t, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(source, a_s, rtol=1e-5, atol=1e-6)


def test_conet_target_reads_the_source_tower_only_through_h():
    model = _model(CoNetRecommender)
    ids = _ids()
    before = model(ids)["user_embedding"].numpy()
    layer = model.source_layers[0]
    layer.kernel.assign(layer.kernel + 1.0)
    changed = model(ids)["user_embedding"].numpy()
    assert np.abs(changed - before).max() > 1e-3
    # Without cross connections the source tower cannot reach h_t.
    for cross in model.cross_layers:
        cross.kernel.assign(tf.zeros_like(cross.kernel))
    without = model(ids)["user_embedding"].numpy()
    layer.kernel.assign(layer.kernel - 1.0)
    np.testing.assert_array_equal(model(ids)["user_embedding"], without)


# === DDTCDR: own and transferred representations ===


def test_ddtcdr_user_representations_combine_own_and_transferred():
    model = _model(DDTCDRRecommender, transfer_weight=0.3)
    ids = _ids()
    own = tf.reduce_mean(model.backbone(ids), axis=1).numpy()
    other = tf.reduce_mean(model.source_backbone(ids), axis=1).numpy()
    own_ctx = _numpy_prefix_means(model.backbone(ids).numpy())
    other_ctx = _numpy_prefix_means(model.source_backbone(ids).numpy())
    x = model.transfer_matrix.numpy()
    target_user, source_user = model.encode(ids)
    # h_t = 0.7 u_t + 0.3 X u_s; h_s = 0.7 u_s_<=t + 0.3 X^T u_t_<=t.
    np.testing.assert_allclose(
        target_user, 0.7 * own + 0.3 * other @ x.T, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        source_user, 0.7 * other_ctx + 0.3 * own_ctx @ x, rtol=1e-5, atol=1e-6
    )
    # Two encoders, not one: the domains' representations differ.
    assert model.source_backbone is not model.backbone
    assert np.abs(own - other).max() > 1e-3


def test_ddtcdr_without_transfer_is_the_target_encoder_alone():
    model = _model(DDTCDRRecommender, transfer_weight=0.0)
    ids = _ids()
    expected = tf.reduce_mean(model.backbone(ids), axis=1)
    np.testing.assert_allclose(
        model(ids)["user_embedding"], expected, rtol=1e-6
    )


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (CoNetRecommender, {"num_layers": 0}, "num_layers=0"),
        (DDTCDRRecommender, {"transfer_weight": 1.5}, "transfer_weight=1.5"),
        (
            DDTCDRRecommender,
            {"orthogonal_weight": -1.0},
            "orthogonal_weight=-1.0",
        ),
        (CoNetRecommender, {"source_weight": -1.0}, "source_weight=-1.0"),
    ],
)
def test_invalid_arguments_name_the_value(cls, kwargs, message):
    backbone = NextItNetBackbone(V, C, (1,))
    with pytest.raises(ValueError, match=f"Received: {message}"):
        cls(backbone, T, **kwargs)


@pytest.mark.parametrize(
    "field, value",
    [
        ("conet_layers", 0),
        ("ddtcdr_transfer_weight", 1.5),
        ("ddtcdr_transfer_weight", -0.1),
        ("ddtcdr_orthogonal_weight", -1.0),
        ("cross_domain_source_weight", -1.0),
    ],
)
def test_config_rejects_out_of_range_options(field, value):
    with pytest.raises(config_flags.ConfigError, match=field):
        finetune.FinetuneConfig(
            data_dir="unused", pretrained="unused", **{field: value}
        )


def test_config_options_reach_the_models():
    config = finetune.FinetuneConfig(
        data_dir="unused",
        pretrained="unused",
        method="ddtcdr",
        cross_domain_source_weight=0.25,
        ddtcdr_transfer_weight=0.2,
        ddtcdr_orthogonal_weight=4.0,
        conet_layers=3,
    )
    backbone = NextItNetBackbone(V, C, (1,))
    backbone.build((None, L))
    model = finetune.model_for_method(config, backbone, T, seq_len=L)
    assert type(model) is DDTCDRRecommender
    assert (
        model.source_weight,
        model.transfer_weight,
        model.orthogonal_weight,
    ) == (0.25, 0.2, 4.0)
    config = dataclasses.replace(config, method="conet")
    model = finetune.model_for_method(config, backbone, T, seq_len=L)
    assert type(model) is CoNetRecommender
    assert (model.source_weight, model.num_layers) == (0.25, 3)
    assert len(model.cross_layers) == 3
