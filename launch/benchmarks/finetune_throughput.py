r"""Throughput of the fine-tuning train step (not a test; prints figures).

    python launch/benchmarks/finetune_throughput.py                  # UAF
    python launch/benchmarks/finetune_throughput.py --methods=rl --jit=xla
    python launch/benchmarks/finetune_throughput.py \
        --methods=finetune-all,finetune-cls --precision=mixed_bfloat16

Standard workload: source vocabulary 20,000, target vocabulary 5,000, L = 30,
B = 256, C = 128, backbone base dilations [1, 4] * 4 (8 blocks, 16 convs,
k = 3), conv policy network (2 blocks), BPR, Adam. Batches are planted
synthetic data
(`uaf_tf.data.preparation.synthetic.planted_arrays`) held in memory, so
this times `FinetuneTask.train_step` exactly as the trainer runs it (one
`tf.function`, optionally XLA) without the input pipeline; median over
`--steps` after `--warmup` untimed steps. UAF-RL is timed with the policy
gradient on (after its curriculum). Any `--method` of fine-tuning can be
timed (`finetune.model_for_method` builds its model).

FLOPs are counted analytically for the convolutions only (embedding lookups,
layer norms, the dense policy head and the B x 2 / B x 100 scoring products
are < 1% and ignored). One causal conv forward is `2 B L k C^2`. Per step:

    frozen convs    2 * 8: forward + input gradient       = 2 passes each
    copy convs      2 * 8: forward + input + weight grads = 3 passes each
    policy convs    2 * 2: forward + input + weight grads = 3 passes each
    UAF-RL only     2 * 8 * 2 more forward passes (the greedy baseline)

so 2*16 + 3*16 + 3*4 = 92 conv passes per step (124 for UAF-RL). Frozen
blocks need no weight gradient, so counting them at 3 passes would inflate
the figure. The Finetune baselines (`step_flops`): a block that trains
costs 3 passes per conv; a frozen block costs 2 when a trained layer lies
below it (the gradient goes through) and 1 (forward only) otherwise; so
finetune-all / -zero 48, -cls 16, -last1 20, -last2 24. Other methods
(mtl, peterrec) are timed without a FLOP count.

The share is over this machine's 2048 x 2048 float32 matmul rate, measured
in the same process first (`matmul_rate.py`), not a fixed peak. The
original TF1 implementation trains about 90-100 examples/s on this
workload. `report.py` imports `benchmark`, `make_batches` and `step_flops`.
"""

import dataclasses
import itertools
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

# Run as a script: the repository root, for `launch.benchmarks`.
sys.path.insert(0, os.path.abspath(os.path.join(__file__, *[os.pardir] * 3)))
from launch.benchmarks import matmul_rate
from launch.benchmarks import pretrain_throughput
from uaf_tf import testing
from uaf_tf.data import dataset_info
from uaf_tf.data.preparation import synthetic
from uaf_tf.layers import samplers
from uaf_tf.models import finetune_baseline
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.training import finetune
from uaf_tf.training import precision as precision_lib
from uaf_tf.training import trainer

ORIGINAL_EXAMPLES_PER_SEC = "90-100"
_POLICY_BLOCKS = 2


@dataclasses.dataclass(frozen=True)
class Workload:
    """The fine-tuning step's shape (defaults: the standard workload)."""

    source_vocab: int = 20_000
    target_vocab: int = 5_000
    seq_len: int = 30
    batch_size: int = 256
    channels: int = 128
    dilations: tuple[int, ...] = (1, 4) * 4
    policy: str = "conv"
    kernel_size: int = 3
    warmup: int = 3
    steps: int = 15

    def conv_flops(self) -> int:
        """One causal conv forward, `2 B L k C^2`."""
        return (
            2 * self.batch_size * self.seq_len * self.kernel_size
            * self.channels**2
        )  # fmt: skip


def step_flops(w: Workload, method: str) -> tuple[float, int] | None:
    """(FLOPs per train step, conv passes counted), or None (not counted)."""
    num_blocks = len(w.dilations)
    if method in samplers.METHODS:
        policy_convs = 2 * _POLICY_BLOCKS if w.policy == "conv" else 0
        block_convs = 2 * num_blocks
        # Frozen: forward + input gradient; copy and policy: + weight grad.
        passes = 2 * block_convs + 3 * block_convs + 3 * policy_convs
        if method == samplers.RL:
            passes += 2 * num_blocks * 2
    elif method in finetune_baseline.METHODS:
        recipe = finetune_baseline.RECIPES[method]
        trained = recipe.trainable_blocks
        trained = num_blocks if trained is None else trained
        frozen = num_blocks - trained
        # A frozen block passes the gradient on when the embedding trains.
        frozen_passes = 1 if recipe.freeze_embedding else 2
        passes = 2 * (3 * trained + frozen_passes * frozen)
    else:
        return None
    return passes * w.conv_flops(), passes


