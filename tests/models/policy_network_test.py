"""Tests for PolicyNetwork (paper sec. 3.3, 5.3.3)."""

import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import testing
from uaf_tf.models import policy_network
from uaf_tf.models.policy_network import PolicyNetwork

V, C, N, L = 30, 8, 5, 7


def _ids(batch=3, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.integers(0, V, [batch, L]), tf.int32)


@pytest.mark.parametrize(
    "encoder, encoder_weights",
    [
        # 2 DilatedResidualBlocks x 8 weights.
        (policy_network.CONV, 16),
        # GRU: kernel, recurrent kernel, bias.
        (policy_network.GRU, 3),
    ],
)
def test_shapes_and_weight_counts(encoder, encoder_weights):
    policy = PolicyNetwork(V, C, N, encoder=encoder)
    logits = policy(_ids())
    assert logits.shape == (3, N, 2)
    # + item embedding + head kernel and bias.
    assert len(policy.trainable_weights) == encoder_weights + 3
    assert policy.head.kernel.shape == (C, 2 * N)


def test_conv_encoder_is_mean_over_positions_of_the_blocks():
    policy = PolicyNetwork(V, C, N)
    ids = _ids()
    policy(ids)  # builds every sublayer
    blocks = policy.sequence_encoder.blocks
    hidden = policy.item_embedding(ids)
    for block in blocks:
        hidden = block(hidden)
    np.testing.assert_allclose(
        policy.encode(ids), tf.reduce_mean(hidden, axis=1), rtol=1e-6
    )
    assert [b.dilation_rate for b in blocks] == [1, 4]


def test_set_item_embeddings():
    policy = PolicyNetwork(V, C, N)
    table = np.random.default_rng(1).standard_normal([V, C]).astype("float32")
    policy.set_item_embeddings(table)
    np.testing.assert_array_equal(policy.item_embedding.embeddings, table)


@pytest.mark.parametrize(
    "encoder, encoder_weights",
    [(policy_network.CONV, 16), (policy_network.GRU, 3)],
)
def test_layer_contract(encoder, encoder_weights):
    testing.run_layer_test(
        PolicyNetwork,
        dict(num_items=V, channels=C, num_blocks=N, encoder=encoder),
        _ids(),
        expected_output_shape=(3, N, 2),
        expected_num_trainable_weights=encoder_weights + 3,
        expected_num_non_trainable_weights=0,
    )


def test_rejects_unknown_encoder():
    with pytest.raises(ValueError, match="encoder"):
        PolicyNetwork(V, C, N, encoder="lstm")
