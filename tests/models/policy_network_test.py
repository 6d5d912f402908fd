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


def test_rejects_unknown_head_init():
    with pytest.raises(ValueError, match="head_init"):
        PolicyNetwork(V, C, N, head_init="zeros")


def test_head_init_normal_is_the_originals_n_0_001():
    """The default head kernel is N(0, 0.01) (original); `glorot` is Keras's
    glorot_uniform, limit sqrt(6 / (C + 2N)) = 0.65, std 0.38 here."""
    ids = _ids()
    tf.keras.utils.set_random_seed(0)
    normal = PolicyNetwork(V, C, N)
    normal(ids)
    kernel = normal.head.kernel.numpy()
    assert normal.head_init == policy_network.NORMAL_001
    assert abs(kernel.std() - 0.01) < 0.003  # 80 draws of N(0, 0.01)
    np.testing.assert_array_equal(normal.head.bias.numpy(), 0.0)
    tf.keras.utils.set_random_seed(0)
    glorot = PolicyNetwork(V, C, N, head_init=policy_network.GLOROT)
    glorot(ids)
    glorot_kernel = glorot.head.kernel.numpy()
    assert np.abs(glorot_kernel).max() <= np.sqrt(6.0 / (C + 2 * N))
    assert abs(glorot_kernel.std() - np.sqrt(2.0 / (C + 2 * N))) < 0.1
    assert PolicyNetwork.from_config(glorot.get_config()).head_init == (
        policy_network.GLOROT
    )
