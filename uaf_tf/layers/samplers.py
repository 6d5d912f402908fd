"""Samplers: policy logits `[B, N, 2]` -> per-block policy `[B, N]`.

A sampler is the object that makes a `UAFRecommender` one of the UAF methods
of paper sec. 3.3 / 5.3.1, the way keras-hub's `CausalLM(sampler=...)` takes
its decoding strategy: `UAFRecommender(backbone, T, sampler="gumbel")`, or an
instance for non-default settings. `get` is the one place a method name is
turned into behaviour:

```
get("gumbel")                              # default GumbelSampler
get(GumbelSampler(temperature=5.0))        # the instance itself
get(serialize(sampler))                    # deserialised
get({"class_name": "rl", "config": {"beta": 0.5}})
```

One family, one file (like keras-rs' `pairwise_loss.py`): a small base class
and one subclass per method.

Action convention (used everywhere in uaf-tf; never write a bare 0 or 1):
the last axis of the policy logits is `[freeze, fine-tune]`, so
`logits[..., FINETUNE_INDEX]` scores "use the fine-tuned copy" and a policy
value `a_l = 1` means the fine-tuned copy of block l is used (Eq. 6's
`I_l = 1`). The original encoded the same decision two ways (index 0 = fine-
tune in one place, action 1 = fine-tune in another); here it is one constant.
"""

import inspect

import keras
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from uaf_tf import rewards

# Index of each action on the last axis of the policy logits `[B, N, 2]`.
FREEZE_INDEX = 0
FINETUNE_INDEX = 1
NUM_ACTIONS = 2

# Method names (the `--method` flag), resolved by `get`.
GUMBEL = "gumbel"
SOFT = "soft"
RL = "rl"
RANDOM = "random"
METHODS = (GUMBEL, SOFT, RL, RANDOM)

# What the Gumbel step treats as the categorical's logits.
LOG_SOFTMAX = "log_softmax"  # paper Eq. (9)-(10): log pi
SIGMOID = "sigmoid"  # original: sigmoid(logits) fed in as logits
GUMBEL_LOGITS = (LOG_SOFTMAX, SIGMOID)

# Paper sec. 4.3: Gumbel-softmax temperature tau = 10.
DEFAULT_TEMPERATURE = 10.0
# The original's UAF-RL curriculum: greedy epochs before the policy gradient.
DEFAULT_CURRICULUM_EPOCHS = 5
# Actions of the UAF-RL curriculum epochs.
SAMPLED = "sampled"  # original: sampled hard actions, every copy trains
GREEDY = "greedy"  # argmax actions: never-chosen copies get no gradient
CURRICULUM_ACTIONS = (SAMPLED, GREEDY)
# Candidates ranked for the UAF-RL reward: the positive + 99 negatives.
DEFAULT_NUM_REWARD_NEGATIVES = 99


