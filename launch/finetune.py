r"""Fine-tunes a pretrained backbone on the target domain with UAF.

    python launch/finetune.py --flagfile=launch/configs/finetune_quick.cfg \
        --data_dir=/tmp/ml100k \
        --pretrained=checkpoints/pretrain-movielens-100k \
        --method=gumbel

writes `checkpoints/finetune-<method>-<dataset>/` (config.json, model.json,
best.weights.h5, ckpt/, tb/ with the policy views, results.json,
vocabularies) and prints test MRR@5 / HR@5 and the per-block utilisation of
the fine-tuned copies. `--resume` continues an interrupted run.
"""

import json

from absl import app
from absl import flags

from uaf_tf import losses
from uaf_tf import rewards
from uaf_tf.data import dataset_info
from uaf_tf.layers import samplers
from uaf_tf.models import policy_network
from uaf_tf.training import finetune

try:  # `python -m launch.finetune` or an import from the tests.
    from launch import common_flags
except ImportError:  # `python launch/finetune.py`: launch/ is on sys.path.
    import common_flags

_JIT_CHOICES = {"auto": None, "true": True, "false": False}
_DEFAULTS = finetune.FinetuneConfig(data_dir="", pretrained="")


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines this script's flags on `flag_values` (once)."""
    if "method" in flag_values:
        return
    fv = {"flag_values": flag_values}
    d = _DEFAULTS
    common_flags.define_common_flags(flag_values)
    flags.DEFINE_string(
        "pretrained",
        None,
        "Pretraining run directory (launch/pretrain.py), e.g. "
        "checkpoints/pretrain-movielens-100k; its source vocabulary must be "
        "the dataset's.",
        **fv,
    )
    # === UAF method ===
    flags.DEFINE_enum(
        "method",
        d.method,
        list(samplers.METHODS),
        "UAF variant: gumbel (Gumbel-softmax, sec. 3.3.1), rl (self-critical "
        "REINFORCE, 3.3.2), soft (sigmoid gates, 3.3.3), random (Bernoulli "
        "0.5 policy, 5.3.1).",
        **fv,
    )
    flags.DEFINE_enum(
        "policy_encoder",
        d.policy_encoder,
        list(policy_network.ENCODERS),
        "Policy network encoder: conv (light NextItNet, dilations 1,2,4,8) "
        "or gru (sec. 5.3.3).",
        **fv,
    )
    flags.DEFINE_float(
        "temperature",
        d.temperature,
        "Gumbel-softmax temperature tau (paper: 10).",
        **fv,
    )
    flags.DEFINE_enum(
        "gumbel_logits",
        d.gumbel_logits,
        list(samplers.GUMBEL_LOGITS),
        "What the Gumbel step samples from: log_softmax (paper) or sigmoid "
        "(the original code's sigmoid outputs used as logits).",
        **fv,
    )
    flags.DEFINE_bool(
        "stochastic_eval",
        d.stochastic_eval,
        "Keep sampling Gumbel policies at evaluation like the original "
        "(default: argmax, deterministic).",
        **fv,
    )
    flags.DEFINE_enum(
        "loss",
        d.loss,
        list(losses.LOSSES),
        "Ranking loss: bpr (paper Eq. 8) or pointwise (the original's "
        "default head, -log s(o+) - log(1 - s(o-))).",
        **fv,
    )
    flags.DEFINE_enum(
        "reward",
        d.reward,
        list(rewards.REWARDS),
        "UAF-RL reward: paper (1 - f^2 on a hit, Eq. 11) or original "
        "(1 - gamma (1 - f)^2); f = fraction of fine-tuned blocks.",
        **fv,
    )
    flags.DEFINE_float(
        "gamma", d.gamma, "UAF-RL penalty of a miss (paper: 1).", **fv
    )
    flags.DEFINE_float(
        "beta",
        d.beta,
        "UAF-RL weight of the self-critical loss (Eq. 13; paper: 1).",
        **fv,
    )
    flags.DEFINE_integer(
        "rl_curriculum_epochs",
        d.rl_curriculum_epochs,
        "UAF-RL epochs trained with greedy policies and no policy gradient "
        "before RL starts.",
        **fv,
    )
    flags.DEFINE_bool(
        "freeze_embedding",
        d.freeze_embedding,
        "Also freeze the pretrained source item embedding (the original "
        "fine-tunes it).",
        **fv,
    )
    # === Training ===
    flags.DEFINE_float(
        "train_fraction",
        d.train_fraction,
        "Fraction of the training instances used (paper sec. 5.4: 0.1, 0.5).",
        **fv,
    )
    flags.DEFINE_float(
        "learning_rate", d.learning_rate, "Adam learning rate.", **fv
    )
    flags.DEFINE_integer(
        "batch_size", d.batch_size, "Training batch size.", **fv
    )
    flags.DEFINE_integer(
        "eval_batch_size",
        d.eval_batch_size,
        "Batch size of validation/test ranking.",
        **fv,
    )
    flags.DEFINE_integer("epochs", d.epochs, "Training epochs.", **fv)
    flags.DEFINE_integer(
        "steps_per_epoch",
        d.steps_per_epoch,
        "Batches per epoch (0: one pass over the training instances).",
        **fv,
    )
    # TODO(derived): drop once the flags are derived from FinetuneConfig.
    flags.DEFINE_enum(
        "policy_head_init",
        d.policy_head_init,
        list(policy_network.HEAD_INITS),
        "Policy head kernel init: normal_0.01 (original, near-uniform "
        "untrained policy) or glorot (Keras default).",
        **fv,
    )
    flags.DEFINE_enum(
        "rl_curriculum_actions",
        d.rl_curriculum_actions,
        list(samplers.CURRICULUM_ACTIONS),
        "UAF-RL curriculum-epoch actions: sampled (original) or greedy.",
        **fv,
    )
    flags.DEFINE_enum(
        "random_mode",
        d.random_mode,
        list(samplers.RANDOM_MODES),
        "UAF-Random seeds (sec. 5.3.1): fixed (same per-user policy in "
        "training and evaluation), reseeded (evaluation with another seed) "
        "or per_step (fresh draws per training step).",
        **fv,
    )
    flags.DEFINE_float(
        "rl_cost_weight",
        d.rl_cost_weight,
        "UAF-RL weight w of the reward's block term, 1 - w (n_ft/N)^2 on a "
        "hit (paper Eq. 11: 1).",
        **fv,
    )
    flags.DEFINE_enum(
        "jit_compile",
        "auto",
        sorted(_JIT_CHOICES),
        "XLA-compile the train step: auto tries and falls back.",
        **fv,
    )


