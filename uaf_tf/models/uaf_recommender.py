"""UAF fine-tuning model: gated pretrained backbone + policy + target head."""

import keras
from keras import ops

from uaf_tf.layers.gated_residual_block import GatedResidualBlock
from uaf_tf.layers.policy_samplers import LOG_SOFTMAX
from uaf_tf.layers.policy_samplers import METHODS
from uaf_tf.layers.policy_samplers import build_policy_sampler
from uaf_tf.models.policy_network import CONV
from uaf_tf.models.policy_network import POLICY_DILATIONS
from uaf_tf.models.policy_network import PolicyNetwork

# Output keys of `UAFRecommender.call`.
USER_EMBEDDING = "user_embedding"
POLICY = "policy"
POLICY_LOGITS = "policy_logits"


@keras.saving.register_keras_serializable(package="uaf_tf")
class UAFRecommender(keras.Model):
    """User-specific Adaptive Fine-tuning of a pretrained backbone (sec. 3.2.2).

    Source ids `[B, L]` -> user representation `[B, C]`, scored against a new
    target item table:

    1. `E_0 = backbone.embed(ids)`: the pretrained input stage, trainable
       (the original fine-tunes the source item embedding) unless
       `freeze_embedding`;
    2. a policy `a [B, N]` from the `PolicyNetwork` logits `[B, N, 2]` and
       the method's sampler (`uaf_tf.layers.policy_samplers`; `"random"` has
       no policy network);
    3. `E_l = a_l finetuned_l(E_{l-1}) + (1 - a_l) frozen_l(E_{l-1})` for each
       backbone block (Eq. 6, `GatedResidualBlock`);
    4. user representation `h = mean_t E_N[:, t]` over all L positions (as the
       original);
    5. score of target item y: `o_y = <h, W_y>` with `W` the target item
       embedding `[T, C]` (truncated normal, stddev 0.01). This is Eq. (7)
       in the original's form: a dot product with no bias `b_n`.

    Inference (`training=False`) is deterministic: argmax for `gumbel`
    (unless `stochastic_eval`) and `rl`, the gate value for `soft`, a fixed
    per-user hash for `random`.

    Args:
        backbone: a pretrained `SequenceBackbone` (or its serialised config).
            Its blocks become the frozen halves of the gated blocks.
        num_target_ids: int, T, target table rows (padding id 0 included).
        method: `"gumbel"`, `"soft"`, `"rl"` or `"random"`.
        policy_encoder: `"conv"` or `"gru"`.
        policy_dilations: base dilations of the conv policy encoder.
        temperature: float, Gumbel-softmax tau.
        gumbel_logits: `"log_softmax"` (paper) or `"sigmoid"` (original).
        stochastic_eval: bool, Gumbel keeps sampling at inference.
        freeze_embedding: bool, also freeze the backbone's input stage.
        seed: int, seed of the policy sampler's stream.

    Call returns a dict:
        `"user_embedding"`: float `[B, C]`, h.
        `"policy"`: float `[B, N]`, the `a_l` used (1 = fine-tuned copy).
        `"policy_logits"`: float `[B, N, 2]` `[freeze, fine-tune]` (absent
            for `"random"`).

    Example:
    >>> backbone = NextItNetBackbone(num_items=100, channels=16)
    >>> backbone.build((None, 30))
    >>> model = UAFRecommender.from_pretrained(backbone, num_target_ids=50)
    >>> out = model(tf.ones([4, 30], "int32"))
    >>> model.score_all_items(out["user_embedding"]).shape
    TensorShape([4, 50])
    """

    def __init__(
        self,
        backbone,
        num_target_ids: int,
        method: str = "gumbel",
        policy_encoder: str = CONV,
        policy_dilations=POLICY_DILATIONS,
        temperature: float = 10.0,
        gumbel_logits: str = LOG_SOFTMAX,
        stochastic_eval: bool = False,
        freeze_embedding: bool = False,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        if method not in METHODS:
            raise ValueError(
                f"`method` must be one of {METHODS}. "
                f"Received: method={method!r}"
            )
        if num_target_ids < 2:
            raise ValueError(
                "`num_target_ids` must count padding plus at least one item. "
                f"Received: num_target_ids={num_target_ids}"
            )

        # === Config ===
        self.num_target_ids = num_target_ids
        self.method = method
        self.policy_encoder = policy_encoder
        self.policy_dilations = tuple(int(d) for d in policy_dilations)
        self.temperature = temperature
        self.gumbel_logits = gumbel_logits
        self.stochastic_eval = stochastic_eval
        self.freeze_embedding = freeze_embedding
        self.seed = seed
        self.channels = backbone.channels
        self.num_blocks = len(backbone.blocks)

        # === Layers ===
        self.backbone = backbone
        self.gated_blocks = [
            GatedResidualBlock(block, name=f"gated_{block.name}")
            for block in backbone.blocks
        ]  # each sets its pretrained block non-trainable
        if freeze_embedding:
            self.backbone.trainable = False
        self.sampler = build_policy_sampler(
            method,
            self.num_blocks,
            temperature=temperature,
            gumbel_logits=gumbel_logits,
            stochastic_eval=stochastic_eval,
            seed=seed,
        )
        self.policy_network = None
        if self.sampler.uses_logits:
            self.policy_network = PolicyNetwork(
                _num_source_ids(backbone),
                self.channels,
                self.num_blocks,
                encoder=policy_encoder,
                dilations=self.policy_dilations,
                kernel_size=getattr(backbone, "kernel_size", 3),
                name="policy_network",
            )
        self.target_embedding = keras.layers.Embedding(
            num_target_ids,
            self.channels,
            embeddings_initializer=keras.initializers.TruncatedNormal(
                stddev=0.01
            ),
            name="target_embedding",
        )

    @classmethod
    def from_pretrained(
        cls, backbone, num_target_ids: int, seq_len=None, **kwargs
    ) -> "UAFRecommender":
        """Builds the model around a pretrained (built) backbone.

        The fine-tuned copies start with the pretrained block weights and the
        policy network's item table with the backbone's `item_embedding`
        (when the backbone has one; otherwise it keeps its random init).
        """
        if not backbone.built:
            raise ValueError(
                "`from_pretrained` needs a built backbone with pretrained "
                "weights; build it or load its weights first."
            )
        model = cls(backbone, num_target_ids, **kwargs)
        model.build((None, seq_len))
        for gated in model.gated_blocks:
            gated.copy_pretrained_weights()
        table = getattr(backbone, "item_embedding", None)
        if model.policy_network is not None and table is not None:
            model.policy_network.set_item_embeddings(table.embeddings)
        return model

    def build(self, input_shape):
        if not self.backbone.built:
            self.backbone.build(input_shape)
        hidden_shape = (*input_shape, self.channels)
        for gated in self.gated_blocks:
            gated.build(hidden_shape)
        if self.policy_network is not None:
            self.policy_network.build(input_shape)
        if not self.target_embedding.built:
            self.target_embedding.build((None,))
        self.built = True

    # === Forward stages (the training steps compose these) ===

    def policy_logits(self, source_ids, training=False):
        """Policy logits `[B, N, 2]`, or None for the random method."""
        if self.policy_network is None:
            return None
        return self.policy_network(source_ids, training=training)

    def choose_policy(self, logits, source_ids, training=False):
        """The method's policy `a [B, N]` from `logits` (see the sampler)."""
        return self.sampler(logits, source_ids=source_ids, training=training)

    def encode(self, source_ids, policy, training=False):
        """User representation `h [B, C]` under a given policy `[B, N]`."""
        hidden = self.backbone.embed(source_ids, training=training)
        for index, gated in enumerate(self.gated_blocks):
            hidden = gated(hidden, policy[:, index], training=training)
        return ops.mean(hidden, axis=1)

    def call(self, source_ids, training=False):
        logits = self.policy_logits(source_ids, training=training)
        policy = self.choose_policy(logits, source_ids, training=training)
        outputs = {
            USER_EMBEDDING: self.encode(source_ids, policy, training=training),
            POLICY: policy,
        }
        if logits is not None:
            outputs[POLICY_LOGITS] = logits
        return outputs

    # === Scoring (Eq. 7) ===

    @property
    def target_item_embeddings(self):
        """The target item table `[T, C]` (row 0 = padding/unknown)."""
        return self.target_embedding.embeddings

    def score_items(self, user_embedding, item_ids):
        """Scores `[B, M]` of items `item_ids [B, M]` for each user `[B, C]`."""
        items = self.target_embedding(item_ids)  # [B, M, C]
        return ops.einsum("bc,bmc->bm", user_embedding, items)

    def score_all_items(self, user_embedding):
        """Scores `[B, T]` of every target id (column 0 is padding)."""
        return ops.matmul(
            user_embedding, ops.transpose(self.target_item_embeddings)
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "num_target_ids": self.num_target_ids,
                "method": self.method,
                "policy_encoder": self.policy_encoder,
                "policy_dilations": list(self.policy_dilations),
                "temperature": self.temperature,
                "gumbel_logits": self.gumbel_logits,
                "stochastic_eval": self.stochastic_eval,
                "freeze_embedding": self.freeze_embedding,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _num_source_ids(backbone) -> int:
    num_items = getattr(backbone, "num_items", None)
    if num_items is None:
        raise ValueError(
            "The backbone must expose `num_items` (source table rows) for the "
            f"policy network's item table. Received: {backbone.name}"
        )
    return num_items
