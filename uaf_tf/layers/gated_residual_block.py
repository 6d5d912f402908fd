"""A frozen pretrained block beside its trainable copy, mixed per user."""

import keras
import tensorflow as tf
from keras import ops

# `tf.switch_case` branch indices of the conditional (hard-gate) path.
_ALL_FROZEN = 0
_ALL_FINETUNED = 1
_MIXED = 2
_EMPTY = 3


def _traced_for_xla() -> bool:
    """Whether the current graph is being traced for XLA compilation
    (inside `tf.function(jit_compile=True)`); False when TF's internal
    check is unavailable."""
    try:
        from tensorflow.python.framework import ops as tf_ops
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - TF moved its internals
        return False
    return control_flow_util.GraphOrParentsInXlaContext(
        tf_ops.get_default_graph()
    )


@keras.saving.register_keras_serializable(package="uaf_tf")
class GatedResidualBlock(keras.layers.Layer):
    """UAF's per-user choice between a frozen block and its fine-tuned copy.

    Implements paper Eq. (6). For one example with policy value `a` (1 =
    fine-tune, 0 = freeze):

        out = a * finetuned(E) + (1 - a) * frozen(E)

    Both `frozen(E)` and `finetuned(E)` already include the residual add
    `E + F(E)`, so for `a` in [0, 1] this equals Eq. (6)'s
    `a F_hat(E) + (1 - a) F(E) + E`. `a` is binary for UAF-Gumbel / RL /
    Random and a gate in (0, 1) for UAF-Soft.

    Frozen-versus-trainable lives in the object structure: `frozen` is the
    pretrained block with `trainable = False`, `finetuned` a trainable copy
    rebuilt with `block.__class__.from_config(block.get_config())` and
    initialised with the pretrained weights. Any block layer with a
    `get_config()` works (NextItNet's dilated convolutions, a self-attention
    block), because nothing here looks inside it.

    Conditional computation (inference with a hard policy): when the caller
    says the gate is hard (`hard=True`: every value exactly 0 or 1, as the
    UAF-Gumbel, -RL and -Random samplers give at inference) and
    `training` is falsy, each branch runs only on its own rows. A
    `tf.switch_case` on the batch picks one of: no rows -> `E` unchanged
    (no branch runs); all rows frozen -> `frozen(E)` only; all fine-tuned
    -> `finetuned(E)` only; a mix -> the rows are split with
    `tf.dynamic_partition`, each branch runs on its rows, and
    `tf.dynamic_stitch` puts them back in order. So a batch-1 request
    pays for exactly one branch per block, and a mixed batch for each
    row's own branch plus a gather and a scatter.
    The outputs equal Eq. (6)'s to float tolerance (a branch run on a
    subset of rows may round differently). These are standard graph ops,
    which a SavedModel (TF Serving) runs. XLA (`jit_compile=True`) cannot
    compile a row split of dynamic size inside a whole model (the blocks
    read its shape as a constant), so when the call is traced for XLA a
    mixed batch runs both branches and selects each row's; a uniform batch,
    every batch-1 request among them, still runs one branch.

    Training (and any call with a soft gate, UAF-Soft's) computes both
    branches and mixes them as Eq. (6) is written: the straight-through
    Gumbel estimator and UAF-Soft differentiate the output with respect to
    the gate, `d out / d a = finetuned(E) - frozen(E)`, which needs both
    branches for every row; the fine-tuned copy's weights also get their
    gradient through `a * finetuned(E)`.

    Args:
        block: the pretrained block, a layer `[B, L, C] -> [B, L, C]` (or its
            serialised config). It is set non-trainable in place.
        finetuned: optional copy of `block`; built with `from_config` when
            omitted. Pass it only when deserialising.

    Call arguments:
        hidden: float `[B, L, C]`, the previous block's output `E_{l-1}`.
        gate: float `[B]`, the policy value `I_l(E^u)` per example.
        training: bool or None; a truthy value always computes both
            branches.
        hard: bool, static: True promises every `gate` value is 0 or 1
            (values above 0.5 are read as 1), which lets inference skip the
            branch a row does not use. Default False (both branches).

    Returns:
        float `[B, L, C]`, `E_l`.

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.layers.gated_residual_block import GatedResidualBlock
    >>> from uaf_tf.layers.residual_block import DilatedResidualBlock
    >>> block = DilatedResidualBlock(channels=16)
    >>> block.build((None, None, 16))
    >>> gated = GatedResidualBlock.from_pretrained(block)
    >>> gated(tf.zeros([2, 7, 16]), tf.constant([0.0, 1.0])).shape
    TensorShape([2, 7, 16])
    """

    def __init__(self, block, finetuned=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(block, dict):
            block = keras.saving.deserialize_keras_object(block)
        if isinstance(finetuned, dict):
            finetuned = keras.saving.deserialize_keras_object(finetuned)
        if finetuned is None:
            finetuned = _fresh_copy(block)
        if finetuned.__class__ is not block.__class__:
            raise ValueError(
                "`finetuned` must be the same layer class as `block`. "
                f"Received: block={block.__class__.__name__}, "
                f"finetuned={finetuned.__class__.__name__}"
            )

        # === Layers ===
        self.frozen = block
        # On a block constructed with `trainable=False` (as one deserialised
        # from its config is), setting False again leaves its sublayers and
        # variables trainable (Keras 3.15); going through True reaches them.
        self.frozen.trainable = True
        self.frozen.trainable = False
        self.finetuned = finetuned

    @classmethod
    def from_pretrained(cls, block, **kwargs) -> "GatedResidualBlock":
        """Wraps a built pretrained `block`; the copy gets its weights."""
        if not block.built:
            raise ValueError(
                "`from_pretrained` needs a built block holding pretrained "
                f"weights. Received: block={block.name} (not built)"
            )
        kwargs.setdefault("name", f"gated_{block.name}")
        gated = cls(block, **kwargs)
        gated.copy_pretrained_weights()
        return gated

    def build(self, hidden_shape, gate_shape=None):
        if not self.frozen.built:
            self.frozen.build(hidden_shape)
        if not self.finetuned.built:
            self.finetuned.build(hidden_shape)

    def copy_pretrained_weights(self) -> None:
        """Sets `finetuned`'s weights to `frozen`'s (builds it if needed)."""
        if not self.finetuned.built:
            # Keras records the shape a layer was built with; reuse it.
            self.finetuned.build_from_config(self.frozen.get_build_config())
        self.finetuned.set_weights(self.frozen.get_weights())

    def call(self, hidden, gate, training=None, hard=False):
        if hard and not training:
            return self._conditional_call(hidden, gate)
        return self._mixed_call(hidden, gate, training)

    def _mixed_call(self, hidden, gate, training):
        frozen_out = self.frozen(hidden, training=training)
        finetuned_out = self.finetuned(hidden, training=training)
        gate = ops.cast(gate, frozen_out.dtype)[:, None, None]  # [B, 1, 1]
        # Eq. (6) as written: for a = 0 (a = 1) the output is bit-identical
        # to the frozen (fine-tuned) path, which the tests rely on.
        return gate * finetuned_out + (1.0 - gate) * frozen_out

    def _conditional_call(self, hidden, gate):
        """Eq. (6) for a hard gate, running each branch on its rows only."""
        tuned = ops.cast(gate > 0.5, "int32")  # [B], 1 = fine-tuned copy
        num_tuned = ops.sum(tuned)
        batch = ops.shape(tuned)[0]
        index = tf.where(
            batch == 0,
            _EMPTY,
            tf.where(
                num_tuned == 0,
                _ALL_FROZEN,
                tf.where(num_tuned == batch, _ALL_FINETUNED, _MIXED),
            ),
        )

        def mixed():
            if _traced_for_xla():
                return tf.where(
                    tuned[:, None, None] > 0,
                    self.finetuned(hidden, training=False),
                    self.frozen(hidden, training=False),
                )
            rows = tf.range(batch)
            frozen_rows, tuned_rows = tf.dynamic_partition(rows, tuned, 2)
            frozen_out = self.frozen(
                tf.gather(hidden, frozen_rows), training=False
            )
            tuned_out = self.finetuned(
                tf.gather(hidden, tuned_rows), training=False
            )
            return tf.dynamic_stitch(
                [frozen_rows, tuned_rows], [frozen_out, tuned_out]
            )

        out = tf.switch_case(
            index,
            {
                _ALL_FROZEN: lambda: self.frozen(hidden, training=False),
                _ALL_FINETUNED: lambda: self.finetuned(hidden, training=False),
                _MIXED: mixed,
                # No rows: nothing to compute (a dilated convolution run on
                # 0 rows returns a wrongly shaped result in TF 2.21).
                _EMPTY: lambda: hidden,
            },
        )
        # dynamic_stitch and the case op lose the static shape; restore it.
        return tf.ensure_shape(out, hidden.shape)

    def compute_output_shape(self, hidden_shape, gate_shape=None):
        return hidden_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "block": keras.saving.serialize_keras_object(self.frozen),
                "finetuned": keras.saving.serialize_keras_object(
                    self.finetuned
                ),
            }
        )
        return config


def _fresh_copy(block):
    config = dict(block.get_config())
    config["name"] = f"{block.name}_finetuned"
    config["trainable"] = True
    return block.__class__.from_config(config)
