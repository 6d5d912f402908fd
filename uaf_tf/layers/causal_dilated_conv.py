"""Causal dilated 1-D convolution, the building unit of NextItNet."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="uaf_tf")
class CausalDilatedConv1D(keras.layers.Layer):
    """Causal dilated convolution over a sequence: `[B, L, C_in] -> [B, L, C]`.

    Output position `t` sees inputs `t, t - d, ..., t - (k - 1) d` only
    (`psi` in paper Eq. 2), so no position depends on the future. The sequence
    is left-padded with `(k - 1) * d` zeros.

    Runs `tf.nn.conv1d` with `dilations=d` on the left-padded input (oneDNN
    on CPU: forward + backward measured 2.8x faster here than gathering the
    taps and doing one matmul). Weights are stored `[k, C_in, C]`, the layout
    of the original `atrous_conv2d` kernel.

    Args:
        filters: int, output channels C.
        kernel_size: int, taps k.
        dilation_rate: int, distance d between taps.
        kernel_initializer: defaults to truncated normal, stddev 0.02 (as the
            original).

    Example:
    >>> conv = CausalDilatedConv1D(filters=8, kernel_size=3, dilation_rate=2)
    >>> conv(tf.zeros([2, 10, 4])).shape
    TensorShape([2, 10, 8])
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        dilation_rate: int = 1,
        kernel_initializer="truncated_normal_002",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if filters < 1 or kernel_size < 1 or dilation_rate < 1:
            raise ValueError(
                "`filters`, `kernel_size` and `dilation_rate` must be >= 1. "
                f"Received: filters={filters}, kernel_size={kernel_size}, "
                f"dilation_rate={dilation_rate}"
            )
        self.filters = filters
        self.kernel_size = kernel_size
        self.dilation_rate = dilation_rate
        self.kernel_initializer = kernel_initializer

    def build(self, input_shape):
        in_channels = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, in_channels, self.filters),
            initializer=_initializer(self.kernel_initializer),
        )
        self.bias = self.add_weight(
            name="bias", shape=(self.filters,), initializer="zeros"
        )

    @property
    def receptive_field(self) -> int:
        """How many positions (including itself) one output position sees."""
        return (self.kernel_size - 1) * self.dilation_rate + 1

    def call(self, inputs):
        k, d = self.kernel_size, self.dilation_rate
        padded = tf.pad(inputs, [[0, 0], [(k - 1) * d, 0], [0, 0]])
        outputs = tf.nn.conv1d(
            padded, self.kernel, stride=1, padding="VALID", dilations=d
        )  # [B, L, C]
        return outputs + self.bias

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "dilation_rate": self.dilation_rate,
                "kernel_initializer": self.kernel_initializer,
            }
        )
        return config


def _initializer(name_or_initializer):
    """`"truncated_normal_002"` is the original's N(0, 0.02) truncated init."""
    if name_or_initializer == "truncated_normal_002":
        return keras.initializers.TruncatedNormal(stddev=0.02)
    return keras.initializers.get(name_or_initializer)
