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


# === Conditional computation (hard gate at inference) ===


@keras.saving.register_keras_serializable(package="uaf_tf_test")
class _CountingResidual(keras.layers.Layer):
    """E + tanh(E W) that counts its calls and the rows it saw.

    The counters are variables updated in the graph, so they count what
    runs (inside `tf.function` and a taken `switch_case` branch too), not
    what was traced.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(self.units, self.units), initializer="glorot_uniform"
        )
        self.calls = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="calls"
        )
        self.rows = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="rows"
        )

    def call(self, x):
        self.calls.assign_add(1.0)
        self.rows.assign_add(tf.cast(tf.shape(x)[0], "float32"))
        return x + tf.tanh(tf.einsum("blc,cd->bld", x, self.kernel))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _counting_gated():
    keras.utils.set_random_seed(0)
    block = _CountingResidual(C, name="counting")
    block.build((None, None, C))
    gated = GatedResidualBlock.from_pretrained(block)
    _perturb(gated.finetuned)
    return gated


def _counts(gated):
    """(frozen calls, frozen rows, fine-tuned calls, fine-tuned rows)."""
    counts = [
        float(v.numpy())
        for layer in (gated.frozen, gated.finetuned)
        for v in (layer.calls, layer.rows)
    ]
    for layer in (gated.frozen, gated.finetuned):
        layer.calls.assign(0.0)
        layer.rows.assign(0.0)
    return tuple(counts)


_HARD_GATES = {
    "mixed": [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0],
    "all_frozen": [0.0] * 5,
    "all_finetuned": [1.0] * 5,
    "one_frozen_row": [0.0, 1.0, 1.0],
    "batch1_frozen": [0.0],
    "batch1_finetuned": [1.0],
}


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("gate", list(_HARD_GATES), ids=list(_HARD_GATES))
def test_hard_gate_inference_equals_both_branches(gate, compiled):
    block = _pretrained_block()
    gated = GatedResidualBlock.from_pretrained(block)
    _perturb(gated.finetuned)
    gate = tf.constant(_HARD_GATES[gate])
    hidden = tf.random.normal([gate.shape[0], 6, C], seed=8)
    expected = gated(hidden, gate)  # both branches, Eq. (6)
    call = lambda h, g: gated(h, g, hard=True)  # noqa: E731
    if compiled:
        call = tf.function(
            call,
            input_signature=[
                tf.TensorSpec([None, None, C]),
                tf.TensorSpec([None]),
            ],
        )
    out = call(hidden, gate)
    assert out.shape == hidden.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    # Row by row the output is the branch its gate picks.
    frozen, finetuned = block(hidden), gated.finetuned(hidden)
    picked = tf.where(gate[:, None, None] > 0.5, finetuned, frozen)
    np.testing.assert_allclose(out, picked, rtol=1e-5, atol=1e-5)


def test_hard_gate_compiles_with_xla():
    block = _pretrained_block()
    gated = GatedResidualBlock.from_pretrained(block)
    _perturb(gated.finetuned)
    gate = tf.constant(_HARD_GATES["mixed"])
    hidden = tf.random.normal([gate.shape[0], 6, C], seed=12)
    call = tf.function(lambda h, g: gated(h, g, hard=True), jit_compile=True)
    np.testing.assert_allclose(
        call(hidden, gate), gated(hidden, gate), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "graph"])
def test_hard_gate_on_an_empty_batch(compiled):
    gated = GatedResidualBlock.from_pretrained(_pretrained_block())
    call = lambda h, g: gated(h, g, hard=True)  # noqa: E731
    if compiled:
        call = tf.function(
            call,
            input_signature=[
                tf.TensorSpec([None, 6, C]),
                tf.TensorSpec([None]),
            ],
        )
    out = call(tf.zeros([0, 6, C]), tf.zeros([0]))
    assert tuple(out.shape) == (0, 6, C)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "graph"])
def test_hard_gate_runs_only_the_chosen_branch_per_row(compiled):
    gated = _counting_gated()
    call = lambda h, g, training: gated(  # noqa: E731
        h, g, training=training, hard=True
    )
    if compiled:
        call = tf.function(call)
    hidden = tf.random.normal([7, 4, C], seed=9)
    gate = tf.constant(_HARD_GATES["mixed"])  # 3 fine-tuned, 4 frozen rows
    _counts(gated)  # clears the calls of the test's set-up
    call(hidden, gate, False)
    assert _counts(gated) == (1.0, 4.0, 1.0, 3.0)
    for value, counts in ((0.0, (1.0, 1.0, 0.0, 0.0)), (1.0, (0, 0, 1, 1))):
        call(hidden[:1], tf.constant([value]), False)  # batch 1
        assert _counts(gated) == counts
    call(hidden[:0], tf.zeros([0]), False)  # empty: no branch runs
    assert _counts(gated) == (0.0, 0.0, 0.0, 0.0)
    # Training keeps both branches on every row.
    call(hidden, gate, True)
    assert _counts(gated) == (1.0, 7.0, 1.0, 7.0)


def test_under_xla_a_uniform_batch_runs_one_branch_a_mixed_one_both():
    # Compiled over a dynamic batch, as a served model is: XLA cannot split
    # rows into parts of dynamic size, so a mixed batch selects rows from
    # both branches; every uniform batch (each batch-1 request) runs one.
    gated = _counting_gated()
    call = tf.function(
        lambda h, g: gated(h, g, training=False, hard=True),
        jit_compile=True,
        input_signature=[tf.TensorSpec([None, 4, C]), tf.TensorSpec([None])],
    )
    hidden = tf.random.normal([7, 4, C], seed=9)
    gate = tf.constant(_HARD_GATES["mixed"])
    _counts(gated)
    out = call(hidden, gate)
    assert _counts(gated) == (1.0, 7.0, 1.0, 7.0)
    picked = tf.where(
        gate[:, None, None] > 0.5, gated.finetuned(hidden), gated.frozen(hidden)
    )
    np.testing.assert_allclose(out, picked, rtol=1e-5, atol=1e-5)
    _counts(gated)
    for value, counts in ((0.0, (1.0, 1.0, 0.0, 0.0)), (1.0, (0, 0, 1, 1))):
        call(hidden[:1], tf.constant([value]))
        assert _counts(gated) == counts
    assert tuple(call(hidden[:0], tf.zeros([0])).shape) == (0, 4, C)
    assert _counts(gated) == (0.0, 0.0, 0.0, 0.0)


def test_soft_gate_and_the_default_run_both_branches():
    gated = _counting_gated()
    hidden = tf.random.normal([3, 4, C], seed=10)
    _counts(gated)
    gated(hidden, tf.constant([0.0, 0.0, 0.0]))  # hard=False by default
    assert _counts(gated) == (1.0, 3.0, 1.0, 3.0)


def test_training_keeps_the_gradient_with_respect_to_the_gate():
    gated = GatedResidualBlock.from_pretrained(_pretrained_block())
    _perturb(gated.finetuned)
    hidden = tf.random.normal([2, 5, C], seed=11)
    gate = tf.Variable([1.0, 0.0])
    with tf.GradientTape() as tape:
        out = gated(hidden, gate, training=True, hard=True)
        loss = tf.reduce_sum(out)
    grad = tape.gradient(loss, gate).numpy()
    # d out / d a = finetuned(E) - frozen(E), summed: needs both branches.
    expected = tf.reduce_sum(
        gated.finetuned(hidden) - gated.frozen(hidden), axis=[1, 2]
    )
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-4)
    assert np.abs(grad).min() > 1e-3