def sample_global_rows(sample_fn, local: tf.Tensor) -> tf.Tensor:
    """`sample_fn` of the global batch, this replica's rows of the result.

    `local` holds this replica's rows (`[b, ...]`) of a global batch. Under
    a strategy with several replicas the rows are placed at this replica's
    offset in a zero tensor of the global batch (`[B, ...]`), `sample_fn`
    draws for all of it and this replica's rows are returned. A seeded,
    stateless draw (the Gumbel noise of UAF-Gumbel, the actions of UAF-RL)
    thus gives every replica different noise, each example the noise it
    gets in single-process training, and the same result for any number of
    replicas. Outside such a strategy it is `sample_fn(local)`.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return sample_fn(local)
    size = tf.shape(local)[0]
    sizes = context.all_gather(tf.reshape(size, [1]), axis=0)  # [R]
    offset = tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
    total = tf.reduce_sum(sizes)
    paddings = [[offset, total - offset - size]] + [[0, 0]] * (
        local.shape.rank - 1
    )
    return sample_fn(tf.pad(local, paddings))[offset : offset + size]


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


class Sampler(keras.layers.Layer):
    """Base class: turns policy logits into the policy used in Eq. (6).

    Call arguments:
        logits: float `[B, N, 2]`, last axis `[freeze, fine-tune]`; None for
            a sampler with `uses_logits = False`.
        source_ids: int `[B, L]`, the source sequences (only
            `RandomSampler` reads them, to derive a fixed per-user policy at
            inference).
        num_blocks: int, N; only read by samplers without logits (the
            others take it from the logits' shape).
        training: bool; sampling happens only when True (unless a subclass
            says otherwise), so inference is deterministic.

    Returns:
        float `[B, N]`, the policy `a_l` per example and block.

    Class attributes:
        uses_logits: False when the sampler ignores the logits, so the model
            needs no policy network (UAF-Random).
        self_critical: True when training adds the self-critical policy
            gradient of Eq. 11-13 (UAF-RL; see `UAFRecommender`).
    """

    uses_logits = True
    self_critical = False

    def __init__(self, **kwargs):
        # float32 under any global policy: Keras would otherwise cast the
        # logits to a mixed policy's compute dtype, and tfp's relaxed
        # categorical cannot sample bfloat16 (`mixed_bfloat16`).
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, logits, source_ids=None, num_blocks=None, training=False):
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="uaf_tf")
class GumbelSampler(Sampler):
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

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.layers.samplers import GumbelSampler
    >>> sampler = GumbelSampler(seed=0)
    >>> logits = tf.constant([[[0.0, 2.0], [3.0, 0.0]]])  # [B=1, N=2, 2]
    >>> sampler(logits).numpy()  # inference: argmax
    array([[1., 0.]], dtype=float32)
    >>> sampler(logits, training=True).shape
    TensorShape([1, 2])
    """

    def __init__(
        self,
        temperature: float = DEFAULT_TEMPERATURE,
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
        seed = ops.cast(self.seed_generator.next(), "int32")
        # Under a tf.distribute strategy: the noise of the global batch.
        return sample_global_rows(
            lambda rows: tfp.distributions.RelaxedOneHotCategorical(
                temperature=self.temperature, logits=rows
            ).sample(seed=seed),
            category_logits,
        )

    def call(self, logits, source_ids=None, num_blocks=None, training=False):
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
class SoftSampler(Sampler):
    """UAF-Soft (paper sec. 3.3.3, Eq. 14-15): `a_l = sigmoid(v_l)`.

    With the two-logit head `[B, N, 2]`, `v_l = logit_finetune - logit_freeze`
    (so `a_l = softmax(logits)[FINETUNE_INDEX]`). The difference of two
    affine maps of `h_p` is an affine map `W_p h_p + b_p`, so this is exactly
    Eq. (14) with one parameterisation shared by all methods. Deterministic in
    training and inference.

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.layers.samplers import SoftSampler
    >>> SoftSampler()(tf.constant([[[0.0, 0.0]]])).numpy()
    array([[0.5]], dtype=float32)
    """

    def call(self, logits, source_ids=None, num_blocks=None, training=False):
        return ops.sigmoid(
            logits[..., FINETUNE_INDEX] - logits[..., FREEZE_INDEX]
        )


@keras.saving.register_keras_serializable(package="uaf_tf")
class SelfCriticalSampler(Sampler):
    """UAF-RL (paper sec. 3.3.2, Eq. 11-13): sampled or greedy policies.

    As a sampler: training draws a hard exploration action
    `A^s ~ Categorical(softmax(logits))` per block (no gradient flows
    through it; the policy network learns from the self-critical loss of
    Eq. 12 instead); inference takes the greedy action `argmax p(pi)`, which
    is also the self-critical baseline.

    It also carries UAF-RL's training hyper-parameters, which
    `UAFRecommender`'s objective reads when `self_critical` is set. They
    live here rather than as model arguments because they mean something
    for this method only: the model's signature stays the same for every
    method, and `model.json` records them next to the sampler they belong
    to. In training, a batch ranks its positive among its
    `num_reward_negatives` negatives (drawn by the input pipeline:
    `pipelines.finetune_train_dataset(num_reward_negatives=...)`) under
    `A^s` and under the greedy `A_hat`; the reward (Eq. 11,
    `uaf_tf.rewards`) is a hit in the top `reward_cutoff`; the loss adds
    `beta * mean(-sum_l log p(A_l^s) (R(A^s) - R(A_hat)))`. For the first
    `curriculum_epochs` epochs the RL term is skipped (the original's
    curriculum; the paper only says "curriculum learning") and the forward
    pass uses `curriculum_actions`: `"sampled"` hard actions (default, the
    original's: every fine-tuned copy is used by some examples and trains)
    or `"greedy"` ones (the copies of blocks the untrained policy never
    chooses get no gradient at all until RL starts).

    Args:
        seed: int, seed of the sampling stream.
        reward: `"paper"` (Eq. 11) or `"original"`.
        gamma: float, reward penalty of a miss (paper: 1).
        beta: float, weight of the self-critical loss (Eq. 13; paper: 1).
        reward_cutoff: int, the reward's hit threshold K (paper: 5).
        curriculum_epochs: int, epochs without the policy gradient.
        curriculum_actions: `"sampled"` (original) or `"greedy"`: the
            actions of the curriculum epochs.
        cost_weight: float, w, the weight of the reward's block term
            (`uaf_tf.rewards`; paper: 1).
        num_reward_negatives: int, negatives ranked for the reward, which
            the training data must carry.

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.layers.samplers import SelfCriticalSampler
    >>> sampler = SelfCriticalSampler(seed=0, beta=0.5)
    >>> sampler(tf.constant([[[0.0, 2.0], [3.0, 0.0]]])).numpy()  # greedy
    array([[1., 0.]], dtype=float32)
    """

    self_critical = True

    def __init__(
        self,
        seed: int | None = None,
        reward: str = rewards.PAPER,
        gamma: float = 1.0,
        beta: float = 1.0,
        reward_cutoff: int = rewards.REWARD_CUTOFF,
        curriculum_epochs: int = DEFAULT_CURRICULUM_EPOCHS,
        num_reward_negatives: int = DEFAULT_NUM_REWARD_NEGATIVES,
        curriculum_actions: str = SAMPLED,
        cost_weight: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if reward not in rewards.REWARDS:
            raise ValueError(
                f"`reward` must be one of {rewards.REWARDS}. "
                f"Received: reward={reward!r}"
            )
        if curriculum_actions not in CURRICULUM_ACTIONS:
            raise ValueError(
                f"`curriculum_actions` must be one of {CURRICULUM_ACTIONS}. "
                f"Received: curriculum_actions={curriculum_actions!r}"
            )
        for name, value, low in (
            ("cost_weight", cost_weight, 0),
            ("reward_cutoff", reward_cutoff, 1),
            ("curriculum_epochs", curriculum_epochs, 0),
            ("num_reward_negatives", num_reward_negatives, 1),
        ):
            if value < low:
                raise ValueError(
                    f"`{name}` must be >= {low}. Received: {name}={value}"
                )
        self.seed = seed
        self.reward = reward
        self.gamma = gamma
        self.beta = beta
        self.reward_cutoff = reward_cutoff
        self.curriculum_epochs = curriculum_epochs
        self.num_reward_negatives = num_reward_negatives
        self.curriculum_actions = curriculum_actions
        self.cost_weight = cost_weight
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, logits, source_ids=None, num_blocks=None, training=False):
        if not training:
            return greedy_policy(logits)
        logits = tf.stop_gradient(logits)
        num_blocks = tf.shape(logits)[1]
        seed = ops.cast(self.seed_generator.next(), "int32")

        def sample(rows):  # [B, N, 2] -> [B, N]
            flat = tf.reshape(rows, [-1, NUM_ACTIONS])
            actions = tf.random.stateless_categorical(flat, 1, seed=seed)
            return tf.reshape(actions, [-1, num_blocks])

        # Under a tf.distribute strategy: the actions of the global batch.
        actions = sample_global_rows(sample, logits)
        return ops.cast(actions == FINETUNE_INDEX, logits.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "seed": self.seed,
                "reward": self.reward,
                "gamma": self.gamma,
                "beta": self.beta,
                "reward_cutoff": self.reward_cutoff,
                "curriculum_epochs": self.curriculum_epochs,
                "num_reward_negatives": self.num_reward_negatives,
                "curriculum_actions": self.curriculum_actions,
                "cost_weight": self.cost_weight,
            }
        )
        return config


# UAF-Random modes (paper sec. 5.3.1).
FIXED = "fixed"  # case 1: a user's policy is the same in training and eval
RESEEDED = "reseeded"  # case 2: evaluation uses another seed than training
PER_STEP = "per_step"  # fresh draws per training step, fixed at eval
RANDOM_MODES = (FIXED, RESEEDED, PER_STEP)
# Offset of the evaluation key from `hash_key` in `reseeded` mode.
_RESEED_KEY_OFFSET = 0x5EED
_UINT32 = 2**32


@keras.saving.register_keras_serializable(package="uaf_tf")
class RandomSampler(Sampler):
    """UAF-Random (paper sec. 5.3.1): each `a_l ~ Bernoulli(p)`.

    Ignores the logits (a model with this sampler has no policy network; pass
    `logits=None` and `num_blocks`). The paper keeps "random seeds fixed
    during training and inference", and reports much worse results "if we
    use evaluation seeds different from training". A deployable model can
    only keep a seed per user, so the Bernoulli draws are a keyed hash of
    the user's source sequence (`per_user_uniform`, key `(k, l)` for block
    l; the same sequence, the same draws):

    - `"fixed"` (default, the paper's main case): key `k = hash_key` in
      training and inference, so a user keeps one random policy;
    - `"reseeded"` (the paper's second case): training with key `hash_key`,
      inference with another key, so a user is evaluated under a policy
      independent of the one it was trained with;
    - `"per_step"` (this project's former behaviour, neither case): fresh
      draws for every training example and step from a seeded stream,
      the `"fixed"` hash at inference.

    Args:
        probability: float, P(a_l = 1), default 0.5.
        seed: int, seed of the `per_step` training stream.
        hash_key: int, k (`FinetuneConfig` sets it to the run's seed).
        mode: `"fixed"`, `"reseeded"` or `"per_step"`.

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.layers.samplers import RandomSampler
    >>> sampler = RandomSampler(seed=0)
    >>> ids = tf.constant([[3, 1, 4], [1, 5, 9]])
    >>> train = sampler(None, source_ids=ids, num_blocks=4, training=True)
    >>> train.shape, bool(tf.reduce_all(train == sampler(
    ...     None, source_ids=ids, num_blocks=4)))
    (TensorShape([2, 4]), True)
    """

    uses_logits = False

    def __init__(
        self,
        probability: float = 0.5,
        seed: int | None = None,
        hash_key: int = 0,
        mode: str = FIXED,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(
                "`probability` must be in [0, 1]. "
                f"Received: probability={probability}"
            )
        if mode not in RANDOM_MODES:
            raise ValueError(
                f"`mode` must be one of {RANDOM_MODES}. Received: mode={mode!r}"
            )
        self.probability = probability
        self.seed = seed
        self.hash_key = hash_key
        self.mode = mode
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, logits, source_ids=None, num_blocks=None, training=False):
        if source_ids is None or num_blocks is None:
            raise ValueError(
                "`RandomSampler` needs `source_ids` and `num_blocks`. "
                f"Received: source_ids={source_ids}, num_blocks={num_blocks}"
            )
        if training and self.mode == PER_STEP:
            batch = tf.shape(source_ids)[0]
            seed = ops.cast(self.seed_generator.next(), "int32")
            uniform = tf.random.stateless_uniform([batch, num_blocks], seed)
        else:
            key = self.hash_key
            if self.mode == RESEEDED and not training:
                key += _RESEED_KEY_OFFSET
            uniform = self.per_user_uniform(source_ids, num_blocks, key)
        return ops.cast(uniform < self.probability, "float32")

    def per_user_uniform(self, source_ids, num_blocks: int, key=None):
        """Deterministic `U[0, 1)` values `[B, N]` keyed by the sequence.

        A keyed integer hash (murmur3's finaliser on uint32, which XLA
        compiles, unlike string hashing): each position's id is mixed with
        its position, the mixes are summed (mod 2^32) into a sequence hash,
        and block l's value mixes that with `(key, l)`. Only the sequence
        and the key decide the values: no state, no batch dependence.
        """
        key = self.hash_key if key is None else key
        ids = tf.bitcast(tf.cast(source_ids, tf.int32), tf.uint32)  # [B, L]
        positions = tf.range(tf.shape(ids)[1], dtype=tf.int32)
        salts = _mix32(
            tf.bitcast(positions, tf.uint32) * _uint32(0x9E3779B9)
            + _uint32(0x7F4A7C15)
        )  # [L]
        sequence = tf.reduce_sum(_mix32(ids ^ salts[None, :]), axis=1)  # [B]
        blocks = tf.range(num_blocks, dtype=tf.int32)
        block_keys = _mix32(
            _mix32(_uint32(key % _UINT32) + _uint32(0x632BE5AB))
            ^ tf.bitcast(blocks, tf.uint32) * _uint32(0x85EBCA77)
        )  # [N]
        hashed = _mix32(sequence[:, None] ^ block_keys[None, :])  # [B, N]
        # The top 24 bits: exact in float32, so the values lie in [0, 1).
        top = tf.bitwise.right_shift(hashed, _uint32(8))
        return ops.cast(top, "float32") / float(2**24)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "probability": self.probability,
                "seed": self.seed,
                "hash_key": self.hash_key,
                "mode": self.mode,
            }
        )
        return config


