"""UAF fine-tuning model: gated pretrained backbone + policy + target head."""

import keras
import tensorflow as tf
from keras import ops

from uaf_tf import losses
from uaf_tf import rewards
from uaf_tf.data.dataset_info import NEGATIVE
from uaf_tf.data.dataset_info import REWARD_NEGATIVES
from uaf_tf.data.dataset_info import SOURCE
from uaf_tf.data.dataset_info import TARGET
from uaf_tf.layers import samplers
from uaf_tf.layers.gated_residual_block import GatedResidualBlock
from uaf_tf.models.policy_network import CONV
from uaf_tf.models.policy_network import NORMAL_001
from uaf_tf.models.policy_network import POLICY_DILATIONS
from uaf_tf.models.policy_network import PolicyNetwork

# Output keys of `UAFRecommender.call`.
USER_EMBEDDING = "user_embedding"
POLICY = "policy"
POLICY_LOGITS = "policy_logits"

# Batch features the training objective reads (`reward_negatives`: UAF-RL).
TRAINING_FEATURES = (SOURCE, TARGET, NEGATIVE, REWARD_NEGATIVES)

# Scalars of `compute_loss_and_logs` (and of `fit`'s logs).
LOG_NAMES = ("loss", "ranking_loss", "finetuned_fraction")
SELF_CRITICAL_LOG_NAMES = (
    "policy_loss",
    "weighted_policy_loss",
    "reward",
    "advantage",
    "rl_on",
)


