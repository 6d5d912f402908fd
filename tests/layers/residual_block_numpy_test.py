"""CausalDilatedConv1D and DilatedResidualBlock against NumPy (paper Eq. 2)."""

import keras
import numpy as np
import pytest

from uaf_tf import testing
from uaf_tf.layers.causal_dilated_conv import CausalDilatedConv1D
from uaf_tf.layers.residual_block import DilatedResidualBlock


def numpy_causal_conv(x, kernel, bias, dilation):
    """Explicit loops: out[t] = b + sum_j x[t - (k - 1 - j) d] @ W[j]."""
    batch, length, _ = x.shape
    k, _, c_out = kernel.shape
    out = np.zeros([batch, length, c_out])
    for b in range(batch):
        for t in range(length):
            out[b, t] = bias
            for j in range(k):
                source = t - (k - 1 - j) * dilation
                if source >= 0:
                    out[b, t] += x[b, source] @ kernel[j]
    return out


def numpy_layer_norm(x, gamma, beta, eps=1e-8):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def numpy_residual_block(x, weights, dilation):
    """E + ReLU(LN2(psi2(ReLU(LN1(psi1(E)))))), Eq. (1)-(2)."""
    k1, b1, g1, be1, k2, b2, g2, be2 = weights
    h = np.maximum(
        numpy_layer_norm(numpy_causal_conv(x, k1, b1, dilation), g1, be1), 0
    )
    h = np.maximum(
        numpy_layer_norm(numpy_causal_conv(h, k2, b2, 2 * dilation), g2, be2), 0
    )
    return x + h


@pytest.mark.parametrize("kernel_size,dilation", [(3, 1), (3, 2), (2, 3)])
def test_conv_matches_numpy_loops(kernel_size, dilation):
    rng = np.random.default_rng(0)
    conv = CausalDilatedConv1D(5, kernel_size, dilation)
    x = rng.standard_normal([2, 11, 3]).astype("float32")
    conv.build(x.shape)
    kernel = rng.standard_normal([kernel_size, 3, 5]).astype("float32")
    bias = rng.standard_normal([5]).astype("float32")
    conv.set_weights([kernel, bias])
    np.testing.assert_allclose(
        conv(x).numpy(),
        numpy_causal_conv(x, kernel, bias, dilation),
        rtol=1e-5,
        atol=1e-5,
    )
    assert conv.receptive_field == (kernel_size - 1) * dilation + 1


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


@pytest.mark.parametrize(
    "cls, init_kwargs, num_weights",
    [
        # kernel, bias.
        (
            CausalDilatedConv1D,
            dict(filters=6, kernel_size=2, dilation_rate=3),
            2,
        ),
        # 2 x (conv kernel, conv bias, LN gamma, LN beta).
        (
            DilatedResidualBlock,
            dict(channels=6, kernel_size=2, dilation_rate=4),
            8,
        ),
    ],
    ids=["conv", "block"],
)
def test_layer_contract(cls, init_kwargs, num_weights):
    x = np.random.default_rng(3).standard_normal([2, 7, 6]).astype("float32")
    testing.run_layer_test(
        cls,
        {**init_kwargs, "kernel_size": 2, "name": "layer"},
        x,
        expected_output_shape=(2, 7, 6),
        expected_num_trainable_weights=num_weights,
        expected_num_non_trainable_weights=0,
    )
    # model.json names it under the project's package.
    assert keras.saving.get_registered_name(cls) == f"uaf_tf>{cls.__name__}"
