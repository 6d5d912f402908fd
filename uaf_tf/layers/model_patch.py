"""PeterRec's model patch: a residual bottleneck adapter."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="uaf_tf")
class ModelPatch(keras.layers.Layer):
    """Residual bottleneck `[B, L, C] -> [B, L, C]` (PeterRec, SIGIR 2020).

    The "model patch" of Yuan et al., "Parameter-Efficient Transfer from
    Sequential Behaviors for User Modeling and Recommendation" (SIGIR 2020),
    as in its public code (`ops.get_mp`):

        patch(x) = x + W_up gelu(W_down x + b_down) + b_up

    with `W_down [C, H]`, `W_up [H, C]` (the code's 1x1 convolutions),
    `H = C / 4` (the code's `residual_channels / (cardinality * 4)` with
    the serial script's `cardinality = 1`), the tanh approximation of GELU
    (the code's `gelu`), kernels truncated normal with stddev 0.02 and
    zero biases (the code's `conv1d`). So a new patch is close to, not
    exactly, the identity: `patch(x) - x` is a product of two small
    kernels, a few thousandths of `|x|` per entry.

    Adaptations: the code's sum over `cardinality` parallel bottlenecks is
    one bottleneck here (for `cardinality = 1`, the setting of its serial
    script, they are the same function); the 1x1 convolutions are matrix
    products over the last axis (the same function).

    Args:
        bottleneck_dim: int, H; None = `max(1, C // 4)`.
        kernel_stddev: float, stddev of the truncated normal kernel init.

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.layers.model_patch import ModelPatch
    >>> patch = ModelPatch()
    >>> patch(tf.ones([2, 5, 16])).shape
    TensorShape([2, 5, 16])
    """

    def __init__(
        self,
        bottleneck_dim: int | None = None,
        kernel_stddev: float = 0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if bottleneck_dim is not None and bottleneck_dim < 1:
            raise ValueError(
                "`bottleneck_dim` must be >= 1 or None. "
                f"Received: bottleneck_dim={bottleneck_dim}"
            )
        self.bottleneck_dim = bottleneck_dim
        self.kernel_stddev = kernel_stddev

    def build(self, input_shape):
        channels = input_shape[-1]
        hidden = self.bottleneck_dim or max(1, channels // 4)
        initializer = keras.initializers.TruncatedNormal(
            stddev=self.kernel_stddev
        )
        self.down_kernel = self.add_weight(
            name="down_kernel",
            shape=(channels, hidden),
            initializer=initializer,
        )
        self.down_bias = self.add_weight(
            name="down_bias", shape=(hidden,), initializer="zeros"
        )
        self.up_kernel = self.add_weight(
            name="up_kernel",
            shape=(hidden, channels),
            initializer=initializer,
        )
        self.up_bias = self.add_weight(
            name="up_bias", shape=(channels,), initializer="zeros"
        )

    def call(self, inputs):
        hidden = ops.gelu(
            ops.matmul(inputs, self.down_kernel) + self.down_bias,
            approximate=True,
        )  # [B, L, H]
        return inputs + ops.matmul(hidden, self.up_kernel) + self.up_bias

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "bottleneck_dim": self.bottleneck_dim,
                "kernel_stddev": self.kernel_stddev,
            }
        )
        return config
