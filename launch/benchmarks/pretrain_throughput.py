r"""Throughput of the pretraining train step (not a test; prints figures).

    python launch/benchmarks/pretrain_throughput.py            # both modes
    python launch/benchmarks/pretrain_throughput.py --jit=xla --pieces
    python launch/benchmarks/pretrain_throughput.py --num_sampled=1024 \
        --precision=mixed_bfloat16

Standard workload: source vocabulary V = 20,000, L = 30, B = 256, C = 128,
base dilations [1, 4] * 4 (16 convs, k = 3), full softmax, no padding, Adam.
It times `PretrainTask.train_step` exactly as the trainer runs it (one
`tf.function`, optionally XLA), after warm-up steps, and reports the median.

FLOPs are counted analytically for the P = B (L - 1) predicted positions
(the context is the first L - 1 items; the embedding lookup is free):

    forward  = 16 * 2 P k C^2   (convs)  +  2 P C V   (softmax head)
    step     = 3 * forward      (backward ~ 2x forward)

With sampled softmax (`--num_sampled=N`) the head scores N + 1 classes per
position: `2 P C (N + 1)`.

The share of peak is over this machine's 2048 x 2048 float32 matmul rate,
measured in the same process first (`matmul_rate.py`), not a fixed figure.
`report.py` imports `benchmark` and `step_flops`.
"""

import dataclasses
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
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.sequence_pretrainer import SequencePretrainer
from uaf_tf.training import precision as precision_lib
from uaf_tf.training import pretrain

FLOAT32 = precision_lib.FLOAT32
PRECISIONS = precision_lib.PRECISIONS


@dataclasses.dataclass(frozen=True)
class Workload:
    """The pretraining step's shape (defaults: the standard workload)."""

    vocab: int = 20_000
    seq_len: int = 30
    batch_size: int = 256
    channels: int = 128
    dilations: tuple[int, ...] = (1, 4) * 4
    pad_fraction: float = 0.0
    num_sampled: int = 0
    kernel_size: int = 3
    warmup: int = 3
    steps: int = 10


# Tiny shapes for smoke runs (`--quick`, tests); their figures mean nothing.
QUICK_SHAPES = dict(
    vocab=60, seq_len=6, batch_size=8, channels=8, dilations=(1, 2)
)


def step_flops(w: Workload) -> tuple[float, float, float]:
    """(step FLOPs, conv forward FLOPs, head forward FLOPs) of `w`."""
    positions = w.batch_size * (w.seq_len - 1)
    num_convs = 2 * len(w.dilations)
    conv = num_convs * 2 * positions * w.kernel_size * w.channels**2
    classes = w.num_sampled + 1 if w.num_sampled else w.vocab
    head = 2 * positions * w.channels * classes
    return 3 * (conv + head), conv, head


def time_median(fn, *args, warmup: int, steps: int) -> float:
    """Median seconds of `fn(*args)` (outputs fetched) after warm-up."""
    return matmul_rate.median_seconds(
        lambda: tf.nest.map_structure(lambda t: t.numpy(), fn(*args)),
        warmup=warmup,
        repeats=steps,
    )


def make_batch(w: Workload, rng) -> dict:
    ids = rng.integers(1, w.vocab, size=(w.batch_size, w.seq_len))
    ids = ids.astype("int32")
    pad = int(round(w.pad_fraction * w.seq_len))
    ids[:, :pad] = 0
    return {"source": tf.constant(ids)}


def build_task(w: Workload, precision: str | None = None):
    """A `PretrainTask` on a fresh random model of `w` in `precision`."""
    keras.utils.set_random_seed(0)
    with precision_lib.policy_scope(precision):
        backbone = NextItNetBackbone(w.vocab, w.channels, dilations=w.dilations)
        model = SequencePretrainer(
            backbone, num_items=w.vocab, num_sampled=w.num_sampled
        )
        model.build((None, w.seq_len))
    return pretrain.PretrainTask(model, None, None, learning_rate=1e-4)


def benchmark(
    w: Workload,
    jit: bool,
    precision: str | None = None,
    pieces: bool = False,
) -> dict:
    """Times the train step of `w`; returns its figures (see main)."""
    task = build_task(w, precision)
    step = tf.function(task.train_step, reduce_retracing=True, jit_compile=jit)
    batch = make_batch(w, np.random.default_rng(0))
    seconds = time_median(step, batch, warmup=w.warmup, steps=w.steps)
    flops, conv, head = step_flops(w)
    kept = 1.0 - w.pad_fraction
    result = {
        "mode": "xla" if jit else "graph",
        "precision": precision or keras.config.dtype_policy().name,
        "step_ms": 1e3 * seconds,
        "examples_per_sec": w.batch_size / seconds,
        "gflops_per_step": flops / 1e9,
        "achieved_gflops": flops / seconds / 1e9,
        # With padding the head runs on non-padding rows only.
        "useful_gflops": 3 * (conv + kept * head) / seconds / 1e9,
    }
    if pieces:
        result.update(_pieces(w, task.model, batch, jit, conv, head))
    return result