def _uint32(value):
    return tf.constant(value, tf.uint32)


def _mix32(h):
    """murmur3's 32-bit finaliser `fmix32`: a bijection of uint32 with good
    avalanche (every input bit flips every output bit with p ~ 1/2)."""
    h = h ^ tf.bitwise.right_shift(h, _uint32(16))
    h = h * _uint32(0x85EBCA6B)
    h = h ^ tf.bitwise.right_shift(h, _uint32(13))
    h = h * _uint32(0xC2B2AE35)
    return h ^ tf.bitwise.right_shift(h, _uint32(16))


# The one mapping from method names to behaviour.
_SAMPLERS = {
    GUMBEL: GumbelSampler,
    SOFT: SoftSampler,
    RL: SelfCriticalSampler,
    RANDOM: RandomSampler,
}


def sampler_class(method: str) -> type[Sampler]:
    """The `Sampler` subclass of UAF method `method` (one of `METHODS`)."""
    if method not in _SAMPLERS:
        raise ValueError(
            f"`method` must be one of {METHODS}. Received: method={method!r}"
        )
    return _SAMPLERS[method]


def serialize(sampler: Sampler) -> dict:
    """The Keras config dict of `sampler` (`get` turns it back)."""
    return keras.saving.serialize_keras_object(sampler)


