"""A frozen pretrained block beside its trainable copy, mixed per user."""

import keras
from keras import ops


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
    block), because nothing here looks inside it. Both branches are always
    computed (the original does the same); a hard policy could skip one at
    serving time.

    Args:
        block: the pretrained block, a layer `[B, L, C] -> [B, L, C]` (or its
            serialised config). It is set non-trainable in place.
        finetuned: optional copy of `block`; built with `from_config` when
            omitted. Pass it only when deserialising.

    Call arguments:
        hidden: float `[B, L, C]`, the previous block's output `E_{l-1}`.
        gate: float `[B]`, the policy value `I_l(E^u)` per example.

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

    def call(self, hidden, gate, training=None):
        frozen_out = self.frozen(hidden, training=training)
        finetuned_out = self.finetuned(hidden, training=training)
        gate = ops.cast(gate, frozen_out.dtype)[:, None, None]  # [B, 1, 1]
        # Eq. (6) as written: for a = 0 (a = 1) the output is bit-identical
        # to the frozen (fine-tuned) path, which the tests rely on.
        return gate * finetuned_out + (1.0 - gate) * frozen_out

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
