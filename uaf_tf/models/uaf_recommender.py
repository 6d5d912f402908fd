"""UAF fine-tuning model: gated pretrained backbone + policy + target head."""

import keras
import tensorflow as tf
from keras import ops

from uaf_tf import losses
from uaf_tf import rewards
from uaf_tf.data.dataset_info import REWARD_NEGATIVES
from uaf_tf.data.dataset_info import SOURCE
from uaf_tf.data.dataset_info import TARGET
from uaf_tf.layers import samplers
from uaf_tf.layers.gated_residual_block import GatedResidualBlock
from uaf_tf.models.finetune_recommender import POLICY
from uaf_tf.models.finetune_recommender import USER_EMBEDDING
from uaf_tf.models.finetune_recommender import FinetuneRecommender
from uaf_tf.models.policy_network import CONV
from uaf_tf.models.policy_network import NORMAL_001
from uaf_tf.models.policy_network import POLICY_DILATIONS
from uaf_tf.models.policy_network import PolicyNetwork

# Output key of `UAFRecommender.call` (besides `USER_EMBEDDING`, `POLICY`).
POLICY_LOGITS = "policy_logits"

# Samplers whose inference policy is exactly 0/1 (an argmax, or UAF-Random's
# thresholded hash): `encode` may then skip each block's unused branch.
# UAF-Soft's gates lie in (0, 1); an unknown sampler is assumed soft.
_HARD_AT_INFERENCE = (
    samplers.GumbelSampler,
    samplers.SelfCriticalSampler,
    samplers.RandomSampler,
)

# Extra scalars of `compute_loss_and_logs` for a self-critical sampler.
SELF_CRITICAL_LOG_NAMES = (
    "policy_loss",
    "weighted_policy_loss",
    "reward",
    "advantage",
    "rl_on",
)


