"""NextItNet: item embedding + a stack of causal dilated residual blocks."""

import keras

from uaf_tf.layers.residual_block import DilatedResidualBlock
from uaf_tf.models.sequence_backbone import SequenceBackbone

# The paper's stack: base dilations [1, 4] * 4 -> 8 blocks, 16 conv layers
# with dilations {1, 2, 4, 8} x 4 (sec. 4.3).
PAPER_DILATIONS = (1, 4, 1, 4, 1, 4, 1, 4)


@keras.saving.register_keras_serializable(package="uaf_tf")
class NextItNetBackbone(SequenceBackbone):
    """NextItNet (Yuan et al., 2019) as used by UAF, paper sec. 3.2.1.

    Maps item ids `[B, L]` (0 = padding) to hidden states `[B, L, C]`: an
    item embedding `[V, C]` (truncated normal, stddev 0.02) followed by one
    `DilatedResidualBlock` per base dilation. Causal: the state at position t
    depends on items at positions <= t only.

    Args:
        num_items: int, V, rows of the item embedding (vocabulary + padding).
        channels: int, C.
        dilations: sequence of base dilations, one residual block each.
        kernel_size: int, k.

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
    >>> backbone = NextItNetBackbone(num_items=100, channels=16)
    >>> backbone(tf.ones([2, 30], "int32")).shape
    TensorShape([2, 30, 16])
    """

    def __init__(
        self,
        num_items: int,
        channels: int = 128,
        dilations=PAPER_DILATIONS,
        kernel_size: int = 3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_items < 2:
            raise ValueError(
                "`num_items` must count padding plus at least one item. "
                f"Received: num_items={num_items}"
            )
        self.num_items = num_items
        self.channels = channels
        self.dilations = tuple(int(d) for d in dilations)
        self.kernel_size = kernel_size

        # === Layers ===
        self.item_embedding = keras.layers.Embedding(
            num_items,
            channels,
            embeddings_initializer=keras.initializers.TruncatedNormal(
                stddev=0.02
            ),
            name="item_embedding",
        )
        self.blocks = [
            DilatedResidualBlock(
                channels, kernel_size, dilation, name=f"block_{i}"
            )
            for i, dilation in enumerate(self.dilations)
        ]

    def build(self, input_shape):
        self.item_embedding.build(input_shape)
        hidden_shape = (*input_shape, self.channels)
        for block in self.blocks:
            block.build(hidden_shape)

    @property
    def receptive_field(self) -> int:
        """Positions one output sees: 1 + sum of (k - 1) * dilation."""
        return 1 + sum(b.receptive_field - 1 for b in self.blocks)

    def embed(self, item_ids, training=False):
        return self.item_embedding(item_ids)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_items": self.num_items,
                "channels": self.channels,
                "dilations": list(self.dilations),
                "kernel_size": self.kernel_size,
            }
        )
        return config