def make_batches(w: Workload, rng_seed: int = 0, count: int = 4) -> list:
    """`count` planted fine-tuning batches of `w`, held in memory."""
    batch = w.batch_size
    data = synthetic.planted_arrays(
        batch * count,
        w.source_vocab,
        w.target_vocab,
        w.seq_len,
        targets_per_user=1,
        num_groups=min(100, w.source_vocab, w.target_vocab),
        seed=rng_seed,
    )
    rng = np.random.default_rng(rng_seed)
    target = data["target"][:, 0]
    negative = rng.integers(1, w.target_vocab, target.shape)
    negative = np.where(negative >= target, negative + 1, negative)
    # UAF-RL's reward candidates (the pipeline's `num_reward_negatives`).
    reward = rng.integers(1, w.target_vocab, (len(target), 99))
    reward = np.where(reward >= target[:, None], reward + 1, reward)

    def rows(array, i):
        return tf.constant(array[i * batch : (i + 1) * batch], tf.int32)

    return [
        {
            dataset_info.SOURCE: rows(data["source"], i),
            dataset_info.TARGET: rows(target, i),
            dataset_info.NEGATIVE: rows(negative, i),
            dataset_info.REWARD_NEGATIVES: rows(reward, i),
        }
        for i in range(count)
    ]


def build_task(
    w: Workload, method: str, precision: str | None = None, **config_kwargs
) -> finetune.FinetuneTask:
    """A `FinetuneTask` of `method` on a random backbone of `w`."""
    keras.utils.set_random_seed(0)
    with precision_lib.policy_scope(precision):
        backbone = NextItNetBackbone(
            w.source_vocab + 1, w.channels, w.dilations, w.kernel_size
        )
        backbone.build((None, w.seq_len))
        config = finetune.FinetuneConfig(
            data_dir="",
            pretrained="",
            method=method,
            policy_encoder=w.policy,
            rl_curriculum_epochs=0,
            **config_kwargs,
        )
        model = finetune.model_for_method(
            config, backbone, w.target_vocab + 1, seq_len=w.seq_len
        )
    return finetune.FinetuneTask(config, model, info=None)


# Tiny shapes for smoke runs (`--quick`, tests); their figures mean nothing.
QUICK_SHAPES = dict(
    source_vocab=60,
    target_vocab=40,
    seq_len=6,
    batch_size=8,
    channels=8,
    dilations=(1, 2),
)


def build_pipeline_data(
    out_dir: str, w: Workload, num_users: int, num_eval_negatives: int = 99
) -> str:
    """A dataset directory of `w`'s shapes on disk: `num_users` synthetic
    users in 4 TFRecord shards (`testing.build_tiny_dataset_dir`)."""
    return testing.build_tiny_dataset_dir(
        out_dir,
        num_users=num_users,
        num_source_items=w.source_vocab,
        num_target_items=w.target_vocab,
        seq_len=w.seq_len,
        num_groups=min(100, w.source_vocab, w.target_vocab),
        num_eval_negatives=num_eval_negatives,
        num_shards=4,
    )


def pipeline_task(w: Workload, data_dir: str) -> finetune.FinetuneTask:
    """A float32 UAF-Gumbel `FinetuneTask` of `w` reading `data_dir`
    through the real input pipeline (random backbone: speed only)."""
    info = dataset_info.DatasetInfo.load(data_dir)
    keras.utils.set_random_seed(0)
    with precision_lib.policy_scope(precision_lib.FLOAT32):
        backbone = NextItNetBackbone(
            info.num_source_ids, w.channels, w.dilations, w.kernel_size
        )
        backbone.build((None, info.seq_len))
        config = finetune.FinetuneConfig(
            data_dir=data_dir,
            pretrained="",
            method=samplers.GUMBEL,
            policy_encoder=w.policy,
            training=trainer.TrainingConfig(
                batch_size=w.batch_size, eval_batch_size=w.batch_size
            ),
        )
        model = finetune.model_for_method(
            config, backbone, info.num_target_ids, seq_len=info.seq_len
        )
    return finetune.FinetuneTask(config, model, info)


def time_steps(step, batches: list, warmup: int, steps: int) -> float:
    """Median seconds of `step(batch)` over `steps` after `warmup`."""
    for i in range(warmup):
        float(step(batches[i % len(batches)])["loss"])
    timed = itertools.cycle(batches)  # from the first batch again
    return matmul_rate.median_seconds(
        lambda: float(step(next(timed))["loss"]), warmup=0, repeats=steps
    )