@keras.saving.register_keras_serializable(package="uaf_tf")
class UAFRecommender(FinetuneRecommender):
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
    5. score of target item y: `o_y = <h, W_y> + b_y` (Eq. 7; the target
       head of `FinetuneRecommender`; `item_bias=False` drops `b`, the
       original's form).

    Inference (`training=False`) is deterministic: argmax for `gumbel`
    (unless `stochastic_eval`) and `rl`, the gate value for `soft`, a fixed
    per-user hash for `random`. With a hard policy (every method but
    `soft`, `hard_policy`) `call` runs each block's frozen half only for
    the users whose action is 0 and its fine-tuned copy only for those
    whose action is 1 (`GatedResidualBlock`'s conditional computation), so
    a frozen block costs a served user nothing extra; training always
    computes both.

    Training objective (`compute_loss`, see `FinetuneRecommender`, which
    also holds the target head and makes `model.fit` work): the ranking loss
    (Eq. 8) under the sampler's training policy. UAF-RL batches also carry
    `"reward_negatives": [B, n]`. With a self-critical
    sampler (UAF-RL) it adds `beta * L_RL` (Eq. 11-13; see
    `SelfCriticalSampler`), switched on once
    `current_epoch >= sampler.curriculum_epochs`.

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
        item_bias: bool, the per-item bias of Eq. (7) (paper; False = the
            original's bias-free score).

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
        item_bias: bool = True,
        **kwargs,
    ):
        super().__init__(
            backbone, num_target_ids, ranking_loss, item_bias, **kwargs
        )

        # === Config ===
        self.policy_encoder = policy_encoder
        self.policy_dilations = tuple(int(d) for d in policy_dilations)
        self.policy_head_init = policy_head_init
        self.freeze_embedding = freeze_embedding

        # === Layers ===
        # Creation order fixes the initialisers' seeds: keep it.
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
        self._create_target_head(
            SELF_CRITICAL_LOG_NAMES if self.sampler.self_critical else ()
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
        model = cls._built_around(backbone, num_target_ids, seq_len, **kwargs)
        for gated in model.gated_blocks:
            gated.copy_pretrained_weights()
        table = getattr(backbone, "item_embedding", None)
        if model.policy_network is not None and table is not None:
            model.policy_network.set_item_embeddings(table.embeddings)
        return model

    def build(self, input_shape):
        input_shape = self._build_backbone(input_shape)
        hidden_shape = (*input_shape, self.channels)
        for gated in self.gated_blocks:
            gated.build(hidden_shape)
        if self.policy_network is not None:
            self.policy_network.build(input_shape)
        self._build_target_head()
        self.built = True

    # === Forward ===

    def policy_logits(self, source_ids, training=False):
        """Policy logits `[B, N, 2]`, or None without a policy network."""
        if self.policy_network is None:
            return None
        # float32 whatever the compute dtype: the samplers (tfp's relaxed
        # categorical refuses bfloat16) and the policy loss run in float32.
        return ops.cast(
            self.policy_network(source_ids, training=training), "float32"
        )

    def choose_policy(self, logits, source_ids, training=False):
        """The sampler's policy `a [B, N]` given `logits`."""
        return self.sampler(
            logits,
            source_ids=source_ids,
            num_blocks=self.num_blocks,
            training=training,
        )

    @property
    def hard_policy(self) -> bool:
        """Whether the sampler's inference policy is exactly 0/1 (static)."""
        return isinstance(self.sampler, _HARD_AT_INFERENCE)

    def encode(self, source_ids, policy, training=False, hard_policy=False):
        """User representation `h [B, C]` under a given policy `[B, N]`.

        `hard_policy=True` promises that `policy` is 0/1; at inference each
        block then computes only the branch each user takes. The default
        computes both branches, which any policy (a soft one too) allows.
        """
        hidden = self.backbone.embed(source_ids, training=training)
        for index, gated in enumerate(self.gated_blocks):
            hidden = gated(
                hidden, policy[:, index], training=training, hard=hard_policy
            )
        return ops.mean(hidden, axis=1)

    def call(self, source_ids, training=False):
        if isinstance(source_ids, dict):  # A batch `{"source": ids, ...}`.
            source_ids = source_ids[SOURCE]
        logits = self.policy_logits(source_ids, training=training)
        policy = self.choose_policy(logits, source_ids, training=training)
        user = self.encode(
            source_ids, policy, training=training, hard_policy=self.hard_policy
        )
        outputs = {USER_EMBEDDING: user, POLICY: policy}
        if logits is not None:
            outputs[POLICY_LOGITS] = logits
        return outputs

    # === Objective ===

    @property
    def self_critical(self) -> bool:
        return self.sampler.self_critical

    def _training_forward(self, x, training):
        if not self.sampler.self_critical:
            return super()._training_forward(x, training)
        return self._self_critical_forward(
            x[SOURCE],
            tf.cast(x[TARGET], tf.int32),
            _reward_negatives(x),
            training,
        )

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
            greedy_user = tf.stop_gradient(
                self.encode(source, greedy, training=training)
            )
            hits = [
                self._reward_hit(tf.stop_gradient(u), target, reward_negatives)
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

    def _reward_hit(self, user, target, reward_negatives):
        """Whether user `[B, C]` got its target right: bool `[B]`, the hit
        of Eq. 11. Here the positive ranks in the top `reward_cutoff` of
        itself and its `reward_negatives [B, n]`; another task (profile
        prediction) overrides it."""
        candidates = tf.concat([target[:, None], reward_negatives], axis=1)
        return rewards.hit_at_cutoff(
            self.score_items(user, candidates), self.sampler.reward_cutoff
        )

    # === Serialisation ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sampler": samplers.serialize(self.sampler),
                "policy_encoder": self.policy_encoder,
                "policy_dilations": list(self.policy_dilations),
                "policy_head_init": self.policy_head_init,
                "freeze_embedding": self.freeze_embedding,
            }
        )
        return config


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


def _num_source_ids(backbone) -> int:
    num_items = getattr(backbone, "num_items", None)
    if num_items is None:
        raise ValueError(
            "The backbone must expose `num_items` (source table rows) for the "
            f"policy network's item table. Received: {backbone.name}"
        )
    return num_items