@keras.saving.register_keras_serializable(package="uaf_tf")
class UAFRecommender(keras.Model):
    """User-specific Adaptive Fine-tuning of a pretrained backbone (sec. 3.2.2).

    Source ids `[B, L]` -> user representation `[B, C]`, scored against a new
    target item table:

    1. `E_0 = backbone.embed(ids)`: the pretrained input stage, trainable
       (the original fine-tunes the source item embedding) unless
       `freeze_embedding`;
    2. a policy `a [B, N]` from the `PolicyNetwork` logits `[B, N, 2]` and
       the `sampler` (`uaf_tf.layers.samplers`, which is what makes the
       model UAF-Gumbel, -Soft, -RL or -Random; `RandomSampler` needs no
       policy network);
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

    Training objective (`compute_loss`, Keras's signature; `x` is a batch
    `{"source": [B, L], "target": [B], "negative": [B]}` of
    `pipelines.finetune_train_dataset`, plus `"reward_negatives": [B, n]`
    for UAF-RL): the ranking loss (Eq. 8, BPR by
    default) of the positive against the sampled negative, under the
    sampler's training policy. With a self-critical sampler (UAF-RL) it adds
    `beta * L_RL` (Eq. 11-13; see `SelfCriticalSampler`), switched on once
    `current_epoch >= sampler.curriculum_epochs`. So

        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        model.fit(dataset, epochs=15)

    trains any method: `fit` keeps `current_epoch` up to date and drops the
    batch features the objective does not read (string user ids cannot
    enter an XLA step). The custom trainer (`uaf_tf.training.finetune`)
    runs the same `compute_loss_and_logs` under its own tape and optimizer.

    Args:
        backbone: a pretrained `SequenceBackbone`. Its blocks become the
            frozen halves of the gated blocks.
        num_target_ids: int, T, target table rows (padding id 0 included).
        sampler: a method name (`"gumbel"`, `"soft"`, `"rl"`, `"random"`),
            a serialised sampler or a `samplers.Sampler`; see
            `samplers.get`.
        policy_encoder: `"conv"` or `"gru"`.
        policy_dilations: base dilations of the conv policy encoder.
        policy_head_init: the policy head's initialiser, `"normal_0.01"`
            (original, near-uniform start) or `"glorot"` (Keras default);
            see `PolicyNetwork`.
        freeze_embedding: bool, also freeze the backbone's input stage.
        ranking_loss: `"bpr"` (paper Eq. 8) or `"pointwise"` (original).

    Call returns a dict:
        `"user_embedding"`: float `[B, C]`, h.
        `"policy"`: float `[B, N]`, the `a_l` used (1 = fine-tuned copy).
        `"policy_logits"`: float `[B, N, 2]` `[freeze, fine-tune]` (absent
            without a policy network).

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
    >>> from uaf_tf.models.uaf_recommender import UAFRecommender
    >>> backbone = NextItNetBackbone(num_items=100, channels=16)
    >>> backbone.build((None, 30))
    >>> model = UAFRecommender.from_pretrained(
    ...     backbone, num_target_ids=50, sampler="soft"
    ... )
    >>> out = model(tf.ones([4, 30], "int32"))
    >>> model.score_all_items(out["user_embedding"]).shape
    TensorShape([4, 50])
    >>> batch = {
    ...     "source": tf.ones([4, 30], "int32"),
    ...     "target": tf.constant([1, 2, 3, 4]),
    ...     "negative": tf.constant([5, 6, 7, 8]),
    ... }
    >>> float(model.compute_loss(batch)) > 0
    True
    """

    def __init__(
        self,
        backbone,
        num_target_ids: int,
        sampler="gumbel",
        policy_encoder: str = CONV,
        policy_dilations=POLICY_DILATIONS,
        policy_head_init: str = NORMAL_001,
        freeze_embedding: bool = False,
        ranking_loss: str = losses.BPR,
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
        self.policy_encoder = policy_encoder
        self.policy_dilations = tuple(int(d) for d in policy_dilations)
        self.policy_head_init = policy_head_init
        self.freeze_embedding = freeze_embedding
        self.ranking_loss = ranking_loss
        self._ranking_loss_fn = ranking_loss_fn
        self.channels = backbone.channels
        self.num_blocks = len(backbone.blocks)

        # === Layers ===
        # Creation order fixes the initialisers' seeds: keep it.
        self.backbone = backbone
        self.gated_blocks = [
            GatedResidualBlock(block, name=f"gated_{block.name}")
            for block in backbone.blocks
        ]  # each sets its pretrained block non-trainable
        if freeze_embedding:
            self.backbone.trainable = False
        self.sampler = samplers.get(sampler)
        self.policy_network = None
        if self.sampler.uses_logits:
            self.policy_network = PolicyNetwork(
                _num_source_ids(backbone),
                self.channels,
                self.num_blocks,
                encoder=policy_encoder,
                dilations=self.policy_dilations,
                kernel_size=getattr(backbone, "kernel_size", 3),
                head_init=policy_head_init,
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

        # === Training state ===
        # The 0-based training epoch, read inside the compiled step by the
        # UAF-RL curriculum (a Python int would retrace it every epoch). A
        # plain tf.Variable: training progress, not a model weight, so it
        # stays out of `weights` and the saved weight files; the custom
        # trainer checkpoints it.
        self.current_epoch = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="current_epoch"
        )
        names = LOG_NAMES + (
            SELF_CRITICAL_LOG_NAMES if self.sampler.self_critical else ()
        )
        self.log_trackers = {
            name: keras.metrics.Mean(name=name) for name in names
        }

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
        if isinstance(input_shape, dict):  # Shapes of a batch dict.
            input_shape = input_shape[SOURCE]
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

    # === Forward ===

    def policy_logits(self, source_ids, training=False):
        """Policy logits `[B, N, 2]`, or None without a policy network."""
        if self.policy_network is None:
            return None
        return self.policy_network(source_ids, training=training)

    def choose_policy(self, logits, source_ids, training=False):
        """The sampler's policy `a [B, N]` given `logits`."""
        return self.sampler(
            logits,
            source_ids=source_ids,
            num_blocks=self.num_blocks,
            training=training,
        )

    def encode(self, source_ids, policy, training=False):
        """User representation `h [B, C]` under a given policy `[B, N]`."""
        hidden = self.backbone.embed(source_ids, training=training)
        for index, gated in enumerate(self.gated_blocks):
            hidden = gated(hidden, policy[:, index], training=training)
        return ops.mean(hidden, axis=1)

    def call(self, source_ids, training=False):
        if isinstance(source_ids, dict):  # A batch `{"source": ids, ...}`.
            source_ids = source_ids[SOURCE]
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

    # === Objective ===

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """The training loss of a batch `x` (see the class docstring).

        `y`, `y_pred` and `sample_weight` are not used: the labels are in
        `x` (`target`, `negative`) and the forward pass depends on the
        method, so it runs here.

        Returns:
            Scalar float32: ranking loss (+ `beta * L_RL` for UAF-RL).
        """
        del y, y_pred, sample_weight
        return self.compute_loss_and_logs(x, training=training)[0]

    def compute_loss_and_logs(self, x, training=True):
        """`(loss, logs)` of a training batch `x` (call under a tape).

        `logs` holds scalars: `loss`, `ranking_loss`, `finetuned_fraction`
        and, for a self-critical sampler, `policy_loss`,
        `weighted_policy_loss`, `reward`, `advantage`, `rl_on`.
        """
        source = x[SOURCE]
        self._build_for(source)
        target = tf.cast(x[TARGET], tf.int32)
        negative = tf.cast(x[NEGATIVE], tf.int32)
        if self.sampler.self_critical:
            user, policy, logs = self._self_critical_forward(
                source, target, _reward_negatives(x), training
            )
        else:
            out = self(source, training=training)
            user, policy, logs = out[USER_EMBEDDING], out[POLICY], {}
        scores = self.score_items(
            user, tf.stack([target, negative], axis=1)
        )  # [B, 2]
        ranking = self._ranking_loss_fn(scores[:, 0], scores[:, 1])
        loss = ranking + logs.get("weighted_policy_loss", 0.0)
        logs.update(
            {
                "loss": loss,
                "ranking_loss": ranking,
                "finetuned_fraction": tf.reduce_mean(policy),
            }
        )
        return loss, logs

    def _self_critical_forward(
        self, source, target, reward_negatives, training
    ):
        """UAF-RL: `(user [B, C], policy [B, N], logs)` of the sampled path.

        Sampled policy `A^s` (exploration) and greedy policy `A_hat`
        (baseline); both rank the positive among the batch's reward
        negatives `[B, n]`; the reward is a top-`reward_cutoff` hit
        (Eq. 11); the policy network gets gradients only from the
        self-critical term (the policies are hard). During the curriculum
        the RL term (and the greedy forward) is skipped and the forward pass
        uses the sampler's `curriculum_actions`: sampled ones (default, so
        every fine-tuned copy trains) or greedy ones.
        """
        sampler = self.sampler
        logits = self.policy_logits(source, training=training)  # [B, N, 2]
        greedy = samplers.greedy_policy(logits)
        rl_on = self.current_epoch >= sampler.curriculum_epochs
        if sampler.curriculum_actions == samplers.SAMPLED:
            policy = self.choose_policy(logits, source, training=training)
        else:
            policy = tf.cond(
                rl_on,
                lambda: self.choose_policy(logits, source, training=training),
                lambda: greedy,
            )
        user = self.encode(source, policy, training=training)

        def policy_gradient_term():
            candidates = tf.concat([target[:, None], reward_negatives], axis=1)
            greedy_user = tf.stop_gradient(
                self.encode(source, greedy, training=training)
            )
            hits = [
                rewards.hit_at_cutoff(
                    self.score_items(tf.stop_gradient(u), candidates),
                    sampler.reward_cutoff,
                )
                for u in (user, greedy_user)
            ]
            sampled_reward, greedy_reward = (
                rewards.policy_reward(
                    hit,
                    actions,
                    sampler.gamma,
                    sampler.reward,
                    cost_weight=sampler.cost_weight,
                )
                for hit, actions in zip(hits, (policy, greedy), strict=True)
            )
            log_prob = samplers.log_prob_of_policy(logits, policy)
            policy_loss = losses.self_critical_loss(
                log_prob, sampled_reward, greedy_reward
            )
            return (
                policy_loss,
                tf.reduce_mean(sampled_reward),
                tf.reduce_mean(sampled_reward - greedy_reward),
            )

        def curriculum():
            # Keeps the policy network in the graph (zero gradient).
            zero = 0.0 * tf.reduce_sum(logits)
            return zero, zero, zero

        policy_loss, reward, advantage = tf.cond(
            rl_on, policy_gradient_term, curriculum
        )
        logs = {
            "policy_loss": policy_loss,
            "weighted_policy_loss": sampler.beta * policy_loss,
            "reward": reward,
            "advantage": advantage,
            "rl_on": tf.cast(rl_on, tf.float32),
        }
        return user, policy, logs

    # === Keras training loop ===

    @property
    def metrics(self):
        return list(self.log_trackers.values())

    def train_step(self, data):
        # Not Keras's default: that would run `call` and then the objective,
        # drawing the policy twice.
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
                "sampler": samplers.serialize(self.sampler),
                "policy_encoder": self.policy_encoder,
                "policy_dilations": list(self.policy_dilations),
                "policy_head_init": self.policy_head_init,
                "freeze_embedding": self.freeze_embedding,
                "ranking_loss": self.ranking_loss,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(
            config["backbone"]
        )
        config["sampler"] = samplers.get(config["sampler"])
        return cls(**config)


class EpochCounter(keras.callbacks.Callback):
    """Sets `model.current_epoch` to the 0-based epoch at each epoch start.

    `UAFRecommender.fit` adds it; the UAF-RL curriculum reads the variable.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.model.current_epoch.assign(epoch)


def _reward_negatives(x: dict):
    if REWARD_NEGATIVES not in x:
        raise ValueError(
            "UAF-RL batches need `reward_negatives` [B, n], the negatives "
            "the reward ranks the positive among: build the dataset with "
            "`pipelines.finetune_train_dataset(..., num_reward_negatives="
            "model.sampler.num_reward_negatives)`. "
            f"Received keys: {sorted(x)}"
        )
    return tf.cast(x[REWARD_NEGATIVES], tf.int32)


def _training_features(batch: dict) -> dict:
    return {key: batch[key] for key in TRAINING_FEATURES if key in batch}


def _num_source_ids(backbone) -> int:
    num_items = getattr(backbone, "num_items", None)
    if num_items is None:
        raise ValueError(
            "The backbone must expose `num_items` (source table rows) for the "
            f"policy network's item table. Received: {backbone.name}"
        )
    return num_items
