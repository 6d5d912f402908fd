"""Policy samplers: policy logits `[B, N, 2]` -> per-block policy `[B, N]`.

One family, one file (like keras-rs' `pairwise_loss.py`): a small base class
and one subclass per UAF method of paper sec. 3.3 / 5.3.1.

Action convention (used everywhere in uaf-tf; never write a bare 0 or 1):
the last axis of the policy logits is `[freeze, fine-tune]`, so
`logits[..., FINETUNE_INDEX]` scores "use the fine-tuned copy" and a policy
value `a_l = 1` means the fine-tuned copy of block l is used (Eq. 6's
`I_l = 1`). The original encoded the same decision two ways (index 0 = fine-
tune in one place, action 1 = fine-tune in another); here it is one constant.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

# Index of each action on the last axis of the policy logits `[B, N, 2]`.
FREEZE_INDEX = 0
FINETUNE_INDEX = 1
NUM_ACTIONS = 2

# Method names (the `--method` flag).
GUMBEL = "gumbel"
SOFT = "soft"
RL = "rl"
RANDOM = "random"
METHODS = (GUMBEL, SOFT, RL, RANDOM)

# What the Gumbel step treats as the categorical's logits.
LOG_SOFTMAX = "log_softmax"  # paper Eq. (9)-(10): log pi
SIGMOID = "sigmoid"  # original: sigmoid(logits) fed in as logits
GUMBEL_LOGITS = (LOG_SOFTMAX, SIGMOID)


def greedy_policy(logits):
    """`argmax` action per block as a float policy `[B, N]` (1 = fine-tune)."""
    logits = tf.convert_to_tensor(logits)
    return tf.cast(tf.argmax(logits, axis=-1) == FINETUNE_INDEX, logits.dtype)


def log_prob_of_policy(logits, policy):
    """`sum_l log p(a_l)` of a hard policy `[B, N]` under `logits` -> `[B]`."""
    log_probs = tf.nn.log_softmax(logits, axis=-1)  # [B, N, 2]
    policy = ops.cast(policy, log_probs.dtype)
    chosen = (
        policy * log_probs[..., FINETUNE_INDEX]
        + (1.0 - policy) * log_probs[..., FREEZE_INDEX]
    )
    return ops.sum(chosen, axis=-1)


class PolicySampler(keras.layers.Layer):
    """Base class: turns policy logits into the policy used in Eq. (6).

    Call arguments:
        logits: float `[B, N, 2]`, last axis `[freeze, fine-tune]`.
        source_ids: int `[B, L]`, the source sequences (only `RandomPolicy`
            reads them, to derive a fixed per-user policy at inference).
        training: bool; sampling happens only when True (unless a subclass
            says otherwise), so inference is deterministic.

    Returns:
        float `[B, N]`, the policy `a_l` per example and block.
    """

    # Whether the sampler reads logits at all (False: no policy network).
    uses_logits = True

    def call(self, logits, source_ids=None, training=False):
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="uaf_tf")
class GumbelPolicy(PolicySampler):
    """UAF-Gumbel (paper sec. 3.3.1, Eq. 9-10): hard sample, soft gradient.

    Training: draws `alpha ~ RelaxedOneHotCategorical(tau, log pi)` (Eq. 10),
    takes the hard one-hot `z = one_hot(argmax alpha)` (Eq. 9) in the forward
    pass and the gradient of `alpha` in the backward pass (straight-through):
    `z_st = alpha + stop_gradient(z - alpha)`.
    Inference: `argmax` of the logits, deterministic for serving, unless
    `stochastic_eval` (then it samples like training, as the original does).

    Args:
        temperature: float, tau (paper default 10).
        gumbel_logits: `"log_softmax"` (paper, log pi) or `"sigmoid"` (the
            original's `sigmoid(logits)` used as logits; makes the policy
            close to random, see original-behaviour.md).
        stochastic_eval: bool, keep sampling when `training=False`.
        seed: int, seed of the sampling stream.
    """

    def __init__(
        self,
        temperature: float = 10.0,
        gumbel_logits: str = LOG_SOFTMAX,
        stochastic_eval: bool = False,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if temperature <= 0:
            raise ValueError(
                "`temperature` must be > 0. "
                f"Received: temperature={temperature}"
            )
        if gumbel_logits not in GUMBEL_LOGITS:
            raise ValueError(
                f"`gumbel_logits` must be one of {GUMBEL_LOGITS}. "
                f"Received: gumbel_logits={gumbel_logits!r}"
            )
        self.temperature = temperature
        self.gumbel_logits = gumbel_logits
        self.stochastic_eval = stochastic_eval
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def relaxed_sample(self, logits):
        """`alpha` of Eq. (10): `[B, N, 2]`, rows on the simplex."""
        if self.gumbel_logits == SIGMOID:
            category_logits = ops.sigmoid(logits)
        else:
            category_logits = tf.nn.log_softmax(logits, axis=-1)
        distribution = tfp.distributions.RelaxedOneHotCategorical(
            temperature=self.temperature, logits=category_logits
        )
        seed = ops.cast(self.seed_generator.next(), "int32")
        return distribution.sample(seed=seed)

    def call(self, logits, source_ids=None, training=False):
        if not (training or self.stochastic_eval):
            return greedy_policy(logits)
        relaxed = self.relaxed_sample(logits)  # [B, N, 2]
        hard = tf.one_hot(
            ops.argmax(relaxed, axis=-1), NUM_ACTIONS, dtype=relaxed.dtype
        )
        straight_through = relaxed + tf.stop_gradient(hard - relaxed)
        return straight_through[..., FINETUNE_INDEX]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "temperature": self.temperature,
                "gumbel_logits": self.gumbel_logits,
                "stochastic_eval": self.stochastic_eval,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="uaf_tf")
class SoftPolicy(PolicySampler):
    """UAF-Soft (paper sec. 3.3.3, Eq. 14-15): `a_l = sigmoid(v_l)`.

    With the two-logit head `[B, N, 2]`, `v_l = logit_finetune - logit_freeze`
    (so `a_l = softmax(logits)[FINETUNE_INDEX]`). The difference of two
    affine maps of `h_p` is an affine map `W_p h_p + b_p`, so this is exactly
    Eq. (14) with one parameterisation shared by all methods. Deterministic in
    training and inference.
    """

    def call(self, logits, source_ids=None, training=False):
        return ops.sigmoid(
            logits[..., FINETUNE_INDEX] - logits[..., FREEZE_INDEX]
        )


@keras.saving.register_keras_serializable(package="uaf_tf")
class SelfCriticalPolicy(PolicySampler):
    """UAF-RL's behaviour policy (paper sec. 3.3.2): sample, or greedy.

    Training: a hard exploration action `A^s ~ Categorical(softmax(logits))`
    per block (no gradient flows through it; the policy network learns from
    the self-critical loss of Eq. 12, see `uaf_tf.losses`). Inference: the
    greedy action `argmax p(pi)`, which is also the self-critical baseline.

    Args:
        seed: int, seed of the sampling stream.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, logits, source_ids=None, training=False):
        if not training:
            return greedy_policy(logits)
        logits = tf.stop_gradient(logits)
        num_blocks = tf.shape(logits)[1]
        flat = tf.reshape(logits, [-1, NUM_ACTIONS])
        seed = ops.cast(self.seed_generator.next(), "int32")
        actions = tf.random.stateless_categorical(flat, 1, seed=seed)
        actions = tf.reshape(actions, [-1, num_blocks])
        return ops.cast(actions == FINETUNE_INDEX, logits.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="uaf_tf")
