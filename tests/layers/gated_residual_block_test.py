"""Tests for GatedResidualBlock (paper Eq. 6)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import testing
from uaf_tf.layers.gated_residual_block import GatedResidualBlock
from uaf_tf.layers.residual_block import DilatedResidualBlock

C = 8


def _pretrained_block(seed=0):
    keras.utils.set_random_seed(seed)
    block = DilatedResidualBlock(C, kernel_size=3, dilation_rate=2)
    block.build((None, None, C))
    return block


def _perturb(layer, scale=0.1, seed=1):
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [w + scale * rng.standard_normal(w.shape) for w in layer.get_weights()]
    )


@keras.saving.register_keras_serializable(package="uaf_tf_test")
class _DenseResidual(keras.layers.Layer):
    """A non-convolutional block, E + relu(E W): any block class works."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units, activation="relu")

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, x):
        return x + self.dense(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_from_pretrained_copies_weights_and_freezes_the_original():
    block = _pretrained_block()
    gated = GatedResidualBlock.from_pretrained(block)
    assert gated.frozen is block
    assert not block.trainable and gated.finetuned.trainable
    for a, b in zip(
        block.get_weights(), gated.finetuned.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    # The copy owns separate variables.
    assert not {id(v) for v in block.weights} & {
        id(v) for v in gated.finetuned.weights
    }
    # A DilatedResidualBlock has 8 weights: 2 x (conv kernel, conv bias,
    # LN gamma, LN beta). The copy's are trainable, the original's not.
    assert len(gated.trainable_weights) == 8
    assert len(gated.non_trainable_weights) == 8
    assert {id(v) for v in gated.trainable_weights} == {
        id(v) for v in gated.finetuned.weights
    }


def test_from_pretrained_needs_a_built_block():
    with pytest.raises(ValueError, match="built"):
        GatedResidualBlock.from_pretrained(DilatedResidualBlock(C))


def test_output_is_per_example_mix_of_frozen_and_finetuned():
    block = _pretrained_block()
    gated = GatedResidualBlock.from_pretrained(block)
    _perturb(gated.finetuned)
    hidden = tf.random.normal([3, 6, C], seed=3)
    gate = tf.constant([0.0, 1.0, 0.25])
    out = gated(hidden, gate).numpy()
    frozen = block(hidden).numpy()
    finetuned = gated.finetuned(hidden).numpy()
    assert np.abs(frozen - finetuned).max() > 1e-3  # non-trivial
    # a = 0 and a = 1 are bit-identical to one branch (Eq. 6 with both
    # branches including the residual add).
    np.testing.assert_array_equal(out[0], frozen[0])
    np.testing.assert_array_equal(out[1], finetuned[1])
    np.testing.assert_allclose(
        out[2], 0.25 * finetuned[2] + 0.75 * frozen[2], rtol=1e-6, atol=1e-6
    )


def test_at_initialisation_the_gate_does_not_matter():
    gated = GatedResidualBlock.from_pretrained(_pretrained_block())
    hidden = tf.random.normal([2, 5, C], seed=4)
    np.testing.assert_allclose(
        gated(hidden, tf.zeros([2])), gated(hidden, tf.ones([2])), atol=1e-6
    )


def test_gradients_reach_only_the_copy():
    gated = GatedResidualBlock.from_pretrained(_pretrained_block())
    hidden = tf.random.normal([2, 5, C], seed=5)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(gated(hidden, tf.constant([1.0, 0.5]))))
    grads = tape.gradient(loss, gated.trainable_weights)
    assert all(g is not None and np.abs(g.numpy()).max() > 0 for g in grads)


def test_works_for_any_block_with_get_config():
    block = _DenseResidual(C, name="dense_block")
    block.build((None, None, C))
    gated = GatedResidualBlock.from_pretrained(block)
    assert isinstance(gated.finetuned, _DenseResidual)
    assert len(gated.trainable_weights) == 2
    assert len(gated.non_trainable_weights) == 2
    hidden = tf.random.normal([2, 4, C], seed=6)
    np.testing.assert_array_equal(gated(hidden, tf.zeros([2])), block(hidden))


def test_layer_contract():
    hidden = tf.random.normal([3, 5, C], seed=7)
    # Without `from_pretrained` the copy keeps its own random initialisation,
    # so the two branches differ and a swapped or dropped branch shows.
    gated = testing.run_layer_test(
        GatedResidualBlock,
        {"block": _pretrained_block()},
        (hidden, tf.constant([0.0, 1.0, 0.25])),
        expected_output_shape=(3, 5, C),
        expected_num_trainable_weights=8,
        expected_num_non_trainable_weights=8,
        atol=0.0,
        rtol=0.0,
    )
    assert np.abs(gated.frozen(hidden) - gated.finetuned(hidden)).max() > 1e-3
    restored = GatedResidualBlock.from_config(gated.get_config())
    assert not restored.frozen.trainable and restored.finetuned.trainable
    # The flag reaches the variables too (it did not, before the fix in
    # GatedResidualBlock.__init__, for a block deserialised from config).
    assert not any(v.trainable for v in restored.frozen.weights)
    assert all(v.trainable for v in restored.finetuned.weights)
