"""NextItNet residual block (paper Eq. 1-2)."""

import keras
import tensorflow as tf

from uaf_tf.layers.causal_dilated_conv import CausalDilatedConv1D

# Layer-norm epsilon of the original implementation.
LAYER_NORM_EPSILON = 1e-8


@keras.saving.register_keras_serializable(package="uaf_tf")
class DilatedResidualBlock(keras.layers.Layer):
    """One NextItNet residual block: `[B, L, C] -> [B, L, C]`.

    Implements paper Eq. (1)-(2) with base dilation `d`:

        F(E) = ReLU(LN_2(psi_2(ReLU(LN_1(psi_1(E))))))
        out  = E + F(E)

    where `psi_1` is a causal convolution with dilation `d` and `psi_2` one
    with dilation `2d`. The block is causal: output position t depends on
    input positions <= t only, over `2 (k - 1) * 1.5 d + 1` positions.

    This is the block interface UAF fine-tuning relies on: a layer mapping
    hidden states `[B, L, C]` to `[B, L, C]` whose `get_config()` rebuilds an
    identically-shaped copy. A self-attention block can stand in for it.

    Args:
        channels: int, C (input and output width).
        kernel_size: int, k.
        dilation_rate: int, base dilation d (the second conv uses 2d).
        layer_norm_epsilon: float, defaults to the original's 1e-8.

    Example:
    >>> block = DilatedResidualBlock(channels=16, dilation_rate=1)
    >>> block(tf.zeros([2, 7, 16])).shape
    TensorShape([2, 7, 16])
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        dilation_rate: int = 1,
        layer_norm_epsilon: float = LAYER_NORM_EPSILON,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels = channels
        self.kernel_size = kernel_size
        self.dilation_rate = dilation_rate
        self.layer_norm_epsilon = layer_norm_epsilon

        # === Layers ===
        self.conv_1 = CausalDilatedConv1D(
            channels, kernel_size, dilation_rate, name="conv_1"
        )
        self.norm_1 = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="norm_1"
        )
        self.conv_2 = CausalDilatedConv1D(
            channels, kernel_size, 2 * dilation_rate, name="conv_2"
        )
        self.norm_2 = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="norm_2"
        )

    def build(self, input_shape):
        if input_shape[-1] != self.channels:
            raise ValueError(
                "A residual block needs input width == `channels`. Received: "
                f"input_shape={input_shape}, channels={self.channels}"
            )
        inner_shape = (*input_shape[:-1], self.channels)
        self.conv_1.build(input_shape)
        self.norm_1.build(inner_shape)
        self.conv_2.build(inner_shape)
        self.norm_2.build(inner_shape)

    @property
    def receptive_field(self) -> int:
        return self.conv_1.receptive_field + self.conv_2.receptive_field - 1

    def residual(self, inputs):
        """F(E) of Eq. (2), without the shortcut: `[B, L, C]`."""
        x = tf.nn.relu(self.norm_1(self.conv_1(inputs)))
        return tf.nn.relu(self.norm_2(self.conv_2(x)))

    def call(self, inputs):
        return inputs + self.residual(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "kernel_size": self.kernel_size,
                "dilation_rate": self.dilation_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
