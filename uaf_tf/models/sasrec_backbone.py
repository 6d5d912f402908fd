"""SASRec: item + position embeddings and causal self-attention blocks."""

import keras
import tensorflow as tf

from uaf_tf.layers.self_attention_block import SelfAttentionBlock
from uaf_tf.models.sequence_backbone import SequenceBackbone

NEXTITNET = "nextitnet"
SASREC = "sasrec"
BACKBONES = (NEXTITNET, SASREC)


@keras.saving.register_keras_serializable(package="uaf_tf")
class SASRecBackbone(SequenceBackbone):
    """SASRec (Kang and McAuley, ICDM 2018) behind the backbone interface.

    Maps item ids `[B, L]` (0 = padding, left-padded) to hidden states
    `[B, L, C]`:

        E_0 = (sqrt(C) * item_embedding(x) + position_embedding) * m
        E_l = SelfAttentionBlock_l(E_{l-1}),   l = 1..num_blocks

    with `m` the non-padding mask and dropout on `E_0` while training
    (SASRec sec. III-A/B). Positions are right-aligned: the most recent item
    of a sequence of length `L <= max_len` takes position `max_len - 1`, as
    in SASRec's left-padded input, so inputs shorter than `max_len` see the
    same position vectors for their recent items. The last block applies
    SASRec's final layer norm (`final_norm=True`), which keeps every block a
    `[B, L, C] -> [B, L, C]` layer for UAF to gate (paper Table 3).
    Causal: the state at position t depends on items at positions <= t.

    Args:
        num_items: int, V, rows of the item embedding (vocabulary + padding).
        max_len: int, rows of the position embedding (the dataset's L).
        channels: int, C.
        num_blocks: int, self-attention blocks.
        num_heads: int, heads per block (divides C).
        dropout: float, SASRec's dropout rate.

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.models.sasrec_backbone import SASRecBackbone
    >>> backbone = SASRecBackbone(num_items=100, max_len=30, channels=16)
    >>> backbone(tf.ones([2, 30], "int32")).shape
    TensorShape([2, 30, 16])
    """

    def __init__(
        self,
        num_items: int,
        max_len: int,
        channels: int = 64,
        num_blocks: int = 2,
        num_heads: int = 1,
        dropout: float = 0.2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_items < 2:
            raise ValueError(
                "`num_items` must count padding plus at least one item. "
                f"Received: num_items={num_items}"
            )
        if max_len < 1 or num_blocks < 1:
            raise ValueError(
                "`max_len` and `num_blocks` must be >= 1. Received: "
                f"max_len={max_len}, num_blocks={num_blocks}"
            )
        self.num_items = num_items
        self.max_len = max_len
        self.channels = channels
        self.num_heads = num_heads
        self.dropout = dropout

        # === Layers ===
        initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.item_embedding = keras.layers.Embedding(
            num_items,
            channels,
            embeddings_initializer=initializer,
            name="item_embedding",
        )
        self.position_embedding = keras.layers.Embedding(
            max_len,
            channels,
            embeddings_initializer=initializer,
            name="position_embedding",
        )
        self.embedding_dropout = keras.layers.Dropout(
            dropout, name="embedding_dropout"
        )
        self.blocks = [
            SelfAttentionBlock(
                channels,
                num_heads=num_heads,
                dropout=dropout,
                final_norm=i == num_blocks - 1,
                name=f"block_{i}",
            )
            for i in range(num_blocks)
        ]

    def build(self, input_shape):
        self.item_embedding.build(input_shape)
        self.position_embedding.build((self.max_len,))
        hidden_shape = (*input_shape, self.channels)
        for block in self.blocks:
            block.build(hidden_shape)

    def embed(self, item_ids, training=False):
        """Item ids `[B, L]` -> `E_0` `[B, L, C]`, zero at padding."""
        length = tf.shape(item_ids)[1]
        positions = tf.range(self.max_len - length, self.max_len)  # [L]
        hidden = self.item_embedding(item_ids) * (self.channels**0.5)
        hidden = hidden + self.position_embedding(positions)[tf.newaxis]
        hidden = self.embedding_dropout(hidden, training=training)
        mask = tf.cast(tf.not_equal(item_ids, 0), hidden.dtype)
        return hidden * mask[:, :, tf.newaxis]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_items": self.num_items,
                "max_len": self.max_len,
                "channels": self.channels,
                "num_blocks": len(self.blocks),
                "num_heads": self.num_heads,
                "dropout": self.dropout,
            }
        )
        return config
