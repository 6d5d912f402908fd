r"""Throughput of the UAF fine-tuning train step (not a test; prints figures).

    python launch/benchmarks/finetune_throughput.py                  # all
    python launch/benchmarks/finetune_throughput.py --methods=rl --jit=xla

Standard workload: source vocabulary 20,000, target vocabulary 5,000, L = 30,
B = 256, C = 128, backbone base dilations [1, 4] * 4 (8 blocks, 16 convs,
k = 3), conv policy network (2 blocks), BPR, Adam. Batches are planted
synthetic data
(`uaf_tf.data.preparation.synthetic.planted_arrays`) held in memory, so
this times `FinetuneTask.train_step` exactly as the trainer runs it (one
`tf.function`, optionally XLA) without the input pipeline; median over
`--steps` after `--warmup` untimed steps. UAF-RL is timed with the policy
gradient on (after its curriculum).

FLOPs are counted analytically for the convolutions only (embedding lookups,
layer norms, the dense policy head and the B x 2 / B x 100 scoring products
are < 1% and ignored). One causal conv forward is `2 B L k C^2`. Per step:

    frozen convs    2 * 8: forward + input gradient       = 2 passes each
    copy convs      2 * 8: forward + input + weight grads = 3 passes each
    policy convs    2 * 2: forward + input + weight grads = 3 passes each
    UAF-RL only     2 * 8 * 2 more forward passes (the greedy baseline)

so 2*16 + 3*16 + 3*4 = 92 conv passes per step (124 for UAF-RL). Frozen
blocks need no weight gradient, so counting them at 3 passes would inflate
the figure.

Peak: 470 GFLOP/s fp32 for this 2-core machine (given). The original TF1
implementation trains about 90-100 examples/s on this workload.
"""

import statistics
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from uaf_tf.data import dataset_info
from uaf_tf.data.preparation import synthetic
from uaf_tf.layers import samplers
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.uaf_recommender import UAFRecommender
from uaf_tf.training import finetune

PEAK_GFLOPS = 470.0
ORIGINAL_EXAMPLES_PER_SEC = "90-100"

_METHODS = flags.DEFINE_list(
    "methods", ["gumbel", "soft", "rl"], "UAF methods to time."
)
_JIT = flags.DEFINE_enum(
    "jit",
    "both",
    ["both", "xla", "graph"],
    "Train-step compilation: XLA, plain tf.function graph, or both.",
)
_SOURCE_VOCAB = flags.DEFINE_integer(
    "source_vocab", 20_000, "Source items (table rows = +1 padding)."
)
_TARGET_VOCAB = flags.DEFINE_integer(
    "target_vocab", 5_000, "Target items (table rows = +1 padding)."
)
_SEQ_LEN = flags.DEFINE_integer("seq_len", 30, "Sequence length L.")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Batch size B.")
_CHANNELS = flags.DEFINE_integer("channels", 128, "C.")
_DILATIONS = flags.DEFINE_list(
    "dilations", ["1", "4"] * 4, "Base dilations of the backbone blocks."
)
_POLICY = flags.DEFINE_enum(
    "policy", "conv", ["conv", "gru"], "Policy network encoder."
)
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps.")
_STEPS = flags.DEFINE_integer("steps", 15, "Timed steps.")
_KERNEL = 3
_POLICY_BLOCKS = 2


def step_flops(method: str, num_blocks: int) -> tuple[float, int]:
    """(FLOPs per train step, convolutions counted) of the workload."""
    conv = 2 * _BATCH.value * _SEQ_LEN.value * _KERNEL * _CHANNELS.value**2
    policy_convs = 2 * _POLICY_BLOCKS if _POLICY.value == "conv" else 0
    block_convs = 2 * num_blocks
    # Frozen: forward + input gradient; copy and policy: + weight gradient.
    convs = 2 * block_convs + 3 * block_convs + 3 * policy_convs
    if method == samplers.RL:
        convs += 2 * num_blocks * 2
    return convs * conv, convs


