"""Next-item pretraining head over any sequence backbone (paper Eq. 3-5)."""

import keras
import tensorflow as tf

from uaf_tf import losses as losses_lib
from uaf_tf.data.dataset_info import PAD_ID
from uaf_tf.data.dataset_info import SOURCE
from uaf_tf.models.sequence_backbone import SequenceBackbone
from uaf_tf.models.sequence_backbone import deserialize_backbone_in

# What the softmax head (Eq. 3) applies to the hidden states first.
NO_ACTIVATION = "none"  # paper Eq. (3): softmax(W h_i + b)
RELU = "relu"  # original: softmax(W relu(h_i) + b)
HEAD_ACTIVATIONS = (NO_ACTIVATION, RELU)

# Where sampled softmax draws its negative classes from.
LOG_UNIFORM = "log_uniform"  # Zipf over ids: needs ids by frequency.
UNIFORM = "uniform"
SOFTMAX_SAMPLERS = (LOG_UNIFORM, UNIFORM)


@keras.saving.register_keras_serializable(package="uaf_tf")
class SequencePretrainer(keras.Model):
    """Source-domain next-item model: a backbone plus a softmax over items.

    Paper sec. 3.2.1. For a sequence `x_1..x_n` the context `x_1..x_{n-1}`
    goes through the backbone and position i predicts `x_{i+1}`:

        p(x_{i+1} | x_{1:i}) = softmax(W g(h_i) + b)             (Eq. 3)
        G = -sum_u sum_i log p(x_{i+1} | x_{1:i})               (Eq. 4-5)

    The loss is the *mean* cross-entropy over predicted positions. The head is
    a dense layer with bias (the original's 1x1 `conv1d`, truncated normal
    0.02, bias 0), stored as `W [V, C]` so that `tf.nn.sampled_softmax_loss`
    uses it without a transpose. `g` is `head_activation`: the identity in
    the paper's Eq. (3) (default), `relu` in the original code.

    Padding (id 0): with `mask_padding=True` (default) positions whose label
    is padding are dropped before the softmax, so the loss averages over real
    next items only and the `[N, V]` logits, which dominate the FLOPs, are
    computed for those rows only. `mask_padding=False` reproduces the
    original, which also trains the model to predict padding after padding.

    Sampled softmax (`num_sampled > 0`, training only): each position's
    softmax runs over its label plus `num_sampled` distinct classes drawn
    from a proposal Q, with the logQ correction (`tf.nn.sampled_softmax_loss`:
    `o_j - log E[count_j]`, accidental hits of the label removed), so the
    loss tends to the full softmax as `num_sampled` -> V and costs
    `O(num_sampled)` instead of `O(V)` per position; the head's gradient
    touches only the sampled rows. Q is `softmax_sampler`: `"log_uniform"`
    (Zipf, default; the vocabularies here give id 1 to the most frequent
    item) or `"uniform"`. Unlike the original's sampled branch (raw hidden
    states, its own `W` with bias 0.1), it uses the same `g(hidden)` and
    `W, b` as the full softmax used for evaluation.

    Works with any `SequenceBackbone`; only `backbone(ids)` and
    `backbone.channels` are used.

    Args:
        backbone: `SequenceBackbone`, ids `[B, L]` -> hidden `[B, L, C]`.
        num_items: int, V, softmax classes = rows of the source item table.
        mask_padding: bool, drop padding labels from the loss.
        num_sampled: int, 0 = full softmax; else negatives per position for
            sampled softmax.
        head_activation: `"none"` (paper Eq. 3, default) or `"relu"` (the
            original's `softmax(W relu(h) + b)`).
        softmax_sampler: sampled softmax's proposal, `"log_uniform"`
            (default) or `"uniform"`; unused when `num_sampled` is 0.

    Call inputs: item ids `[B, L]` (or a batch `{"source": ids}`). Call
    outputs: logits `[B, L, V]`, position t scoring item t + 1.

    Training: `compute_loss` has Keras's signature and `train_step` runs
    it alone (no `[B, L, V]` logits of `call`), so `compile` + `fit` on
    `{"source": [B, L]}` batches trains the model; `PretrainTask`, the
    custom trainer kept for exact resume, calls the same `compute_loss`.

    Example:
    >>> import keras
    >>> import tensorflow as tf
    >>> from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
    >>> from uaf_tf.models.sequence_pretrainer import SequencePretrainer
    >>> backbone = NextItNetBackbone(num_items=50, channels=16, dilations=(1,))
    >>> model = SequencePretrainer(backbone, num_items=50)
    >>> ids = tf.constant([[0, 3, 7, 9, 2], [4, 4, 8, 1, 6]])
    >>> batches = tf.data.Dataset.from_tensors({"source": ids}).repeat(3)
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-2))
    >>> history = model.fit(batches, epochs=2, verbose=0)
    >>> losses = history.history["loss"]
    >>> len(losses), bool(losses[1] < losses[0])
    (2, True)
    """

    def __init__(
        self,
        backbone: SequenceBackbone,
        num_items: int,
        mask_padding: bool = True,
        num_sampled: int = 0,
        head_activation: str = NO_ACTIVATION,
        softmax_sampler: str = LOG_UNIFORM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if softmax_sampler not in SOFTMAX_SAMPLERS:
            raise ValueError(
                f"`softmax_sampler` must be one of {SOFTMAX_SAMPLERS}. "
                f"Received: softmax_sampler={softmax_sampler!r}"
            )
        if head_activation not in HEAD_ACTIVATIONS:
            raise ValueError(
                f"`head_activation` must be one of {HEAD_ACTIVATIONS}. "
                f"Received: head_activation={head_activation!r}"
            )
        if num_items < 2:
            raise ValueError(
                "`num_items` must count padding plus at least one item. "
                f"Received: num_items={num_items}"
            )
        if not 0 <= num_sampled < num_items:
            raise ValueError(
                "`num_sampled` must be in [0, num_items). Received: "
                f"num_sampled={num_sampled}, num_items={num_items}"
            )
        self.backbone = backbone
        self.num_items = num_items
        self.mask_padding = mask_padding
        self.num_sampled = num_sampled
        self.head_activation = head_activation
        self.softmax_sampler = softmax_sampler
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def build(self, input_shape):
        if isinstance(input_shape, dict):  # Shapes of a batch dict.
            input_shape = input_shape[SOURCE]
        if not self.backbone.built:
            self.backbone.build(input_shape)
        # === Softmax head (Eq. 3) ===
        self.output_kernel = self.add_weight(
            name="output_kernel",
            shape=(self.num_items, self.backbone.channels),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        )
        self.output_bias = self.add_weight(
            name="output_bias", shape=(self.num_items,), initializer="zeros"
        )

    def _features(self, hidden):
        """`g(hidden)`: what the softmax head reads (Eq. 3)."""
        if self.head_activation == RELU:
            return tf.nn.relu(hidden)
        return hidden

    def _logits(self, features):
        """`g(hidden) [N, C]` -> logits `[N, V]`, float32.

        The matmul runs in the features' dtype (bfloat16 under the
        `mixed_bfloat16` policy, the head's weights cast to it); the logits
        are float32, so the softmax and the loss are.
        """
        kernel = tf.cast(self.output_kernel, features.dtype)
        logits = tf.matmul(features, kernel, transpose_b=True)
        return tf.cast(logits, tf.float32) + tf.cast(
            self.output_bias, tf.float32
        )

    def call(self, item_ids, training=False):
        item_ids = _item_ids(item_ids)
        features = self._features(self.backbone(item_ids, training=training))
        batch, length = tf.shape(item_ids)[0], tf.shape(item_ids)[1]
        features = tf.reshape(features, [-1, self.backbone.channels])
        logits = self._logits(features)  # [B L, V]
        return tf.reshape(logits, [batch, length, self.num_items])

    def next_item_scores(self, item_ids, training=False):
        """Logits `[B, V]` of the item following `item_ids [B, L]`.

        Full softmax logits from the last position only (sequences are
        left-padded, so the last position is the most recent item).
        """
        return self._logits(self.next_item_features(item_ids, training))

    def next_item_features(self, item_ids, training=False):
        """`g(h)` `[B, C]` at the last position: what the head scores
        (`next_item_scores` = features `W^T + b`), for rankings that scan
        the items in chunks (`metrics.rank_among_all_items_chunked`)."""
        hidden = self.backbone(item_ids, training=training)[:, -1, :]
        # float32 like the head's weights, whatever the compute dtype.
        return tf.cast(self._features(hidden), self.output_kernel.dtype)

    def compute_loss(
        self,
        x=None,
        y=None,
        y_pred=None,
        sample_weight=None,
        training=True,
        softmax_chunk_size=None,
    ):
        """Mean next-item cross-entropy of a batch (Eq. 5 / positions).

        Keras's signature, so `model.fit` trains it. The labels are the
        sequences themselves shifted by one, so `y` and `y_pred` are not
        used (`call`'s full `[B, L, V]` logits are never needed here).

        Args:
            x: `{"source": ids [B, L]}` or the ids tensor itself.
            y, y_pred, sample_weight: unused.
            training: passed to the backbone; sampled softmax (if
                `num_sampled`) is used only when True.
            softmax_chunk_size: with a full softmax over more classes than
                this, the log-sum-exp runs over chunks of this many classes
                (`losses.chunked_softmax_cross_entropy`: memory
                `[N, chunk]`, not `[N, V]`; equal up to float rounding).
                None (default) or at least V: the one `[N, V]` softmax.

        Returns:
            Scalar float32: the mean over predicted positions `[B, L - 1]`,
            padding labels excluded when `mask_padding`.
        """
        del y, y_pred, sample_weight
        item_ids = _item_ids(x)
        self._build_for(item_ids)
        context, labels = item_ids[:, :-1], item_ids[:, 1:]
        features = self._features(self.backbone(context, training=training))
        features = tf.reshape(features, [-1, self.backbone.channels])
        labels = tf.reshape(labels, [-1])
        weights = None
        if self.mask_padding:
            if tf.__internal__.get_enclosing_xla_context() is None:
                # Softmax rows for real labels only: the [N, V] logits are
                # most of the FLOPs.
                keep = tf.where(labels != PAD_ID)[:, 0]
                features = tf.gather(features, keep)  # [N, C]
                labels = tf.gather(labels, keep)  # [N]
            else:
                # XLA needs static shapes: a gather would be padded back to
                # B (L - 1) rows and blocks fusion, so weight the rows
                # instead (measured faster under XLA for any padding).
                weights = tf.cast(labels != PAD_ID, tf.float32)
        if training and self.num_sampled:
            true_classes = tf.cast(labels[:, None], tf.int64)
            sampled_values = None  # tf's default: log-uniform.
            if self.softmax_sampler == UNIFORM:
                sampled_values = tf.random.uniform_candidate_sampler(
                    true_classes=true_classes,
                    num_true=1,
                    num_sampled=self.num_sampled,
                    unique=True,
                    range_max=self.num_items,
                )
            losses = tf.nn.sampled_softmax_loss(
                weights=self.output_kernel,
                biases=self.output_bias,
                labels=true_classes,
                # float32 (a bfloat16 backbone's too): the sampled head is
                # small, and its loss stays in float32.
                inputs=tf.cast(features, self.output_kernel.dtype),
                num_sampled=self.num_sampled,
                num_classes=self.num_items,
                sampled_values=sampled_values,
            )
        elif softmax_chunk_size and softmax_chunk_size < self.num_items:
            losses = losses_lib.chunked_softmax_cross_entropy(
                tf.cast(features, self.output_kernel.dtype),
                self.output_kernel,
                self.output_bias,
                labels,
                softmax_chunk_size,
            )
        else:
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels, logits=self._logits(features)
            )
        if weights is None:
            count = tf.cast(tf.size(losses), losses.dtype)
        else:
            losses, count = losses * weights, tf.reduce_sum(weights)
        # A batch of padding only gives 0, not NaN.
        return tf.reduce_sum(losses) / tf.maximum(count, 1.0)

    # === Keras training loop ===

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        # Not Keras's default, which would run `call` (the full [B, L, V]
        # logits) before the loss.
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        self._build_for(_item_ids(x))
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            loss = self.compute_loss(x=x, training=True)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return self._track_loss(x, loss)

    def test_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._track_loss(x, self.compute_loss(x=x, training=False))

    def _build_for(self, item_ids):
        if not self.built:  # `fit` traces `train_step`, never `call`.
            self.build(tuple(item_ids.shape))

    def _track_loss(self, x, loss):
        item_ids = _item_ids(x)
        # Weighted by batch size, like the custom trainer's epoch loss.
        self.loss_tracker.update_state(
            loss, sample_weight=tf.shape(item_ids)[0]
        )
        return {"loss": self.loss_tracker.result()}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "num_items": self.num_items,
                "mask_padding": self.mask_padding,
                "num_sampled": self.num_sampled,
                "head_activation": self.head_activation,
                "softmax_sampler": self.softmax_sampler,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = deserialize_backbone_in(config)
        # Runs saved before the option existed used the original's ReLU.
        config.setdefault("head_activation", RELU)
        return cls(**config)


def _item_ids(x):
    """The ids `[B, L]` of a batch `{"source": ids}` or of the ids."""
    return x[SOURCE] if isinstance(x, dict) else x
