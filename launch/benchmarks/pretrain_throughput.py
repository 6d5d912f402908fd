r"""Throughput of the pretraining train step (not a test; prints figures).

    python launch/benchmarks/pretrain_throughput.py            # both modes
    python launch/benchmarks/pretrain_throughput.py --jit=xla --pieces

Standard workload: source vocabulary V = 20,000, L = 30, B = 256, C = 128,
base dilations [1, 4] * 4 (16 convs, k = 3), full softmax, no padding, Adam.
It times `PretrainTask.train_step` exactly as the trainer runs it (one
`tf.function`, optionally XLA), after warm-up steps, and reports the median.

FLOPs are counted analytically for the P = B (L - 1) predicted positions
(the context is the first L - 1 items; the embedding lookup is free):

    forward  = 16 * 2 P k C^2   (convs)  +  2 P C V   (softmax head)
    step     = 3 * forward      (backward ~ 2x forward)

Peak: 470 GFLOP/s fp32 for this 2-core machine (given).
"""

import os
import statistics
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.sequence_pretrainer import SequencePretrainer
from uaf_tf.training import pretrain

PEAK_GFLOPS = 470.0

_JIT = flags.DEFINE_enum(
    "jit",
    "both",
    ["both", "xla", "graph"],
    "Train-step compilation: XLA, plain tf.function graph, or both.",
)
_VOCAB = flags.DEFINE_integer("vocab", 20_000, "Source vocabulary V.")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 30, "Sequence length L.")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Batch size B.")
_CHANNELS = flags.DEFINE_integer("channels", 128, "C.")
_DILATIONS = flags.DEFINE_list(
    "dilations", ["1", "4"] * 4, "Base dilations of the blocks."
)
_PAD_FRACTION = flags.DEFINE_float(
    "pad_fraction",
    0.0,
    "Fraction of each sequence that is left padding "
    "(0 = the standard workload).",
)
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps.")
_DETERMINISTIC = flags.DEFINE_bool(
    "deterministic",
    False,
    "Call tf.config.experimental.enable_op_determinism() first.",
)
_PIECES = flags.DEFINE_bool(
    "pieces", False, "Also time the backbone and the softmax head alone."
)


def step_flops(batch, seq_len, channels, vocab, num_convs, kernel_size=3):
    positions = batch * (seq_len - 1)
    conv = num_convs * 2 * positions * kernel_size * channels * channels
    head = 2 * positions * channels * vocab
    return 3 * (conv + head), conv, head


def _time(fn, *args):
    for _ in range(_WARMUP.value):
        tf.nest.map_structure(lambda t: t.numpy(), fn(*args))
    times = []
    for _ in range(_STEPS.value):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _batch(rng):
    batch, length, vocab = _BATCH.value, _SEQ_LEN.value, _VOCAB.value
    ids = rng.integers(1, vocab, size=(batch, length)).astype("int32")
    pad = int(round(_PAD_FRACTION.value * length))
    ids[:, :pad] = 0
    return {"source": tf.constant(ids)}


def benchmark(jit: bool) -> dict:
    keras.utils.set_random_seed(0)
    dilations = tuple(int(d) for d in _DILATIONS.value)
    backbone = NextItNetBackbone(
        _VOCAB.value, _CHANNELS.value, dilations=dilations
    )
    model = SequencePretrainer(backbone, num_items=_VOCAB.value)
    model.build((None, _SEQ_LEN.value))
    task = pretrain.PretrainTask(model, None, None, learning_rate=1e-4)
    step = tf.function(task.train_step, reduce_retracing=True, jit_compile=jit)
    batch = _batch(np.random.default_rng(0))
    seconds = _time(step, batch)
    flops, conv, head = step_flops(
        _BATCH.value,
        _SEQ_LEN.value,
        _CHANNELS.value,
        _VOCAB.value,
        2 * len(dilations),
    )
    kept = 1.0 - _PAD_FRACTION.value
    result = {
        "mode": "xla" if jit else "graph",
        "step_ms": 1e3 * seconds,
        "examples_per_sec": _BATCH.value / seconds,
        "gflops_per_step": flops / 1e9,
        "achieved_gflops": flops / seconds / 1e9,
        # With padding the head runs on non-padding rows only.
        "useful_gflops": 3 * (conv + kept * head) / seconds / 1e9,
    }
    if _PIECES.value:
        result.update(_pieces(model, batch, jit, conv, head))
    return result


def _pieces(model, batch, jit, conv_flops, head_flops):
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
        seconds = _time(tf.function(fn, jit_compile=jit))
        out[f"{name}_ms"] = 1e3 * seconds
        out[f"{name}_gflops"] = flops / seconds / 1e9
    return out


def main(argv):
    del argv
    if _DETERMINISTIC.value:
        tf.config.experimental.enable_op_determinism()
    modes = {"both": [True, False], "xla": [True], "graph": [False]}
    flops, conv, head = step_flops(
        _BATCH.value,
        _SEQ_LEN.value,
        _CHANNELS.value,
        _VOCAB.value,
        2 * len(_DILATIONS.value),
    )
    print(
        f"workload: V={_VOCAB.value} L={_SEQ_LEN.value} B={_BATCH.value} "
        f"C={_CHANNELS.value} dilations={','.join(_DILATIONS.value)} "
        f"pad_fraction={_PAD_FRACTION.value} "
        f"op_determinism={_DETERMINISTIC.value}"
    )
    print(
        "FLOPs/step = 3 * (convs 16*2*B*(L-1)*k*C^2 + head 2*B*(L-1)*C*V) "
        f"= 3 * ({conv / 1e9:.2f} + {head / 1e9:.2f}) GFLOP "
        f"= {flops / 1e9:.1f} GFLOP; peak {PEAK_GFLOPS:.0f} GFLOP/s"
    )
    for jit in modes[_JIT.value]:
        load_before = os.getloadavg()[0]
        r = benchmark(jit)
        print(
            f"{r['mode']:>5}: {r['step_ms']:7.1f} ms/step  "
            f"{r['examples_per_sec']:6.1f} ex/s  "
            f"{r['achieved_gflops']:6.1f} GFLOP/s  "
            f"{100 * r['achieved_gflops'] / PEAK_GFLOPS:5.1f}% of peak"
            + (
                f"  (useful {r['useful_gflops']:.1f} GFLOP/s)"
                if _PAD_FRACTION.value
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
    app.run(main)
