r"""How fast the causal dilated convolutions train, per formulation and
compilation (prints figures; not a test).

    python launch/benchmarks/conv_formulations.py [--rounds=3]

Times forward + backward (input and weight gradients) of the standard
workload's convolutions alone: 16 causal convolutions of `[B, L, C] =
[256, 30, 128]`, k = 3, in 8 residual pairs with dilations 1, 2, 4, 8 and
twice that (ReLU between, the residual sum kept), in three formulations
that compute the same numbers (checked to 1e-3 before timing):

- `conv1d`: `tf.nn.conv1d` with `dilations=d` on the left-padded input,
  what `CausalDilatedConv1D` runs;
- `taps_concat`: the k shifted taps concatenated to `[B L, k C]`, one
  `[B L, k C] x [k C, C]` product;
- `product_then_shift`: one `[B L, C] x [C, k C]` product, then each
  C-slice shifted down by its tap's offset and summed.

Each in a plain `tf.function` graph (on CPU the convolution is oneDNN's)
and XLA-compiled (`jit_compile=True`: XLA's own dot and convolution
emitters), in `--rounds` rounds that each time every variant once, so
they share the machine's load. Prints each variant's median step time and
GFLOP/s, and its share of the 2048 x 2048 float32 matmul rate measured
first in the same process (`matmul_rate.py`). FLOPs: 3 passes of
`2 B L k C^2` per convolution.
"""

import os
import statistics
import sys
import time

import tensorflow as tf
from absl import app
from absl import flags

# Run as a script: the repository root, for `launch.benchmarks`.
sys.path.insert(0, os.path.abspath(os.path.join(__file__, *[os.pardir] * 3)))
from launch.benchmarks import matmul_rate

BATCH, SEQ_LEN, CHANNELS, KERNEL = 256, 30, 128, 3
DILATIONS = (1, 2, 4, 8) * 2  # base dilations of the 8 pairs


def conv1d(x, kernel, d):
    """`[B, L, C] -> [B, L, C]`, `kernel` `[k, C, C]`: oneDNN / XLA conv."""
    k = kernel.shape[0]
    padded = tf.pad(x, [[0, 0], [(k - 1) * d, 0], [0, 0]])
    return tf.nn.conv1d(padded, kernel, 1, "VALID", dilations=d)


def taps_concat(x, kernel, d):
    """The same, as one `[B L, k C] x [k C, C]` product."""
    k, c_in, c_out = kernel.shape
    b, length = x.shape[0], x.shape[1]
    padded = tf.pad(x, [[0, 0], [(k - 1) * d, 0], [0, 0]])
    taps = tf.concat(
        [padded[:, j * d : j * d + length] for j in range(k)], axis=-1
    )  # [B, L, k C]
    out = tf.reshape(taps, [-1, k * c_in]) @ tf.reshape(kernel, [-1, c_out])
    return tf.reshape(out, [b, length, c_out])


def product_then_shift(x, kernel, d):
    """The same, as one `[B L, C] x [C, k C]` product and shifted sums."""
    k, c_in, c_out = kernel.shape
    b, length = x.shape[0], x.shape[1]
    wide = tf.reshape(tf.transpose(kernel, [1, 0, 2]), [c_in, k * c_out])
    z = tf.reshape(tf.reshape(x, [-1, c_in]) @ wide, [b, length, k * c_out])
    out = z[:, :, (k - 1) * c_out :]  # the last tap: offset 0
    for j in range(k - 1):
        shift = (k - 1 - j) * d  # tap j sees position t - shift
        if shift >= length:
            continue
        tap = z[:, : length - shift, j * c_out : (j + 1) * c_out]
        out += tf.pad(tap, [[0, 0], [shift, 0], [0, 0]])
    return out


FORMULATIONS = {
    "conv1d": conv1d,
    "taps_concat": taps_concat,
    "product_then_shift": product_then_shift,
}


def step_flops() -> float:
    """Forward + both gradients of every convolution: 3 passes each."""
    conv = 2 * BATCH * SEQ_LEN * KERNEL * CHANNELS**2
    return 3 * conv * 2 * len(DILATIONS)


def make_step(formulation, kernels, jit: bool, dilations=DILATIONS):
    """One forward + backward over residual pairs of base `dilations`
    (`2 len(dilations)` kernels)."""

    @tf.function(jit_compile=jit)
    def step(x):
        with tf.GradientTape() as tape:
            h = x
            for i, d in enumerate(dilations):
                r = tf.nn.relu(formulation(h, kernels[2 * i], d))
                r = tf.nn.relu(formulation(r, kernels[2 * i + 1], 2 * d))
                h = h + r
            loss = tf.reduce_sum(h * h)
        return loss, tape.gradient(loss, kernels)

    return step


def check_formulations(rng: tf.random.Generator) -> float:
    """Largest |difference| from `conv1d` over the formulations and
    dilations used; raises if one computes something else."""
    x = rng.normal([BATCH, SEQ_LEN, CHANNELS])
    kernel = rng.normal([KERNEL, CHANNELS, CHANNELS], stddev=0.05)
    worst = 0.0
    for d in sorted({*DILATIONS, *(2 * d for d in DILATIONS)}):
        want = conv1d(x, kernel, d)
        for name, f in FORMULATIONS.items():
            diff = float(tf.reduce_max(tf.abs(f(x, kernel, d) - want)))
            if diff > 1e-3:
                raise AssertionError(f"{name} differs by {diff} at d={d}")
            worst = max(worst, diff)
    return worst


def time_step(step, x, warmup: int, steps: int) -> float:
    """Median seconds of `steps` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        step(x)[0].numpy()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(x)[0].numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv):
    del argv
    fv = flags.FLAGS
    rng = tf.random.Generator.from_seed(0)
    print(f"formulations agree to {check_formulations(rng):.1e}")
    matmul = matmul_rate.matmul_gflops()["gflops_per_sec"]
    x = rng.normal([BATCH, SEQ_LEN, CHANNELS])
    kernels = [
        tf.Variable(rng.normal([KERNEL, CHANNELS, CHANNELS], stddev=0.02))
        for _ in range(2 * len(DILATIONS))
    ]
    steps = {
        (name, jit): make_step(f, kernels, jit)
        for name, f in FORMULATIONS.items()
        for jit in (False, True)
    }
    seconds = {key: [] for key in steps}
    for r in range(fv.rounds):
        for (name, jit), step in steps.items():
            s = time_step(step, x, fv.warmup, fv.steps)
            seconds[(name, jit)].append(s)
            mode = "xla" if jit else "graph"
            print(f"round {r}: {mode} {name}: {1e3 * s:.1f} ms", flush=True)
    flops = step_flops()
    print(
        f"\n{2 * len(DILATIONS)} convs of [{BATCH}, {SEQ_LEN}, {CHANNELS}], "
        f"k={KERNEL}, forward + backward: {flops / 1e9:.1f} GFLOP a step; "
        f"2048 x 2048 float32 matmul {matmul:.1f} GFLOP/s (this run)"
    )
    for (name, jit), values in seconds.items():
        s = statistics.median(values)
        print(
            f"  {'xla' if jit else 'graph':5s} {name:18s} {1e3 * s:7.1f} ms "
            f"{flops / s / 1e9:6.1f} GFLOP/s {flops / s / 1e9 / matmul:6.1%}"
        )


if __name__ == "__main__":
    flags.DEFINE_integer("rounds", 3, "Rounds; each times every variant.")
    flags.DEFINE_integer("steps", 10, "Timed steps per variant and round.")
    flags.DEFINE_integer("warmup", 3, "Untimed steps per variant and round.")
    app.run(main)