def deserialize(config: dict) -> Sampler:
    """A sampler from `serialize`'s dict or `{"class_name": method, ...}`."""
    return keras.saving.deserialize_keras_object(
        config,
        module_objects={
            **_SAMPLERS,
            **{cls.__name__: cls for cls in _SAMPLERS.values()},
        },
    )


def get(identifier) -> Sampler:
    """Resolves a sampler identifier, like `keras.optimizers.get`.

    Args:
        identifier: a method name (`"gumbel"`, `"soft"`, `"rl"`,
            `"random"`: that sampler with default arguments), a config dict
            (`serialize`'s output, or `{"class_name": "<method>", "config":
            {...}}`) or a `Sampler` (returned as is).

    Returns:
        A `Sampler`.

    Example:
    >>> from uaf_tf.layers import samplers
    >>> type(samplers.get("rl")).__name__
    'SelfCriticalSampler'
    >>> sampler = samplers.get(
    ...     {"class_name": "gumbel", "config": {"temperature": 5.0}}
    ... )
    >>> samplers.get(samplers.serialize(sampler)).temperature
    5.0
    """
    if isinstance(identifier, Sampler):
        return identifier
    if isinstance(identifier, str):
        return sampler_class(identifier)()
    if isinstance(identifier, dict):
        sampler = deserialize(identifier)
        if isinstance(sampler, Sampler):
            return sampler
    raise ValueError(
        "A sampler identifier must be a method name, a config dict or a "
        f"`Sampler`. Received: identifier={identifier!r}"
    )


def from_options(method: str, **options) -> Sampler:
    """The sampler of `method`, built from the options it accepts.

    Lets one flat configuration (`FinetuneConfig`, the command-line flags)
    describe every method: the sampler takes the options named like its
    constructor arguments and ignores the others (`temperature` means
    nothing to UAF-RL, `beta` nothing to UAF-Gumbel).

    Example:
    >>> from uaf_tf.layers import samplers
    >>> sampler = samplers.from_options("gumbel", temperature=2.0, beta=0.5)
    >>> sampler.temperature
    2.0
    """
    cls = sampler_class(method)
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in options.items() if k in accepted})
