"""Tests for ModelPatch (PeterRec's bottleneck adapter)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import testing
from uaf_tf.layers.model_patch import ModelPatch

C = 16


def test_layer_contract():
    testing.run_layer_test(
        ModelPatch,
        {},
        tf.random.normal([2, 5, C], seed=0),
        (2, 5, C),
        expected_num_trainable_weights=4,
        expected_num_non_trainable_weights=0,
    )


def test_closed_form_against_numpy():
    keras.utils.set_random_seed(0)
    patch = ModelPatch(bottleneck_dim=3)
    x = np.random.default_rng(0).standard_normal([2, 4, C]).astype("float32")
    patch.build(x.shape)
    rng = np.random.default_rng(1)
    patch.set_weights([rng.standard_normal(w.shape) for w in patch.weights])
    down, down_bias, up, up_bias = patch.get_weights()
    z = x @ down + down_bias
    gelu = 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))
    np.testing.assert_allclose(
        patch(x), x + gelu @ up + up_bias, rtol=1e-4, atol=1e-4
    )


def test_default_bottleneck_is_a_quarter_of_the_width():
    patch = ModelPatch()
    patch.build((None, None, C))
    assert patch.down_kernel.shape == (C, C // 4)
    assert patch.up_kernel.shape == (C // 4, C)


def test_a_new_patch_is_near_identity():
    """Truncated normal 0.02 kernels and zero biases (the PeterRec code's
    init): not exactly the identity, but within 1% of |x|."""
    keras.utils.set_random_seed(0)
    patch = ModelPatch()
    x = tf.random.normal([8, 10, C], seed=1)
    deviation = float(tf.norm(patch(x) - x) / tf.norm(x))
    assert 0.0 < deviation < 0.01
    # With the up-projection at zero it is exactly the identity.
    patch.up_kernel.assign(tf.zeros_like(patch.up_kernel))
    np.testing.assert_array_equal(patch(x), x)


def test_rejects_a_bad_bottleneck():
    with pytest.raises(ValueError, match="Received: bottleneck_dim=0"):
        ModelPatch(bottleneck_dim=0)
