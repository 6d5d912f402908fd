"""DilatedResidualBlock against NumPy (paper Eq. 1-2), causality, contract."""

import keras
import numpy as np

from uaf_tf import testing
from uaf_tf.layers.residual_block import DilatedResidualBlock


def numpy_layer_norm(x, gamma, beta, eps=1e-8):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def numpy_residual_block(x, weights, dilation):
    """E + ReLU(LN2(psi2(ReLU(LN1(psi1(E)))))), Eq. (1)-(2)."""
    k1, b1, g1, be1, k2, b2, g2, be2 = weights
    conv = testing.numpy_causal_conv
    h = np.maximum(numpy_layer_norm(conv(x, k1, b1, dilation), g1, be1), 0)
    h = np.maximum(numpy_layer_norm(conv(h, k2, b2, 2 * dilation), g2, be2), 0)
    return x + h


def test_block_matches_numpy_eq2_with_nontrivial_norm_weights():
    rng = np.random.default_rng(1)
    block = DilatedResidualBlock(channels=4, kernel_size=3, dilation_rate=2)
    x = rng.standard_normal([2, 9, 4]).astype("float32")
    block.build(x.shape)
    # Order of block.get_weights(): conv_1 (kernel, bias), norm_1 (gamma,
    # beta), conv_2, norm_2; every one random so none can be skipped.
    weights = [
        rng.standard_normal(w.shape).astype("float32")
        for w in block.get_weights()
    ]
    block.set_weights(weights)
    np.testing.assert_allclose(
        block(x).numpy(),
        numpy_residual_block(x, weights, 2),
        rtol=1e-4,
        atol=1e-4,
    )
    # Two convs with dilations d and 2d: 1 + 2 * (2 + 4) positions.
    assert block.receptive_field == 13


def test_layer_norm_epsilon_is_the_originals():
    block = DilatedResidualBlock(channels=4)
    assert block.norm_1.epsilon == 1e-8 and block.norm_2.epsilon == 1e-8


def test_block_is_causal():
    rng = np.random.default_rng(2)
    block = DilatedResidualBlock(channels=8, dilation_rate=2)
    x = rng.standard_normal([1, 20, 8]).astype("float32")
    base = block(x).numpy()
    changed = x.copy()
    changed[:, 12:] += 5.0
    out = block(changed).numpy()
    np.testing.assert_allclose(out[:, :12], base[:, :12], atol=1e-6)
    assert np.abs(out[:, 12] - base[:, 12]).max() > 1e-3


def test_layer_contract():
    x = np.random.default_rng(3).standard_normal([2, 7, 6]).astype("float32")
    testing.run_layer_test(
        DilatedResidualBlock,
        dict(channels=6, kernel_size=2, dilation_rate=4, name="block"),
        x,
        expected_output_shape=(2, 7, 6),
        # 2 x (conv kernel, conv bias, LN gamma, LN beta).
        expected_num_trainable_weights=8,
        expected_num_non_trainable_weights=0,
    )
    # model.json names it under the project's package.
    assert (
        keras.saving.get_registered_name(DilatedResidualBlock)
        == "uaf_tf>DilatedResidualBlock"
    )
