"""Tests for PatchedResidualBlock (PeterRec's serial insertion)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import testing
from uaf_tf.layers.patched_residual_block import PatchedResidualBlock
from uaf_tf.layers.residual_block import DilatedResidualBlock

C = 8


def _pretrained_block(seed=0):
    keras.utils.set_random_seed(seed)
    block = DilatedResidualBlock(C, kernel_size=3, dilation_rate=2)
    block.build((None, None, C))
    rng = np.random.default_rng(seed)
    # Pretrained norms are not the (1, 0) init.
    block.set_weights(
        [w + 0.1 * rng.standard_normal(w.shape) for w in block.get_weights()]
    )
    return block


def test_layer_contract():
    testing.run_layer_test(
        PatchedResidualBlock,
        {"block": DilatedResidualBlock(C)},
        tf.random.normal([2, 7, C], seed=0),
        (2, 7, C),
        # 2 patches x 4 + 2 norms x 2; the block's 8 weights are frozen.
        expected_num_trainable_weights=12,
        expected_num_non_trainable_weights=8,
    )


def test_from_pretrained_freezes_the_block_and_copies_its_norms():
    block = _pretrained_block()
    patched = PatchedResidualBlock.from_pretrained(block)
    assert patched.frozen is block and not block.trainable
    assert all(not w.trainable for w in block.weights)
    expected = [
        *patched.patch_1.weights,
        *patched.norm_1.weights,
        *patched.patch_2.weights,
        *patched.norm_2.weights,
    ]
    assert {id(w) for w in patched.trainable_weights} == {
        id(w) for w in expected
    }
    for copy, pretrained in (
        (patched.norm_1, block.norm_1),
        (
            patched.norm_2,
            block.norm_2,
        ),
    ):
        assert copy is not pretrained
        for a, b in zip(copy.weights, pretrained.weights, strict=True):
            np.testing.assert_array_equal(a, b)


def test_with_identity_patches_it_equals_the_pretrained_block():
    """Eq. (1)-(2) with P_1 = P_2 = identity is the pretrained block."""
    block = _pretrained_block()
    patched = PatchedResidualBlock.from_pretrained(block)
    for patch in (patched.patch_1, patched.patch_2):
        patch.up_kernel.assign(tf.zeros_like(patch.up_kernel))
    x = tf.random.normal([3, 9, C], seed=2)
    np.testing.assert_allclose(patched(x), block(x), rtol=1e-6, atol=1e-6)


def test_is_causal():
    patched = PatchedResidualBlock.from_pretrained(_pretrained_block())
    x = np.random.default_rng(0).standard_normal([1, 12, C]).astype("f4")
    changed = x.copy()
    changed[:, 8:] += 1.0
    np.testing.assert_array_equal(patched(x)[:, :8], patched(changed)[:, :8])


def test_rejects_another_block_class():
    with pytest.raises(ValueError, match="Received: block=Dense"):
        PatchedResidualBlock(keras.layers.Dense(C))