def _pieces(w, model, batch, jit, conv_flops, head_flops):
    """Forward+backward of the backbone alone and of the head alone."""
    ids = batch["source"]
    context = ids[:, :-1]
    channels = model.backbone.channels

    # Every gradient is returned (summed): an unused one would be pruned
    # from the graph and its FLOPs not spent.
    def backbone_step():
        with tf.GradientTape() as tape:
            out = tf.reduce_sum(model.backbone(context, training=True))
        grads = tape.gradient(out, model.backbone.trainable_variables)
        return tf.add_n([tf.reduce_sum(tf.convert_to_tensor(g)) for g in grads])

    features = tf.nn.relu(
        tf.random.normal([context.shape[0] * context.shape[1], channels])
    )
    labels = tf.reshape(ids[:, 1:], [-1])

    def head_step():
        with tf.GradientTape() as tape:
            tape.watch(features)
            logits = model._logits(features)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            )
        grads = tape.gradient(
            loss, [features, model.output_kernel, model.output_bias]
        )
        return tf.add_n([tf.reduce_sum(g) for g in grads])

    def logits_only():
        return tf.reduce_sum(model._logits(features))

    out = {}
    for name, fn, flops in [
        ("backbone_fwd_bwd", backbone_step, 3 * conv_flops),
        ("head_fwd_bwd", head_step, 3 * head_flops),
        ("head_matmul_fwd", logits_only, head_flops),
    ]:
        seconds = time_median(
            tf.function(fn, jit_compile=jit), warmup=w.warmup, steps=w.steps
        )
        out[f"{name}_ms"] = 1e3 * seconds
        out[f"{name}_gflops"] = flops / seconds / 1e9
    return out


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines this script's flags on `flag_values`."""
    fv = {"flag_values": flag_values}
    d = Workload()
    flags.DEFINE_enum(
        "jit",
        "both",
        ["both", "xla", "graph"],
        "Train-step compilation: XLA, plain tf.function graph, or both.",
        **fv,
    )
    flags.DEFINE_integer("vocab", d.vocab, "Source vocabulary V.", **fv)
    flags.DEFINE_integer("seq_len", d.seq_len, "Sequence length L.", **fv)
    flags.DEFINE_integer("batch_size", d.batch_size, "Batch size B.", **fv)
    flags.DEFINE_integer("channels", d.channels, "C.", **fv)
    flags.DEFINE_list(
        "dilations",
        [str(x) for x in d.dilations],
        "Base dilations of the blocks.",
        **fv,
    )
    flags.DEFINE_float(
        "pad_fraction",
        0.0,
        "Fraction of each sequence that is left padding "
        "(0 = the standard workload).",
        **fv,
    )
    flags.DEFINE_integer(
        "num_sampled", 0, "Sampled-softmax classes (0 = full softmax).", **fv
    )
    flags.DEFINE_enum(
        "precision",
        None,
        PRECISIONS,
        "Keras dtype policy (default: the global policy).",
        **fv,
    )
    flags.DEFINE_integer("warmup", d.warmup, "Untimed steps.", **fv)
    flags.DEFINE_integer("steps", d.steps, "Timed steps.", **fv)
    flags.DEFINE_bool(
        "deterministic",
        False,
        "Call tf.config.experimental.enable_op_determinism() first.",
        **fv,
    )
    flags.DEFINE_bool(
        "pieces",
        False,
        "Also time the backbone and the softmax head alone.",
        **fv,
    )


def workload_from_flags(fv) -> Workload:
    return Workload(
        vocab=fv.vocab,
        seq_len=fv.seq_len,
        batch_size=fv.batch_size,
        channels=fv.channels,
        dilations=tuple(int(d) for d in fv.dilations),
        pad_fraction=fv.pad_fraction,
        num_sampled=fv.num_sampled,
        warmup=fv.warmup,
        steps=fv.steps,
    )


def main(argv, flag_values: flags.FlagValues = flags.FLAGS):
    del argv
    fv = flag_values
    if fv.deterministic:
        tf.config.experimental.enable_op_determinism()
    w = workload_from_flags(fv)
    modes = {"both": [True, False], "xla": [True], "graph": [False]}
    flops, conv, head = step_flops(w)
    peak = matmul_rate.matmul_gflops()["gflops_per_sec"]
    print(
        f"workload: V={w.vocab} L={w.seq_len} B={w.batch_size} "
        f"C={w.channels} dilations={','.join(map(str, w.dilations))} "
        f"pad_fraction={w.pad_fraction} num_sampled={w.num_sampled} "
        f"precision={fv.precision} op_determinism={fv.deterministic}"
    )
    print(
        "FLOPs/step = 3 * (convs 16*2*B*(L-1)*k*C^2 + head 2*B*(L-1)*C*V) "
        f"= 3 * ({conv / 1e9:.2f} + {head / 1e9:.2f}) GFLOP "
        f"= {flops / 1e9:.1f} GFLOP; 2048^2 fp32 matmul (this run) "
        f"{peak:.0f} GFLOP/s"
    )
    for jit in modes[fv.jit]:
        load_before = os.getloadavg()[0]
        r = benchmark(w, jit, fv.precision, fv.pieces)
        print(
            f"{r['mode']:>5}: {r['step_ms']:7.1f} ms/step  "
            f"{r['examples_per_sec']:6.1f} ex/s  "
            f"{r['achieved_gflops']:6.1f} GFLOP/s  "
            f"{100 * r['achieved_gflops'] / peak:5.1f}% of matmul"
            + (
                f"  (useful {r['useful_gflops']:.1f} GFLOP/s)"
                if w.pad_fraction
                else ""
            )
            # Other processes on the 2 cores skew the figures: check load.
            + f"  [load avg {load_before:.2f} -> {os.getloadavg()[0]:.2f}]"
        )
        for key in sorted(r):
            if key.endswith("_ms") and key != "step_ms":
                name = key[:-3]
                print(
                    f"       {name:<18} {r[key]:7.1f} ms  "
                    f"{r[name + '_gflops']:6.1f} GFLOP/s"
                )


if __name__ == "__main__":
    define_flags()
    app.run(main)
