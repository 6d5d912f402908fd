"""A frozen NextItNet block with PeterRec's model patches inserted."""

import keras
import tensorflow as tf

from uaf_tf.layers.model_patch import ModelPatch
from uaf_tf.layers.residual_block import DilatedResidualBlock


@keras.saving.register_keras_serializable(package="uaf_tf")
class PatchedResidualBlock(keras.layers.Layer):
    """PeterRec's serial insertion into a pretrained `DilatedResidualBlock`.

    With `psi_1`, `psi_2` the frozen pretrained dilated convolutions, `P_1`,
    `P_2` two `ModelPatch`es and `LN_1`, `LN_2` trainable layer norms:

        F(E) = ReLU(LN_2(P_2(psi_2(ReLU(LN_1(P_1(psi_1(E))))))))
        out  = E + F(E)

    which is paper Eq. (1)-(2) with a patch after each dilated convolution,
    as `ops.peter_2mp_serial` of the PeterRec code (the serial script's
    choice; its parallel form adds the patch beside the convolution).

    Frozen-versus-trainable is object structure: `block` (the pretrained
    block, also one of the backbone's `blocks`) is set non-trainable and
    only its convolutions are called; `norm_1`, `norm_2` are new layer
    norms that start with the pretrained ones' weights
    (`copy_pretrained_weights`) and train, with the patches.

    Args:
        block: the pretrained `DilatedResidualBlock` (or its config).
        bottleneck_dim: the patches' H; None = `C // 4`.

    Call arguments:
        hidden: float `[B, L, C]`, `E_{l-1}`.

    Returns:
        float `[B, L, C]`, `E_l`.

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.layers.patched_residual_block import PatchedResidualBlock
    >>> from uaf_tf.layers.residual_block import DilatedResidualBlock
    >>> block = DilatedResidualBlock(channels=16)
    >>> block.build((None, None, 16))
    >>> patched = PatchedResidualBlock.from_pretrained(block)
    >>> patched(tf.zeros([2, 7, 16])).shape
    TensorShape([2, 7, 16])
    """

    def __init__(self, block, bottleneck_dim: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(block, dict):
            block = keras.saving.deserialize_keras_object(block)
        if not isinstance(block, DilatedResidualBlock):
            raise ValueError(
                "PeterRec patches go after the dilated convolutions of a "
                "`DilatedResidualBlock`. Received: "
                f"block={block.__class__.__name__}"
            )
        self.bottleneck_dim = bottleneck_dim

        # === Layers ===
        self.frozen = block
        # Through True first: see `GatedResidualBlock`.
        self.frozen.trainable = True
        self.frozen.trainable = False
        self.patch_1 = ModelPatch(bottleneck_dim, name="patch_1")
        self.norm_1 = _norm_like(block.norm_1)
        self.patch_2 = ModelPatch(bottleneck_dim, name="patch_2")
        self.norm_2 = _norm_like(block.norm_2)

    @classmethod
    def from_pretrained(cls, block, **kwargs) -> "PatchedResidualBlock":
        """Patches a built pretrained `block`; the norms get its weights."""
        if not block.built:
            raise ValueError(
                "`from_pretrained` needs a built block holding pretrained "
                f"weights. Received: block={block.name} (not built)"
            )
        kwargs.setdefault("name", f"patched_{block.name}")
        patched = cls(block, **kwargs)
        patched.build(block.get_build_config()["input_shape"])
        patched.copy_pretrained_weights()
        return patched

    def build(self, hidden_shape):
        if not self.frozen.built:
            self.frozen.build(hidden_shape)
        inner_shape = (*hidden_shape[:-1], self.frozen.channels)
        for layer in (self.patch_1, self.norm_1, self.patch_2, self.norm_2):
            if not layer.built:
                layer.build(inner_shape)

    def copy_pretrained_weights(self) -> None:
        """Sets the trainable norms to the pretrained block's."""
        self.norm_1.set_weights(self.frozen.norm_1.get_weights())
        self.norm_2.set_weights(self.frozen.norm_2.get_weights())

    def call(self, hidden, training=None):
        block = self.frozen
        x = self.patch_1(block.conv_1(hidden))
        x = tf.nn.relu(self.norm_1(x))
        x = self.patch_2(block.conv_2(x))
        return hidden + tf.nn.relu(self.norm_2(x))

    def compute_output_shape(self, hidden_shape):
        return hidden_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "block": keras.saving.serialize_keras_object(self.frozen),
                "bottleneck_dim": self.bottleneck_dim,
            }
        )
        return config


def _norm_like(norm):
    config = dict(norm.get_config())
    config["trainable"] = True
    return norm.__class__.from_config(config)
