"""User-profile prediction over a fine-tuned backbone (paper sec. 5.5)."""

import keras
import tensorflow as tf
from keras import ops

from uaf_tf.data.dataset_info import SOURCE
from uaf_tf.data.dataset_info import TARGET
from uaf_tf.models.finetune_baseline import FinetuneBaseline
from uaf_tf.models.finetune_recommender import POLICY
from uaf_tf.models.finetune_recommender import USER_EMBEDDING
from uaf_tf.models.uaf_recommender import UAFRecommender

# Output key of `call` (besides the encoder's).
CLASS_LOGITS = "class_logits"

# Scalars of `compute_loss_and_logs` (and of `fit`'s logs).
PROFILE_LOG_NAMES = (
    "loss",
    "classification_loss",
    "accuracy",
    "finetuned_fraction",
)


class _ProfileHead:
    """A classification head in place of the target item table.

    Mixed in before a `FinetuneRecommender` subclass, whose user encoder
    (`call` -> `"user_embedding" [B, C]`, `"policy" [B, N]`) and its
    fine-tuning method stay as they are; only the head and the objective
    change:

        logits = h W + b    W [C, K] (truncated normal, stddev 0.01, as
                            the target table of Eq. 7), b [K] (zeros)
        loss   = mean_u CE(softmax(logits_u), y_u)

    with `y` the class id, read from the batch's `"target"` key (so
    `FinetuneRecommender.fit` keeps it). UAF-RL's reward (Eq. 11) is the
    same as for recommendation with the hit replaced by a correct top-1
    class: R = 1 - f^2 when `argmax(logits) == y`, else -gamma, for the
    sampled and the greedy policy (see `_reward_hit`).
    """

    def __init__(self, backbone, num_classes: int, **kwargs):
        if num_classes < 2:
            raise ValueError(
                "`num_classes` must be >= 2. "
                f"Received: num_classes={num_classes}"
            )
        # The parent stores it as `num_target_ids` (the head's rows) before
        # `_create_target_head` runs.
        super().__init__(backbone, num_classes, **kwargs)
        self.num_classes = num_classes

    def _create_target_head(self, extra_log_names=()) -> None:
        # Initialised like the target item table (Eq. 7): near-zero
        # logits, so training starts at the uniform loss log K.
        self.classifier = keras.layers.Dense(
            self.num_target_ids,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01),
            name="classifier",
        )
        # The 0-based epoch (UAF-RL curriculum), as `FinetuneRecommender`.
        self.current_epoch = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="current_epoch"
        )
        self.log_trackers = {
            name: keras.metrics.Mean(name=name)
            for name in PROFILE_LOG_NAMES + tuple(extra_log_names)
        }

    def _build_target_head(self) -> None:
        if not self.classifier.built:
            self.classifier.build((None, self.channels))

    def classify(self, user_embedding):
        """Class logits `[B, K]` of user representations `[B, C]`."""
        return self.classifier(user_embedding)

    def call(self, source_ids, training=False):
        outputs = super().call(source_ids, training=training)
        outputs[CLASS_LOGITS] = self.classify(outputs[USER_EMBEDDING])
        return outputs

    def compute_loss_and_logs(self, x, training=True):
        """`(loss, logs)` of a batch `{"source": [B, L], "target": [B]}`.

        `logs`: `loss`, `classification_loss` (mean softmax cross-entropy),
        `accuracy` (of the training forward's policy), `finetuned_fraction`
        and, for UAF-RL, the self-critical terms (`weighted_policy_loss` is
        added to the loss).
        """
        self._build_for(x[SOURCE])
        label = tf.cast(x[TARGET], tf.int32)
        user, policy, logs = self._training_forward(x, training)
        logits = self.classify(user)
        classification = ops.mean(
            keras.losses.sparse_categorical_crossentropy(
                label, logits, from_logits=True
            )
        )
        loss = classification + logs.get("weighted_policy_loss", 0.0)
        correct = ops.cast(
            ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), label),
            "float32",
        )
        logs.update(
            {
                "loss": loss,
                "classification_loss": classification,
                "accuracy": ops.mean(correct),
                "finetuned_fraction": ops.mean(policy),
            }
        )
        return loss, logs

    def _training_forward(self, x, training):
        if not self.self_critical:
            out = self(x[SOURCE], training=training)
            return out[USER_EMBEDDING], out[POLICY], {}
        return self._self_critical_forward(
            x[SOURCE], tf.cast(x[TARGET], tf.int32), None, training
        )

    def _reward_hit(self, user, target, reward_negatives):
        del reward_negatives  # The classes are the candidates.
        predicted = ops.cast(ops.argmax(self.classify(user), axis=-1), "int32")
        return ops.equal(predicted, target)

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = config.pop("num_target_ids")
        # Options of the ranking head, which this model does not have.
        for key in ("ranking_loss", "item_bias"):
            config.pop(key, None)
        return config


@keras.saving.register_keras_serializable(package="uaf_tf")
class UAFProfileClassifier(_ProfileHead, UAFRecommender):
    """UAF fine-tuning for user-profile prediction (paper Table 9).

    `UAFRecommender`'s user encoder (per-user policy over the gated
    pretrained blocks, Eq. 6; mean-pooled `h [B, C]`) with a softmax
    classifier over `num_classes` profile classes instead of the target
    item table, trained with cross-entropy (see `_ProfileHead`).

    Args:
        backbone: a pretrained `SequenceBackbone`.
        num_classes: int >= 2, K.
        **kwargs: `UAFRecommender` arguments (`sampler`, `policy_encoder`,
            `freeze_embedding`, ...).

    Call returns `UAFRecommender`'s dict plus `"class_logits": [B, K]`.

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
    >>> from uaf_tf.models.profile_classifier import UAFProfileClassifier
    >>> backbone = NextItNetBackbone(num_items=100, channels=16)
    >>> backbone.build((None, 30))
    >>> model = UAFProfileClassifier.from_pretrained(
    ...     backbone, 7, sampler="soft"
    ... )
    >>> model(tf.ones([4, 30], "int32"))["class_logits"].shape
    TensorShape([4, 7])
    """


@keras.saving.register_keras_serializable(package="uaf_tf")
class FinetuneProfileClassifier(_ProfileHead, FinetuneBaseline):
    """A fine-tuning baseline (paper sec. 4.2) for user-profile prediction.

    `FinetuneBaseline`'s encoder (`from_pretrained(..., method=...)`:
    `finetune-zero`, `-cls` (head only), `-last1`, `-last2`, `-all`) with
    the softmax classifier of `_ProfileHead`.

    Args:
        backbone: a `SequenceBackbone`.
        num_classes: int >= 2, K.
        **kwargs: `FinetuneBaseline` arguments (`trainable_blocks`,
            `freeze_embedding`).

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
    >>> from uaf_tf.models.profile_classifier import (
    ...     FinetuneProfileClassifier,
    ... )
    >>> backbone = NextItNetBackbone(num_items=100, channels=16)
    >>> backbone.build((None, 30))
    >>> model = FinetuneProfileClassifier.from_pretrained(
    ...     backbone, 2, method="finetune-cls"
    ... )
    >>> [w.name for w in model.trainable_weights]  # The head only.
    ['kernel', 'bias']
    """