def config_from_flags(fv: flags.FlagValues) -> finetune.FinetuneConfig:
    if not fv.data_dir or not fv.pretrained:
        raise app.UsageError("--data_dir and --pretrained are required.")
    return finetune.FinetuneConfig(
        data_dir=fv.data_dir,
        pretrained=fv.pretrained,
        method=fv.method,
        policy_encoder=fv.policy_encoder,
        temperature=fv.temperature,
        gumbel_logits=fv.gumbel_logits,
        stochastic_eval=fv.stochastic_eval,
        loss=fv.loss,
        reward=fv.reward,
        gamma=fv.gamma,
        beta=fv.beta,
        rl_curriculum_epochs=fv.rl_curriculum_epochs,
        freeze_embedding=fv.freeze_embedding,
        train_fraction=fv.train_fraction,
        learning_rate=fv.learning_rate,
        batch_size=fv.batch_size,
        eval_batch_size=fv.eval_batch_size,
        epochs=fv.epochs,
        steps_per_epoch=fv.steps_per_epoch,
        seed=fv.seed,
        log_every_steps=fv.log_every_steps,
        checkpoint_every_steps=fv.checkpoint_every_steps,
        jit_compile=_JIT_CHOICES[fv.jit_compile],
        policy_head_init=fv.policy_head_init,  # TODO(derived)
        rl_curriculum_actions=fv.rl_curriculum_actions,  # TODO(derived)
        random_mode=fv.random_mode,  # TODO(derived)
        rl_cost_weight=fv.rl_cost_weight,  # TODO(derived)
    )


def run(flag_values: flags.FlagValues = flags.FLAGS) -> dict:
    """Runs the fine-tuning the parsed flags describe; returns its results."""
    config = config_from_flags(flag_values)
    info = dataset_info.DatasetInfo.load(config.data_dir)
    run_dir = common_flags.resolve_run_dir(
        f"finetune-{config.method}-{info.name or 'dataset'}", flag_values
    )
    results = finetune.run_finetuning(
        config, run_dir, resume=flag_values.resume
    )
    test = results["test"]
    print(f"run_dir: {run_dir}")
    print(
        f"best epoch {results['best_epoch']}/{results['epochs_run']}, "
        f"{results['train_examples_per_sec']:.1f} train ex/s, "
        f"{results['wall_time_s']:.1f} s"
    )
    print(
        f"test ({int(test['num_examples'])} instances): "
        f"sampled/mrr@5 {test['sampled/mrr@5']:.4f} "
        f"sampled/hr@5 {test['sampled/hr@5']:.4f} "
        f"full/hr@20 {test['full/hr@20']:.4f} "
        f"full_filtered/hr@20 {test['full_filtered/hr@20']:.4f}"
    )
    blocks = sorted(
        (k for k in test if k.startswith("policy/block_")),
        key=lambda k: int(k.rsplit("_", 1)[1]),
    )
    print(
        "fine-tuned block utilisation: "
        + " ".join(f"{test[k]:.2f}" for k in blocks)
        + f" (mean {test['policy/mean_finetuned_blocks']:.2f} blocks, "
        f"{int(test['policy/distinct_policies'])} distinct policies)"
    )
    print("test: " + json.dumps(test, indent=1))
    return results


def main(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    run(flag_values)


if __name__ == "__main__":
    define_flags()
    app.run(main)