def _batches(rng_seed: int = 0, count: int = 4) -> list[dict]:
    batch = _BATCH.value
    data = synthetic.planted_arrays(
        batch * count,
        _SOURCE_VOCAB.value,
        _TARGET_VOCAB.value,
        _SEQ_LEN.value,
        targets_per_user=1,
        num_groups=100,
        seed=rng_seed,
    )
    rng = np.random.default_rng(rng_seed)
    target = data["target"][:, 0]
    negative = rng.integers(1, _TARGET_VOCAB.value, target.shape)
    negative = np.where(negative >= target, negative + 1, negative)
    # UAF-RL's reward candidates (the pipeline's `num_reward_negatives`).
    reward = rng.integers(1, _TARGET_VOCAB.value, (len(target), 99))
    reward = np.where(reward >= target[:, None], reward + 1, reward)
    return [
        {
            dataset_info.SOURCE: tf.constant(
                data["source"][i * batch : (i + 1) * batch], tf.int32
            ),
            dataset_info.TARGET: tf.constant(
                target[i * batch : (i + 1) * batch], tf.int32
            ),
            dataset_info.NEGATIVE: tf.constant(
                negative[i * batch : (i + 1) * batch], tf.int32
            ),
            dataset_info.REWARD_NEGATIVES: tf.constant(
                reward[i * batch : (i + 1) * batch], tf.int32
            ),
        }
        for i in range(count)
    ]


def benchmark(method: str, jit: bool, batches: list[dict]) -> dict:
    keras.utils.set_random_seed(0)
    dilations = tuple(int(d) for d in _DILATIONS.value)
    backbone = NextItNetBackbone(
        _SOURCE_VOCAB.value + 1, _CHANNELS.value, dilations, _KERNEL
    )
    backbone.build((None, _SEQ_LEN.value))
    config = finetune.FinetuneConfig(
        data_dir="",
        pretrained="",
        method=method,
        policy_encoder=_POLICY.value,
        rl_curriculum_epochs=0,
    )
    model = UAFRecommender.from_pretrained(
        backbone,
        _TARGET_VOCAB.value + 1,
        seq_len=_SEQ_LEN.value,
        **config.model_kwargs(),
    )
    task = finetune.FinetuneTask(config, model, info=None)
    step = tf.function(task.train_step, reduce_retracing=True, jit_compile=jit)
    for i in range(_WARMUP.value):
        float(step(batches[i % len(batches)])["loss"])
    times = []
    for i in range(_STEPS.value):
        start = time.perf_counter()
        float(step(batches[i % len(batches)])["loss"])
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    flops, convs = step_flops(method, len(dilations))
    return {
        "method": method,
        "mode": "xla" if jit else "graph",
        "step_ms": 1e3 * seconds,
        "examples_per_sec": _BATCH.value / seconds,
        "gflops_per_step": flops / 1e9,
        "convs": convs,
        "achieved_gflops": flops / seconds / 1e9,
    }


def main(argv):
    del argv
    modes = {"both": [True, False], "xla": [True], "graph": [False]}
    num_blocks = len(_DILATIONS.value)
    print(
        f"workload: source V={_SOURCE_VOCAB.value} target T="
        f"{_TARGET_VOCAB.value} L={_SEQ_LEN.value} B={_BATCH.value} "
        f"C={_CHANNELS.value} dilations={','.join(_DILATIONS.value)} "
        f"policy={_POLICY.value}"
    )
    conv = 2 * _BATCH.value * _SEQ_LEN.value * _KERNEL * _CHANNELS.value**2
    print(
        f"one conv forward = 2*B*L*k*C^2 = {conv / 1e9:.3f} GFLOP; step = "
        f"2 passes x 2*{num_blocks} frozen + 3 passes x 2*{num_blocks} copy "
        f"+ 3 passes x 2*{_POLICY_BLOCKS} policy convs (+ 2*{num_blocks}*2 "
        "greedy forward passes for rl); "
        f"peak {PEAK_GFLOPS:.0f} GFLOP/s; original TF1 "
        f"~{ORIGINAL_EXAMPLES_PER_SEC} ex/s"
    )
    print(
        "threads: intra "
        f"{tf.config.threading.get_intra_op_parallelism_threads()} inter "
        f"{tf.config.threading.get_inter_op_parallelism_threads()}; "
        f"median of {_STEPS.value} steps after {_WARMUP.value} warm-up"
    )
    batches = _batches()
    for method in _METHODS.value:
        for jit in modes[_JIT.value]:
            r = benchmark(method, jit, batches)
            print(
                f"{r['method']:>6} {r['mode']:>5}: {r['step_ms']:7.1f} ms/step"
                f"  {r['examples_per_sec']:6.1f} ex/s  "
                f"{r['gflops_per_step']:5.1f} GFLOP/step ({r['convs']} convs)"
                f"  {r['achieved_gflops']:6.1f} GFLOP/s  "
                f"{100 * r['achieved_gflops'] / PEAK_GFLOPS:5.1f}% of peak",
                flush=True,
            )


if __name__ == "__main__":
    app.run(main)
