r"""The matmul rate a train step's own GEMM shapes reach (prints figures).

    python launch/benchmarks/gemm_ceiling.py

The step benchmarks report a share of the 2048 x 2048 float32 matmul rate
(`matmul_rate.py`). A train step cannot run its arithmetic faster than the
same arithmetic done as bare GEMMs of the step's own shapes, and those
shapes are thin: a causal convolution is `[P, k C] x [k C, C]` with
C = 128, and the softmax head multiplies through a 128-wide inner
dimension. This script times each GEMM a step does (forward, input
gradient, weight gradient), median of `repeats` calls, and sums them with
the count the step does them:

    ceiling GFLOP/s = sum(count * FLOPs) / sum(count * seconds)

That is the rate of the step's counted FLOPs with no other work (no
softmax, layer norm, gather, optimizer update), on this machine now. Its
share of the square matmul rate bounds what `share_of_matmul` a step of
these shapes can reach.

`report.py` imports `pretrain_gemms`, `finetune_gemms` and `ceiling`.
"""

import dataclasses
import os
import sys

import tensorflow as tf
from absl import app

# Run as a script: the repository root, for `launch.benchmarks`.
sys.path.insert(0, os.path.abspath(os.path.join(__file__, *[os.pardir] * 3)))
from launch.benchmarks import finetune_throughput as ft
from launch.benchmarks import matmul_rate
from launch.benchmarks import pretrain_throughput as pt
from uaf_tf.layers import samplers


@dataclasses.dataclass(frozen=True)
class Gemm:
    """`count` products of an `[m, k]` by a `[k, n]` matrix in a step."""

    name: str
    m: int
    k: int
    n: int
    count: int

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n


def _linear_gemms(name: str, rows: int, fan_in: int, fan_out: int, passes):
    """The GEMMs of `y [rows, fan_out] = x [rows, fan_in] W`: `passes` is
    `(forward, input gradient, weight gradient)` counts."""
    forward, input_grad, weight_grad = passes
    return [
        Gemm(f"{name}_fwd", rows, fan_in, fan_out, forward),
        Gemm(f"{name}_dx", rows, fan_out, fan_in, input_grad),
        Gemm(f"{name}_dw", fan_in, rows, fan_out, weight_grad),
    ]


def pretrain_gemms(w: pt.Workload) -> list[Gemm]:
    """A pretraining step's GEMMs: the P = B (L - 1) positions through
    every convolution and the head (`pt.step_flops` counts the same)."""
    positions = w.batch_size * (w.seq_len - 1)
    convs = 2 * len(w.dilations)
    classes = w.num_sampled + 1 if w.num_sampled else w.vocab
    return [
        *_linear_gemms(
            "conv",
            positions,
            w.kernel_size * w.channels,
            w.channels,
            (convs, convs, convs),
        ),
        *_linear_gemms("head", positions, w.channels, classes, (1, 1, 1)),
    ]


def finetune_gemms(w: ft.Workload, method: str) -> list[Gemm]:
    """A UAF step's convolution GEMMs (`ft.step_flops`' passes): a frozen
    block's forward and input gradient, a fine-tuned copy's and the policy
    network's forward and both gradients, and UAF-RL's extra forward
    passes (greedy and sampled)."""
    if method not in samplers.METHODS:
        raise ValueError(f"Not a UAF method: {method!r}")
    block_convs = 2 * len(w.dilations)
    policy_convs = 2 * ft._POLICY_BLOCKS if w.policy == "conv" else 0
    forward = 2 * block_convs + policy_convs
    if method == samplers.RL:
        forward += 2 * block_convs
    return _linear_gemms(
        "conv",
        w.batch_size * w.seq_len,
        w.kernel_size * w.channels,
        w.channels,
        (forward, 2 * block_convs + policy_convs, block_convs + policy_convs),
    )


def time_gemm(gemm: Gemm, repeats: int = 10, warmup: int = 2) -> float:
    """Median seconds of one `gemm` product (float32, random inputs)."""
    a = tf.random.stateless_normal([gemm.m, gemm.k], seed=[1, 1])
    b = tf.random.stateless_normal([gemm.k, gemm.n], seed=[1, 2])
    product = tf.function(lambda x, y: tf.reduce_sum(tf.linalg.matmul(x, y)))
    return matmul_rate.median_seconds(
        lambda: product(a, b).numpy(), warmup=warmup, repeats=repeats
    )


def ceiling(gemms: list[Gemm], repeats: int = 10) -> dict:
    """Times each GEMM once and sums them with the step's counts.

    Returns:
        `{"gflops_per_sec", "seconds_per_step", "gflops_per_step",
        "gemms": [{"name", "shape", "count", "gflops_per_sec"}]}`.
    """
    seconds, flops, rows = 0.0, 0, []
    for gemm in gemms:
        if gemm.count == 0:
            continue
        t = time_gemm(gemm, repeats)
        seconds += gemm.count * t
        flops += gemm.count * gemm.flops
        rows.append(
            {
                "name": gemm.name,
                "shape": [gemm.m, gemm.k, gemm.n],
                "count": gemm.count,
                "gflops_per_sec": gemm.flops / t / 1e9,
            }
        )
    return {
        "gflops_per_sec": flops / seconds / 1e9,
        "seconds_per_step": seconds,
        "gflops_per_step": flops / 1e9,
        "gemms": rows,
    }


def main(argv):
    del argv
    square = matmul_rate.matmul_gflops()["gflops_per_sec"]
    print(f"2048^2 float32 matmul: {square:.1f} GFLOP/s")
    for name, gemms in (
        ("pretrain_full_softmax", pretrain_gemms(pt.Workload())),
        ("finetune_gumbel", finetune_gemms(ft.Workload(), samplers.GUMBEL)),
    ):
        r = ceiling(gemms)
        print(
            f"{name}: its GEMMs alone {r['gflops_per_sec']:.1f} GFLOP/s, "
            f"{100 * r['gflops_per_sec'] / square:.1f}% of the square matmul"
        )
        for g in r["gemms"]:
            m, k, n = g["shape"]
            print(
                f"  {g['name']:9s} [{m}, {k}] x [{k}, {n}] x{g['count']:3d}: "
                f"{g['gflops_per_sec']:.1f} GFLOP/s"
            )


if __name__ == "__main__":
    app.run(main)
