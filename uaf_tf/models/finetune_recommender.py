"""Base class of the fine-tuning models: target head + ranking objective."""

import keras
import tensorflow as tf
from keras import ops

from uaf_tf import losses
from uaf_tf.data.dataset_info import NEGATIVE
from uaf_tf.data.dataset_info import REWARD_NEGATIVES
from uaf_tf.data.dataset_info import SOURCE
from uaf_tf.data.dataset_info import TARGET
from uaf_tf.models.sequence_backbone import deserialize_backbone_in

# Output keys of `call`.
USER_EMBEDDING = "user_embedding"
POLICY = "policy"

# Batch features the training objective reads (`reward_negatives`: UAF-RL).
TRAINING_FEATURES = (SOURCE, TARGET, NEGATIVE, REWARD_NEGATIVES)

# Scalars of `compute_loss_and_logs` (and of `fit`'s logs).
LOG_NAMES = ("loss", "ranking_loss", "finetuned_fraction")


class FinetuneRecommender(keras.Model):
    """A user encoder over a pretrained backbone, scored on a new item table.

    What every fine-tuning method shares (UAF and the baselines of paper
    sec. 4.2): source ids `[B, L]` -> user representation `h [B, C]` (the
    subclass's `call`), the target head of Eq. (7) and the ranking
    objective of Eq. (8) under Keras's `compute_loss` signature, so

        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        model.fit(dataset, epochs=15)

    trains any method. `fit` keeps `current_epoch` up to date (the UAF-RL
    curriculum reads it) and drops the batch features the objective does
    not read (string user ids cannot enter an XLA step). The custom trainer
    (`uaf_tf.training.finetune`) runs the same `compute_loss_and_logs` under
    its own tape and optimizer.

    Target head (Eq. 7): the score of target item y is
    `o_y = <h, W_y> + b_y`, `W` the target item table `[T, C]` (truncated
    normal, stddev 0.01) and `b` a per-item bias `[T]` (zeros init; the
    paper's `b_n`). `item_bias=False` drops `b`: the original's dot product.

    Training objective (`x` a batch `{"source": [B, L], "target": [B],
    "negative": [B]}` of `pipelines.finetune_train_dataset`): the ranking
    loss (BPR by default) of the positive against the sampled negative.

    Subclasses create their layers, then call `_create_target_head` (layer
    creation order fixes the initialisers' seeds), implement `call`
    returning at least `{"user_embedding": [B, C], "policy": [B, N]}` and
    `build` (calling `_build_target_head`), and may override
    `_training_forward` (UAF-RL adds its policy-gradient term there).

    Args:
        backbone: a `SequenceBackbone`.
        num_target_ids: int, T, target table rows (padding id 0 included).
        ranking_loss: `"bpr"` (paper Eq. 8) or `"pointwise"` (original).
        item_bias: bool, the per-item bias `b` of Eq. (7) (paper); False =
            the original's bias-free score.
    """

    def __init__(
        self,
        backbone,
        num_target_ids: int,
        ranking_loss: str = losses.BPR,
        item_bias: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_target_ids < 2:
            raise ValueError(
                "`num_target_ids` must count padding plus at least one item. "
                f"Received: num_target_ids={num_target_ids}"
            )
        ranking_loss_fn = losses.ranking_loss(ranking_loss)

        # === Config ===
        self.num_target_ids = num_target_ids
        self.ranking_loss = ranking_loss
        self.item_bias = item_bias
        self._ranking_loss_fn = ranking_loss_fn
        self.channels = backbone.channels
        self.num_blocks = len(backbone.blocks)
        self.backbone = backbone

    def _create_target_head(self, extra_log_names=()) -> None:
        """Creates the target table and the training state (call once)."""
        self.target_embedding = keras.layers.Embedding(
            self.num_target_ids,
            self.channels,
            embeddings_initializer=keras.initializers.TruncatedNormal(
                stddev=0.01
            ),
            name="target_embedding",
        )
        # A [T, 1] table: looked up like the items (no random draw, so the
        # other initialisers' seeds do not move).
        self.target_bias = None
        if self.item_bias:
            self.target_bias = keras.layers.Embedding(
                self.num_target_ids,
                1,
                embeddings_initializer="zeros",
                name="target_bias",
            )
        # The 0-based training epoch, read inside the compiled step by the
        # UAF-RL curriculum (a Python int would retrace it every epoch). A
        # plain tf.Variable: training progress, not a model weight, so it
        # stays out of `weights` and the saved weight files; the custom
        # trainer checkpoints it.
        self.current_epoch = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="current_epoch"
        )
        self.log_trackers = {
            name: keras.metrics.Mean(name=name)
            for name in LOG_NAMES + tuple(extra_log_names)
        }

    @classmethod
    def _built_around(cls, backbone, num_target_ids, seq_len, **kwargs):
        """`cls(backbone, num_target_ids, **kwargs)` built for ids of shape
        `(None, seq_len)`; refuses a backbone that is not built (it must
        hold the pretrained weights)."""
        if not backbone.built:
            raise ValueError(
                "`from_pretrained` needs a built backbone with pretrained "
                "weights; build it or load its weights first."
            )
        model = cls(backbone, num_target_ids, **kwargs)
        model.build((None, seq_len))
        return model

    def _build_backbone(self, input_shape) -> tuple:
        """Builds the backbone for ids of `input_shape` (or a batch dict's
        shapes); returns the ids shape `(B, L)`."""
        if isinstance(input_shape, dict):  # Shapes of a batch dict.
            input_shape = input_shape[SOURCE]
        if not self.backbone.built:
            self.backbone.build(input_shape)
        return input_shape

    def _build_target_head(self) -> None:
        for table in (self.target_embedding, self.target_bias):
            if table is not None and not table.built:
                table.build((None,))

    @property
    def self_critical(self) -> bool:
        """True when training adds a policy gradient (UAF-RL), whose batches
        carry `reward_negatives` (see `UAFRecommender`)."""
        return False

    # === Scoring (Eq. 7) ===

    @property
    def target_item_embeddings(self):
        """The target item table `[T, C]` (row 0 = padding/unknown)."""
        return self.target_embedding.embeddings

    def score_items(self, user_embedding, item_ids):
        """Scores `[B, M]` of items `item_ids [B, M]` for each user `[B, C]`."""
        items = self.target_embedding(item_ids)  # [B, M, C]
        # In the compute dtype (bfloat16 under `mixed_bfloat16`), then
        # float32: the ranking loss, rewards and metrics run in float32.
        scores = ops.einsum(
            "bc,bmc->bm", ops.cast(user_embedding, items.dtype), items
        )
        scores = ops.cast(scores, "float32")
        if self.target_bias is None:
            return scores
        return scores + ops.cast(self.target_bias(item_ids)[..., 0], "float32")

    def score_all_items(self, user_embedding):
        """Scores `[B, T]` of every target id (column 0 is padding)."""
        table = self.target_item_embeddings  # float32 variable
        scores = ops.matmul(
            ops.cast(user_embedding, table.dtype), ops.transpose(table)
        )
        if self.target_bias is None:
            return scores
        return scores + self.target_bias.embeddings[:, 0]

    # === Objective ===

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """The training loss of a batch `x` (see the class docstring).

        `y`, `y_pred` and `sample_weight` are not used: the labels are in
        `x` (`target`, `negative`) and the forward pass depends on the
        method, so it runs here.

        Returns:
            Scalar float32: the ranking loss (+ a subclass's extra terms).
        """
        del y, y_pred, sample_weight
        return self.compute_loss_and_logs(x, training=training)[0]

    def compute_loss_and_logs(self, x, training=True):
        """`(loss, logs)` of a training batch `x` (call under a tape).

        `logs` holds scalars: `loss`, `ranking_loss`, `finetuned_fraction`
        (mean policy) and a subclass's extra terms (`weighted_policy_loss`
        is added to the loss).
        """
        source = x[SOURCE]
        self._build_for(source)
        target = tf.cast(x[TARGET], tf.int32)
        negative = tf.cast(x[NEGATIVE], tf.int32)
        user, policy, logs = self._training_forward(x, training)
        scores = self.score_items(
            user, tf.stack([target, negative], axis=1)
        )  # [B, 2]
        ranking = self._ranking_loss_fn(scores[:, 0], scores[:, 1])
        loss = ranking + logs.get("weighted_policy_loss", 0.0)
        logs.update(
            {
                "loss": loss,
                "ranking_loss": ranking,
                "finetuned_fraction": tf.reduce_mean(
                    tf.cast(policy, tf.float32)
                ),
            }
        )
        return loss, logs

    def _training_forward(self, x, training):
        """`(user [B, C], policy [B, N], extra logs)` of a training batch."""
        out = self(x[SOURCE], training=training)
        return out[USER_EMBEDDING], out[POLICY], {}

    # === Keras training loop ===

    @property
    def metrics(self):
        return list(self.log_trackers.values())

    def train_step(self, data):
        # Not Keras's default: that would run `call` and then the objective,
        # drawing a sampled policy twice.
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        self._build_for(x[SOURCE])
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            loss, logs = self.compute_loss_and_logs(x, training=True)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        batch_size = tf.shape(x[SOURCE])[0]
        for name, value in logs.items():
            self.log_trackers[name].update_state(
                value, sample_weight=batch_size
            )
        return {name: m.result() for name, m in self.log_trackers.items()}

    def _build_for(self, source_ids):
        if not self.built:  # `fit` traces `train_step`, never `call`.
            self.build(tuple(source_ids.shape))

    def fit(self, x=None, *args, callbacks=None, **kwargs):
        """Keras `fit`, plus what the objective needs.

        Adds a callback that sets `current_epoch` at each epoch start (the
        UAF-RL curriculum) and keeps only `TRAINING_FEATURES` of a dataset
        of dict batches.
        """
        if isinstance(x, tf.data.Dataset) and isinstance(x.element_spec, dict):
            x = x.map(_training_features)
        callbacks = [*(callbacks or []), EpochCounter()]
        return super().fit(x, *args, callbacks=callbacks, **kwargs)

    # === Serialisation ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "num_target_ids": self.num_target_ids,
                "ranking_loss": self.ranking_loss,
                "item_bias": self.item_bias,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = deserialize_backbone_in(config)
        return cls(**config)


class EpochCounter(keras.callbacks.Callback):
    """Sets `model.current_epoch` to the 0-based epoch at each epoch start.

    `FinetuneRecommender.fit` adds it; the UAF-RL curriculum reads the
    variable.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.model.current_epoch.assign(epoch)


def _training_features(batch: dict) -> dict:
    return {key: batch[key] for key in TRAINING_FEATURES if key in batch}
