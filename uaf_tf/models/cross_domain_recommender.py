"""Base of the jointly trained cross-domain baselines (CoNet, DDTCDR)."""

import keras
import tensorflow as tf
from keras import ops

from uaf_tf.data.dataset_info import PAD_ID
from uaf_tf.data.dataset_info import SOURCE
from uaf_tf.models.finetune_recommender import POLICY
from uaf_tf.models.finetune_recommender import USER_EMBEDDING
from uaf_tf.models.finetune_recommender import FinetuneRecommender

# Log name of the source term (as MTL's).
SOURCE_LOSS = "source_loss"


@keras.saving.register_keras_serializable(package="uaf_tf")
class CrossDomainRecommender(FinetuneRecommender):
    """A two-domain model trained on both domains' losses at once.

    What CoNet and DDTCDR (paper sec. 4.2) share once adapted to this data,
    where the only user input is the source sequence `x_1..x_n` (left
    padded, `x_n` the most recent item):

    - no pretraining stage: `from_pretrained` takes the pretrained run's
      architecture and re-initialises it (as MTL and `finetune-zero`);
    - the user encoder is the backbone, mean-pooled over positions as every
      other method: `u = mean_t E[:, t]` `[B, C]`. The backbone is causal,
      so the prefix means `u_{<=t} = mean_{s <= t} E[:, s]` `[B, L - 1, C]`
      have not seen `x_{t+1}`;
    - each subclass maps these to a target-domain user representation
      `h_t [B, C]` (scored by the Eq. 7 head on target items, as every
      other method) and source-domain ones `h_s [B, L - 1, C]`, one per
      prefix;
    - the source objective: each prefix predicts the next source item by a
      softmax over the source items,
      `p(x_{t+1}) = softmax(h_s[:, t] W_s^T + b_s)`, `W_s [V, C]`, `b_s [V]`
      (mean cross-entropy over the positions whose label is not padding),
      so every source interaction is a training pair, as in MTL;
    - one summed step per batch:

          loss = ranking_loss(h_t, Eq. 8)
               + source_weight * source cross-entropy
               + the subclass's extra terms

      Source rows are the batch's users, one per target instance (as MTL).

    Subclasses create their layers, call `_create_target_head`, implement
    `encode(source_ids, training) -> (h_t, h_s)` and may add loss terms in
    `_extra_losses`.

    Args:
        backbone: a `SequenceBackbone` (used as given; `from_pretrained`
            re-initialises it).
        num_target_ids: int, T.
        source_weight: float >= 0, weight of the source cross-entropy.
        **kwargs: `FinetuneRecommender` arguments (`ranking_loss`,
            `item_bias`).

    Call returns `{"user_embedding": h_t [B, C], "policy": [B, N]}`, the
    policy all ones (every block trains).
    """

    def __init__(
        self,
        backbone,
        num_target_ids: int,
        source_weight: float = 1.0,
        **kwargs,
    ):
        super().__init__(backbone, num_target_ids, **kwargs)
        if not source_weight >= 0.0:
            raise ValueError(
                "`source_weight` must be >= 0. Received: "
                f"source_weight={source_weight}"
            )
        self.source_weight = float(source_weight)
        self.num_source_ids = backbone.num_items
        # Everything trains (True reaches every sublayer and variable).
        self.backbone.trainable = True

    @classmethod
    def from_pretrained(cls, backbone, num_target_ids: int, seq_len=None, **kw):
        """The model on a new backbone of `backbone`'s architecture."""
        config = dict(backbone.get_config(), trainable=True)
        model = cls(
            backbone.__class__.from_config(config), num_target_ids, **kw
        )
        model.build((None, seq_len))
        return model

    def build(self, input_shape):
        input_shape = self._build_backbone(input_shape)
        self._build_layers(input_shape)
        # === Source head ===
        self.source_kernel = self.add_weight(
            name="source_kernel",
            shape=(self.num_source_ids, self.channels),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        )
        self.source_bias = self.add_weight(
            name="source_bias",
            shape=(self.num_source_ids,),
            initializer="zeros",
        )
        self._build_target_head()
        self.built = True

    def _build_layers(self, input_shape) -> None:
        """Builds the subclass's layers for ids of `input_shape`."""

    # === Subclass interface ===

    def encode(self, source_ids, training=False):
        """`(h_t [B, C], h_s [B, L - 1, C])`: the target user
        representation and the source ones of the prefixes `x_1..x_t`,
        `t < n` (position t predicts `x_{t+1}`)."""
        raise NotImplementedError

    def _extra_losses(self) -> dict:
        """Extra weighted loss terms `{log name: (weight, value)}`."""
        return {}

    # === Shared pieces ===

    @staticmethod
    def pooled_states(hidden):
        """`(u [B, C], prefixes [B, L - 1, C])` of `hidden [B, L, C]`: the
        mean over all positions (every method's user representation), and
        at position t the mean over positions 0..t, the context of the
        item at t + 1."""
        length = ops.shape(hidden)[1]
        counts = ops.cast(ops.arange(1, length + 1), hidden.dtype)
        prefixes = ops.cumsum(hidden, axis=1) / counts[None, :, None]
        return ops.mean(hidden, axis=1), prefixes[:, :-1]

    def source_logits(self, source_user):
        """Logits `[..., V]` of the source items for `h_s [..., C]`."""
        return (
            tf.tensordot(source_user, self.source_kernel, [[-1], [1]])
            + self.source_bias
        )

    def source_loss(self, source_user, source_ids):
        """Mean next-item cross-entropy of the prefixes `h_s [B, L - 1, C]`
        against `source_ids[:, 1:]`; positions whose label is padding are
        left out (0 when every label is padding)."""
        labels = tf.reshape(tf.cast(source_ids[:, 1:], tf.int32), [-1])
        features = tf.reshape(source_user, [-1, self.channels])
        if tf.__internal__.get_enclosing_xla_context() is None:
            # Softmax rows for real labels only (as `SequencePretrainer`).
            keep = tf.where(labels != PAD_ID)[:, 0]
            features = tf.gather(features, keep)
            labels = tf.gather(labels, keep)
            weights = tf.ones_like(labels, features.dtype)
        else:  # XLA needs static shapes: weight the rows instead.
            weights = tf.cast(labels != PAD_ID, features.dtype)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=self.source_logits(features)
        )
        return tf.reduce_sum(losses * weights) / tf.maximum(
            tf.reduce_sum(weights), 1.0
        )

    def _policy(self, user):
        return ops.ones((ops.shape(user)[0], self.num_blocks), user.dtype)

    # === Keras ===

    def call(self, source_ids, training=False):
        if isinstance(source_ids, dict):  # A batch `{"source": ids, ...}`.
            source_ids = source_ids[SOURCE]
        target_user, _ = self.encode(source_ids, training=training)
        return {USER_EMBEDDING: target_user, POLICY: self._policy(target_user)}

    def _training_forward(self, x, training):
        source_ids = x[SOURCE]
        target_user, source_user = self.encode(source_ids, training=training)
        logs = {SOURCE_LOSS: self.source_loss(source_user, source_ids)}
        return target_user, self._policy(target_user), logs

    def compute_loss_and_logs(self, x, training=True):
        """`(loss, logs)`: the target ranking loss plus `source_weight`
        times the source cross-entropy (`source_loss`) plus the subclass's
        extra terms (each logged under its name)."""
        loss, logs = super().compute_loss_and_logs(x, training=training)
        loss = loss + self.source_weight * logs[SOURCE_LOSS]
        for name, (weight, value) in self._extra_losses().items():
            loss = loss + weight * value
            logs[name] = value
        logs["loss"] = loss
        return loss, logs

    def get_config(self):
        config = super().get_config()
        config.update({"source_weight": self.source_weight})
        return config