class RandomPolicy(PolicySampler):
    """UAF-Random (paper sec. 5.3.1): each `a_l ~ Bernoulli(p)`.

    Ignores the logits (a model with this sampler has no policy network; pass
    `logits=None`). Training: fresh Bernoulli draws per example and block
    from a seeded stream. Inference: a fixed policy per user, derived from
    the source sequence alone by a keyed hash (`to_hash_bucket_strong`, key
    `[hash_key, l]`), so repeated evaluation and serving give the same policy
    for the same user: the paper keeps "random seeds fixed during training
    and inference", which a deployable model can only do per user.

    Args:
        num_blocks: int, N.
        probability: float, P(a_l = 1), default 0.5.
        seed: int, seed of the training stream.
        hash_key: int, key of the inference hash.
    """

    uses_logits = False

    def __init__(
        self,
        num_blocks: int,
        probability: float = 0.5,
        seed: int | None = None,
        hash_key: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(
                "`probability` must be in [0, 1]. "
                f"Received: probability={probability}"
            )
        self.num_blocks = num_blocks
        self.probability = probability
        self.seed = seed
        self.hash_key = hash_key
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, logits, source_ids=None, training=False):
        if source_ids is None:
            raise ValueError("`RandomPolicy` needs `source_ids`.")
        if training:
            batch = tf.shape(source_ids)[0]
            seed = ops.cast(self.seed_generator.next(), "int32")
            uniform = tf.random.stateless_uniform(
                [batch, self.num_blocks], seed
            )
        else:
            uniform = self.per_user_uniform(source_ids)
        return ops.cast(uniform < self.probability, "float32")

    def per_user_uniform(self, source_ids):
        """Deterministic `U[0, 1)` values `[B, N]` keyed by the sequence."""
        sequences = tf.strings.reduce_join(
            tf.strings.as_string(source_ids), axis=1, separator=","
        )  # [B]
        buckets = 2**31 - 1
        columns = [
            tf.strings.to_hash_bucket_strong(
                sequences, buckets, key=[self.hash_key, block]
            )
            for block in range(self.num_blocks)
        ]
        return ops.cast(tf.stack(columns, axis=1), "float32") / buckets

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_blocks": self.num_blocks,
                "probability": self.probability,
                "seed": self.seed,
                "hash_key": self.hash_key,
            }
        )
        return config


def build_policy_sampler(
    method: str,
    num_blocks: int,
    *,
    temperature: float = 10.0,
    gumbel_logits: str = LOG_SOFTMAX,
    stochastic_eval: bool = False,
    seed: int | None = None,
) -> PolicySampler:
    """The sampler of UAF method `method` (one of `METHODS`)."""
    if method == GUMBEL:
        return GumbelPolicy(
            temperature, gumbel_logits, stochastic_eval, seed, name="sampler"
        )
    if method == SOFT:
        return SoftPolicy(name="sampler")
    if method == RL:
        return SelfCriticalPolicy(seed, name="sampler")
    if method == RANDOM:
        return RandomPolicy(num_blocks, 0.5, seed, name="sampler")
    raise ValueError(
        f"`method` must be one of {METHODS}. Received: method={method!r}"
    )
