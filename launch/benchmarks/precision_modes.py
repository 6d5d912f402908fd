r"""Which compilation and precision train fastest here (prints figures).

    python launch/benchmarks/precision_modes.py [--rounds=2]

Times the UAF-Gumbel and the full-softmax pretraining train steps of the
standard workload in the four modes {XLA, plain graph} x {float32,
mixed_bfloat16}, round by round (each round times every mode once, so
the modes share the machine's load), and prints each mode's median step
time and its speed over XLA float32, the trainer's default. `report.py`
times bf16 against float32 in one compilation mode only; this answers
whether `--precision=mixed_bfloat16` (or turning XLA off for it) beats
the default on this machine.
"""

import dataclasses
import os
import statistics
import sys

from absl import app
from absl import flags

# Run as a script: the repository root, for `launch.benchmarks`.
sys.path.insert(0, os.path.abspath(os.path.join(__file__, *[os.pardir] * 3)))
from launch.benchmarks import finetune_throughput as ft
from launch.benchmarks import pretrain_throughput as pt
from uaf_tf.layers import samplers

FLOAT32 = pt.FLOAT32
BF16 = "mixed_bfloat16"
MODES = ((True, FLOAT32), (False, FLOAT32), (True, BF16), (False, BF16))


def mode_name(jit: bool, precision: str) -> str:
    return f"{'xla' if jit else 'graph'} {precision}"


def time_modes(
    rounds: int,
    steps: int,
    warmup: int,
    progress=print,
    finetune_workload: ft.Workload | None = None,
    pretrain_workload: pt.Workload | None = None,
) -> dict:
    """`{step name: {mode name: [step ms per round]}}`; the workloads
    default to the standard one."""
    w = dataclasses.replace(
        finetune_workload or ft.Workload(), steps=steps, warmup=warmup
    )
    batches = ft.make_batches(w)
    pw = dataclasses.replace(
        pretrain_workload or pt.Workload(), steps=steps, warmup=warmup
    )
    steps_to_time = {
        "finetune_gumbel": lambda jit, precision: ft.benchmark(
            w, samplers.GUMBEL, jit, batches, precision
        ),
        "pretrain_full_softmax": lambda jit, precision: pt.benchmark(
            pw, jit, precision
        ),
    }
    times = {name: {} for name in steps_to_time}
    for r in range(rounds):
        for name, bench in steps_to_time.items():
            for jit, precision in MODES:
                ms = bench(jit, precision)["step_ms"]
                mode = mode_name(jit, precision)
                times[name].setdefault(mode, []).append(ms)
                progress(f"round {r}: {name} {mode}: {ms:.0f} ms")
    return times


def main(argv):
    del argv
    fv = flags.FLAGS
    times = time_modes(fv.rounds, fv.steps, fv.warmup)
    default = mode_name(True, FLOAT32)
    for name, by_mode in times.items():
        base = statistics.median(by_mode[default])
        print(f"\n{name} (median over rounds; speed over {default}):")
        for mode, values in by_mode.items():
            ms = statistics.median(values)
            print(f"  {mode:22s} {ms:8.0f} ms  {base / ms:5.2f}x")


if __name__ == "__main__":
    flags.DEFINE_integer("rounds", 2, "Rounds; each times every mode once.")
    flags.DEFINE_integer("steps", 6, "Timed steps per measurement.")
    flags.DEFINE_integer("warmup", 2, "Untimed steps per measurement.")
    app.run(main)
