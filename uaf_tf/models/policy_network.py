"""The policy network: source sequence -> fine-tune/freeze logits per block."""

import keras
from keras import ops

from uaf_tf.layers.samplers import NUM_ACTIONS
from uaf_tf.layers.self_attention_block import SelfAttentionBlock
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone

CONV = "conv"
GRU = "gru"
ATTENTION = "attention"
ENCODERS = (CONV, GRU, ATTENTION)

# Paper sec. 3.3: a light NextItNet of dilations {1, 2, 4, 8}, i.e. two
# residual blocks with base dilations 1 and 4.
POLICY_DILATIONS = (1, 4)

# Initialisers of the dense head's kernel (the bias starts at zero).
NORMAL_001 = "normal_0.01"  # original: N(0, 0.01), near-uniform policies
GLOROT = "glorot"  # Keras's default `glorot_uniform`
HEAD_INITS = (NORMAL_001, GLOROT)


@keras.saving.register_keras_serializable(package="uaf_tf")
class PolicyNetwork(keras.layers.Layer):
    """Maps source item ids `[B, L]` to policy logits `[B, N, 2]` (sec. 3.3).

    Composed of three parts, so every variant is one constructor argument:

    1. its own item embedding `[V, C]` (the original initialises it as a copy
       of the pretrained source embedding: `set_item_embeddings`);
    2. an encoder to a user state `h_p [B, C]`:
       - `"conv"`: a light `NextItNetBackbone` with base dilations
         `dilations` (default `[1, 4]`, i.e. conv dilations 1, 2, 4, 8),
         then the mean over positions;
       - `"gru"`: a GRU with C units, its last state (paper sec. 5.3.3);
       - `"attention"`: one self-attention residual block (SASRec's,
         causal, one head, no dropout) over the item embeddings with
         padding zeroed, then the mean over non-padding positions: the
         paper's policy for UAF over SASRec (sec. 5.2, Table 3);
    3. a dense head `v = W_p h_p + b_p` (Eq. 14) reshaped to `[B, N, 2]`,
       last axis `[freeze, fine-tune]` (see `samplers.FINETUNE_INDEX`).
       `W_p` starts at N(0, 0.01) by default, as in the original: the
       untrained logits are near zero, so every policy starts near-uniform
       and sampling explores. With Keras's Glorot start (`head_init=
       "glorot"`) the logits of a pretrained `h_p` are large and nearly the
       same for every user: an untrained policy is confident and user-
       independent.

    It never samples: turning logits into a policy is the sampler's job.

    Args:
        num_items: int, V, source vocabulary rows (padding included).
        channels: int, C.
        num_blocks: int, N, residual blocks to decide for.
        encoder: `"conv"`, `"gru"` or `"attention"`.
        dilations: base dilations of the conv encoder.
        kernel_size: int, k of the conv encoder.
        head_init: `"normal_0.01"` (original, default) or `"glorot"`: the
            head kernel's initialiser.

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.models.policy_network import PolicyNetwork
    >>> policy = PolicyNetwork(num_items=100, channels=16, num_blocks=8)
    >>> policy(tf.ones([2, 30], "int32")).shape
    TensorShape([2, 8, 2])
    """

    def __init__(
        self,
        num_items: int,
        channels: int,
        num_blocks: int,
        encoder: str = CONV,
        dilations=POLICY_DILATIONS,
        kernel_size: int = 3,
        head_init: str = NORMAL_001,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if head_init not in HEAD_INITS:
            raise ValueError(
                f"`head_init` must be one of {HEAD_INITS}. "
                f"Received: head_init={head_init!r}"
            )
        if encoder not in ENCODERS:
            raise ValueError(
                f"`encoder` must be one of {ENCODERS}. "
                f"Received: encoder={encoder!r}"
            )
        if num_blocks < 1:
            raise ValueError(
                f"`num_blocks` must be >= 1. Received: num_blocks={num_blocks}"
            )
        self.num_items = num_items
        self.channels = channels
        self.num_blocks = num_blocks
        self.encoder = encoder
        self.dilations = tuple(int(d) for d in dilations)
        self.kernel_size = kernel_size
        self.head_init = head_init

        # === Layers ===
        # The conv encoder is a light NextItNet; the GRU and attention
        # variants reuse its input stage only (a backbone without blocks is
        # just the embedding).
        self.sequence_encoder = NextItNetBackbone(
            num_items,
            channels,
            dilations=self.dilations if encoder == CONV else (),
            kernel_size=kernel_size,
            name="sequence_encoder",
        )
        self.gru = (
            keras.layers.GRU(channels, name="gru") if encoder == GRU else None
        )
        self.attention_block = (
            SelfAttentionBlock(
                channels, dropout=0.0, final_norm=True, name="attention_block"
            )
            if encoder == ATTENTION
            else None
        )
        self.head = keras.layers.Dense(
            num_blocks * NUM_ACTIONS,
            kernel_initializer=(
                keras.initializers.RandomNormal(stddev=0.01)
                if head_init == NORMAL_001
                else "glorot_uniform"
            ),
            name="head",
        )

    def build(self, input_shape):
        if not self.sequence_encoder.built:
            self.sequence_encoder.build(input_shape)
        if self.gru is not None and not self.gru.built:
            self.gru.build((*input_shape, self.channels))
        if self.attention_block is not None and not self.attention_block.built:
            self.attention_block.build((*input_shape, self.channels))
        if not self.head.built:
            self.head.build((input_shape[0], self.channels))

    @property
    def item_embedding(self):
        """The policy network's own item table (an `Embedding` layer)."""
        return self.sequence_encoder.item_embedding

    def set_item_embeddings(self, embeddings) -> None:
        """Initialises the item table, e.g. from the pretrained backbone's."""
        if not self.built:
            self.build((None, None))
        self.item_embedding.embeddings.assign(embeddings)

    def encode(self, source_ids, training=False):
        """User state `h_p`: `[B, C]`."""
        hidden = self.sequence_encoder(source_ids, training=training)
        if self.gru is not None:
            return self.gru(hidden, training=training)  # last state [B, C]
        if self.attention_block is not None:
            mask = ops.cast(ops.not_equal(source_ids, 0), hidden.dtype)
            hidden = self.attention_block(
                hidden * mask[:, :, None], training=training
            )
            count = ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1.0)
            return ops.sum(hidden, axis=1) / count  # [B, C]
        return ops.mean(hidden, axis=1)  # [B, C]

    def call(self, source_ids, training=False):
        logits = self.head(self.encode(source_ids, training=training))
        return ops.reshape(logits, (-1, self.num_blocks, NUM_ACTIONS))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_blocks, NUM_ACTIONS)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_items": self.num_items,
                "channels": self.channels,
                "num_blocks": self.num_blocks,
                "encoder": self.encoder,
                "dilations": list(self.dilations),
                "kernel_size": self.kernel_size,
                "head_init": self.head_init,
            }
        )
        return config
