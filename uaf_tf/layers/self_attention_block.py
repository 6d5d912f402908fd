"""SASRec's self-attention block (Kang and McAuley, ICDM 2018)."""

import keras
import tensorflow as tf

# SASRec's layer-norm epsilon (its reference code).
LAYER_NORM_EPSILON = 1e-8


def nonpadding_mask(hidden):
    """`[B, L, C]` -> float `[B, L]`: 1 where a row is not all zeros.

    `SASRecBackbone` zeroes the hidden state of padding positions, and every
    `SelfAttentionBlock` keeps them zero, so the mask travels with the
    hidden states: a block needs no second input, and it stays a
    `[B, L, C] -> [B, L, C]` layer that `GatedResidualBlock` can wrap.
    """
    return tf.cast(
        tf.reduce_any(tf.not_equal(hidden, 0.0), axis=-1), hidden.dtype
    )


@keras.saving.register_keras_serializable(package="uaf_tf")
class SelfAttentionBlock(keras.layers.Layer):
    """One SASRec block, pre-norm as in the paper's reference code.

    With `E` the input `[B, L, C]` and `m` its non-padding mask `[B, L]`:

        Q   = LN_1(E)
        S   = Q + MHA(queries=Q, keys=values=E)     causal, padding keys masked
        out = (S + FFN(LN_2(S))) * m                FFN = W_2 ReLU(W_1 x)

    (SASRec sec. III-B/C, Eq. 4-6, with the normalisation placed as in
    kang205/SASRec's `model.py`). Output position t depends on input
    positions <= t only; padding positions (all-zero rows in) stay all-zero
    rows out. When `final_norm` is set the block ends with SASRec's last
    layer norm, `LN_3(out) * m`: the backbone sets it on its last block, so
    the block stack alone maps embeddings to the states the head reads, and
    UAF's frozen and fine-tuned copies of that block each carry their own.

    Args:
        channels: int, C (model width; the FFN is C -> C -> C as in SASRec).
        num_heads: int, attention heads; must divide C.
        dropout: float, dropout on attention weights and FFN outputs while
            training.
        final_norm: bool, apply the backbone's output layer norm.
        layer_norm_epsilon: float.

    Example:
    >>> block = SelfAttentionBlock(channels=16, num_heads=2)
    >>> block(tf.ones([2, 7, 16])).shape
    TensorShape([2, 7, 16])
    """

    def __init__(
        self,
        channels: int,
        num_heads: int = 1,
        dropout: float = 0.2,
        final_norm: bool = False,
        layer_norm_epsilon: float = LAYER_NORM_EPSILON,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_heads < 1 or channels % num_heads:
            raise ValueError(
                "`num_heads` must be >= 1 and divide `channels`. Received: "
                f"channels={channels}, num_heads={num_heads}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout}"
            )
        self.channels = channels
        self.num_heads = num_heads
        self.dropout = dropout
        self.final_norm = final_norm
        self.layer_norm_epsilon = layer_norm_epsilon

        # === Layers ===
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="attention_norm"
        )
        self.attention = keras.layers.MultiHeadAttention(
            num_heads,
            channels // num_heads,
            dropout=dropout,
            name="attention",
        )
        self.ffn_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="ffn_norm"
        )
        self.ffn_inner = keras.layers.Dense(
            channels, activation="relu", name="ffn_inner"
        )
        self.ffn_outer = keras.layers.Dense(channels, name="ffn_outer")
        self.ffn_dropout = keras.layers.Dropout(dropout, name="ffn_dropout")
        self.output_norm = (
            keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, name="output_norm"
            )
            if final_norm
            else None
        )

    def build(self, input_shape):
        self.attention_norm.build(input_shape)
        self.attention.build(input_shape, input_shape, input_shape)
        self.ffn_norm.build(input_shape)
        self.ffn_inner.build(input_shape)
        self.ffn_outer.build(input_shape)
        if self.output_norm is not None:
            self.output_norm.build(input_shape)

    def call(self, inputs, training=False):
        mask = nonpadding_mask(inputs)  # [B, L]
        length = tf.shape(inputs)[1]
        causal = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
        # A query sees keys <= its position that are not padding; its own
        # position always, so no row is empty.
        visible = tf.logical_and(
            causal[tf.newaxis], tf.cast(mask, tf.bool)[:, tf.newaxis, :]
        )
        visible = tf.logical_or(visible, tf.eye(length, dtype=tf.bool))
        queries = self.attention_norm(inputs)
        hidden = queries + self.attention(
            queries,
            inputs,
            inputs,
            attention_mask=visible,
            training=training,
        )
        ffn = self.ffn_outer(self.ffn_inner(self.ffn_norm(hidden)))
        hidden = hidden + self.ffn_dropout(ffn, training=training)
        mask = mask[:, :, tf.newaxis]
        hidden = hidden * mask
        if self.output_norm is not None:
            hidden = self.output_norm(hidden) * mask
        return hidden

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "final_norm": self.final_norm,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