def benchmark(
    w: Workload,
    method: str,
    jit: bool,
    batches: list,
    precision: str | None = None,
) -> dict:
    """Times `method`'s train step on `batches`; returns its figures."""
    task = build_task(w, method, precision)
    step = tf.function(task.train_step, reduce_retracing=True, jit_compile=jit)
    seconds = time_steps(step, batches, w.warmup, w.steps)
    result = {
        "method": method,
        "mode": "xla" if jit else "graph",
        "precision": precision or keras.config.dtype_policy().name,
        "step_ms": 1e3 * seconds,
        "examples_per_sec": w.batch_size / seconds,
    }
    counted = step_flops(w, method)
    if counted is not None:
        flops, passes = counted
        result.update(
            gflops_per_step=flops / 1e9,
            convs=passes,
            achieved_gflops=flops / seconds / 1e9,
        )
    return result


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines this script's flags on `flag_values`."""
    fv = {"flag_values": flag_values}
    d = Workload()
    flags.DEFINE_list(
        "methods",
        ["gumbel", "soft", "rl"],
        f"Fine-tuning methods to time, of {finetune.METHODS}.",
        **fv,
    )
    flags.DEFINE_enum(
        "jit",
        "both",
        ["both", "xla", "graph"],
        "Train-step compilation: XLA, plain tf.function graph, or both.",
        **fv,
    )
    flags.DEFINE_integer(
        "source_vocab",
        d.source_vocab,
        "Source items (table rows = +1 padding).",
        **fv,
    )
    flags.DEFINE_integer(
        "target_vocab",
        d.target_vocab,
        "Target items (table rows = +1 padding).",
        **fv,
    )
    flags.DEFINE_integer("seq_len", d.seq_len, "Sequence length L.", **fv)
    flags.DEFINE_integer("batch_size", d.batch_size, "Batch size B.", **fv)
    flags.DEFINE_integer("channels", d.channels, "C.", **fv)
    flags.DEFINE_list(
        "dilations",
        [str(x) for x in d.dilations],
        "Base dilations of the backbone blocks.",
        **fv,
    )
    flags.DEFINE_enum(
        "policy", d.policy, ["conv", "gru"], "Policy network encoder.", **fv
    )
    flags.DEFINE_enum(
        "precision",
        None,
        pretrain_throughput.PRECISIONS,
        "Keras dtype policy (default: the global policy).",
        **fv,
    )
    flags.DEFINE_integer("warmup", d.warmup, "Untimed steps.", **fv)
    flags.DEFINE_integer("steps", d.steps, "Timed steps.", **fv)


def main(argv, flag_values: flags.FlagValues = flags.FLAGS):
    del argv
    fv = flag_values
    w = Workload(
        source_vocab=fv.source_vocab,
        target_vocab=fv.target_vocab,
        seq_len=fv.seq_len,
        batch_size=fv.batch_size,
        channels=fv.channels,
        dilations=tuple(int(d) for d in fv.dilations),
        policy=fv.policy,
        warmup=fv.warmup,
        steps=fv.steps,
    )
    modes = {"both": [True, False], "xla": [True], "graph": [False]}
    num_blocks = len(w.dilations)
    peak = matmul_rate.matmul_gflops()["gflops_per_sec"]
    print(
        f"workload: source V={w.source_vocab} target T={w.target_vocab} "
        f"L={w.seq_len} B={w.batch_size} C={w.channels} "
        f"dilations={','.join(map(str, w.dilations))} policy={w.policy} "
        f"precision={fv.precision}"
    )
    print(
        f"one conv forward = 2*B*L*k*C^2 = {w.conv_flops() / 1e9:.3f} GFLOP;"
        f" UAF step = 2 passes x 2*{num_blocks} frozen + 3 passes x "
        f"2*{num_blocks} copy + 3 passes x 2*{_POLICY_BLOCKS} policy convs "
        f"(+ 2*{num_blocks}*2 greedy forward passes for rl); 2048^2 fp32 "
        f"matmul (this run) {peak:.0f} GFLOP/s; original TF1 "
        f"~{ORIGINAL_EXAMPLES_PER_SEC} ex/s"
    )
    print(
        "threads: intra "
        f"{tf.config.threading.get_intra_op_parallelism_threads()} inter "
        f"{tf.config.threading.get_inter_op_parallelism_threads()}; "
        f"median of {w.steps} steps after {w.warmup} warm-up"
    )
    batches = make_batches(w)
    for method in fv.methods:
        for jit in modes[fv.jit]:
            r = benchmark(w, method, jit, batches, fv.precision)
            line = (
                f"{r['method']:>14} {r['mode']:>5}: {r['step_ms']:7.1f} "
                f"ms/step  {r['examples_per_sec']:6.1f} ex/s"
            )
            if "achieved_gflops" in r:
                line += (
                    f"  {r['gflops_per_step']:5.1f} GFLOP/step "
                    f"({r['convs']} conv passes)  "
                    f"{r['achieved_gflops']:6.1f} GFLOP/s  "
                    f"{100 * r['achieved_gflops'] / peak:5.1f}% of matmul"
                )
            print(line, flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
