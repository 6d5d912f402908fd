"""`PolicyRunConfig`: the options every run that adapts a pretrained backbone
with a UAF policy shares.

Fine-tuning for recommendation (`finetune.FinetuneConfig`) and user-profile
prediction (`profile.ProfileConfig`) load the same pretrained run, build the
same policy network and sampler (paper sec. 3.3), and train with the same
`trainer.TrainingConfig`. Those fields are declared once here; each task's
config inherits them, narrows `method` to the methods it has, and adds its
own fields after them. Flags, `--help` texts and `config.json` keys keep the
field names, so a subclass's flags are these plus its own.
"""

import dataclasses

from uaf_tf import config_flags
from uaf_tf import rewards
from uaf_tf.layers import samplers
from uaf_tf.models import policy_network
from uaf_tf.training import trainer


@dataclasses.dataclass(frozen=True)
class PolicyRunConfig:
    """Data, pretrained run, method, UAF policy options and training.

    Attributes:
        data_dir: dataset directory made by `launch/prepare_data.py` (holds
            dataset.json).
        pretrained: pretraining run directory (`launch/pretrain.py`), e.g.
            checkpoints/pretrain-movielens-100k; its `model.json`,
            `best.weights.h5` and `source_vocab.txt` are read, and its
            source vocabulary must be the dataset's.
        method: UAF variant, the policy sampler (`uaf_tf.layers.samplers`):
            gumbel (Gumbel-softmax, sec. 3.3.1), rl (self-critical
            REINFORCE, 3.3.2), soft (sigmoid gates, 3.3.3), random
            (Bernoulli 0.5 policy, 5.3.1); or a baseline of the task.
        policy_encoder: policy network encoder: conv (light NextItNet,
            dilations 1,2,4,8), gru (sec. 5.3.3) or attention (one
            self-attention block, the paper's policy over SASRec, Table 3).
        temperature: Gumbel-softmax temperature tau (paper: 10).
        gumbel_logits: what the Gumbel step samples from: log_softmax
            (paper) or sigmoid (the original code's sigmoid outputs used as
            logits).
        reward: UAF-RL reward: paper (1 - f^2 on a hit, Eq. 11) or original
            (1 - gamma (1 - f)^2); f = fraction of fine-tuned blocks. A hit
            is the task's: the positive ranked in the top K
            (recommendation) or a correct top-1 class (profiles).
        gamma: UAF-RL penalty of a miss (paper: 1).
        beta: UAF-RL weight of the self-critical loss (Eq. 13; paper: 1).
        rl_curriculum_epochs: UAF-RL epochs trained without the policy
            gradient before RL starts (original: 5), with the actions of
            `rl_curriculum_actions`.
        rl_curriculum_actions: actions of UAF-RL's curriculum epochs:
            `"sampled"` (original; every fine-tuned copy trains) or
            `"greedy"` (copies the untrained policy never picks get no
            gradient).
        rl_cost_weight: UAF-RL reward's weight w of the block term,
            `1 - w (n_ft / N)^2` on a hit (Eq. 11 has w = 1); sweep it for
            the accuracy / fine-tuned-blocks trade-off.
        random_mode: UAF-Random's seeds (paper sec. 5.3.1): `"fixed"`
            (a user keeps one random policy in training and inference),
            `"reseeded"` (inference draws with another seed than training)
            or `"per_step"` (fresh draws every training step; the former
            behaviour). The hash key is `seed`.
        policy_head_init: the policy head's kernel initialiser:
            `"normal_0.01"` (original; near-uniform untrained policy) or
            `"glorot"` (Keras default; confident, user-independent start).
        freeze_embedding: also freeze the pretrained source item embedding
            (the original fine-tunes it).
        training: learning rate, batch sizes, epochs, seed, logging,
            checkpointing and XLA (`trainer.TrainingConfig`, with
            `eval_batch_size=1024`; flags of the field names, e.g.
            `--epochs`).
    """

    data_dir: str
    pretrained: str
    method: str = dataclasses.field(
        default=samplers.GUMBEL,
        metadata={config_flags.CHOICES: samplers.METHODS},
    )
    policy_encoder: str = dataclasses.field(
        default=policy_network.CONV,
        metadata={config_flags.CHOICES: policy_network.ENCODERS},
    )
    temperature: float = samplers.DEFAULT_TEMPERATURE
    gumbel_logits: str = dataclasses.field(
        default=samplers.LOG_SOFTMAX,
        metadata={config_flags.CHOICES: samplers.GUMBEL_LOGITS},
    )
    reward: str = dataclasses.field(
        default=rewards.PAPER,
        metadata={config_flags.CHOICES: rewards.REWARDS},
    )
    gamma: float = 1.0
    beta: float = 1.0
    rl_curriculum_epochs: int = samplers.DEFAULT_CURRICULUM_EPOCHS
    rl_curriculum_actions: str = dataclasses.field(
        default=samplers.SAMPLED,
        metadata={config_flags.CHOICES: samplers.CURRICULUM_ACTIONS},
    )
    rl_cost_weight: float = 1.0
    random_mode: str = dataclasses.field(
        default=samplers.FIXED,
        metadata={config_flags.CHOICES: samplers.RANDOM_MODES},
    )
    policy_head_init: str = dataclasses.field(
        default=policy_network.NORMAL_001,
        metadata={config_flags.CHOICES: policy_network.HEAD_INITS},
    )
    freeze_embedding: bool = False
    training: trainer.TrainingConfig = dataclasses.field(
        default_factory=lambda: trainer.TrainingConfig(eval_batch_size=1024)
    )

    def __post_init__(self):
        # Every field with choices is checked against the choices its
        # (sub)class declares: a subclass's narrower `method` included.
        for field in dataclasses.fields(self):
            allowed = field.metadata.get(config_flags.CHOICES)
            if allowed is not None:
                config_flags.check_choice(self, field.name, allowed)
        # Eq. 10 divides by tau; Eq. 11's miss penalty gamma and Eq. 13's
        # weight beta are >= 0 (the paper sets both to 1).
        config_flags.check_positive(self, "temperature")
        config_flags.check_non_negative(self, "gamma", "beta", "rl_cost_weight")
        config_flags.check_at_least(self, 0, "rl_curriculum_epochs")

    def sampler(self, **options) -> samplers.Sampler:
        """A new sampler of UAF `method` with this config's settings.

        Args:
            **options: the task's further `samplers.from_options` settings
                (e.g. the ranking reward's cutoff and negatives).
        """
        return samplers.from_options(
            self.method,
            temperature=self.temperature,
            gumbel_logits=self.gumbel_logits,
            reward=self.reward,
            gamma=self.gamma,
            beta=self.beta,
            curriculum_epochs=self.rl_curriculum_epochs,
            curriculum_actions=self.rl_curriculum_actions,
            cost_weight=self.rl_cost_weight,
            mode=self.random_mode,
            hash_key=self.training.seed,
            seed=self.training.seed,
            **options,
        )

    def policy_kwargs(self) -> dict:
        """Keyword arguments of a UAF model's policy set by this config
        (UAF methods only): the sampler, the policy network and whether the
        source embedding is frozen."""
        return dict(
            sampler=self.sampler(),
            policy_encoder=self.policy_encoder,
            policy_head_init=self.policy_head_init,
            freeze_embedding=self.freeze_embedding,
        )
