r"""How much a train step's speed depends on its build, and on `malloc`
(prints figures; not a test).

    python launch/benchmarks/build_spread.py [--rounds=4 --builds=4]
        [--allocators=glibc,tcmalloc --allocator_dirs=DIR]

A train step's speed is set when its task is built, not from step to step:
`report.py` builds a new task in every round, so its rounds' shares of the
matmul rate spread more than the steps of one build do. This measures both
spreads, so a share can be read against them.

Each round runs, for every allocator in `--allocators`, one child process
(the allocator loaded with `LD_PRELOAD`; `glibc` is the default `malloc`)
that measures the 2048 x 2048 float32 matmul rate, then builds `--builds`
tasks of the standard workload one after another (the same weights each
time) and times each one's XLA train step, `--steps` steps after
`--warmup`. The allocators' order rotates from round to round
(`interleave.rounds`). It prints, per allocator and method, the median, min
and max step time over all builds, the median over builds of the spread
within one build (slowest step / fastest - 1), the median share of the
matmul rate (each child's own), and whether the loss after the timed steps
is the same everywhere: a `malloc` moves buffers, not arithmetic.

Allocators are found by name (`tcmalloc`: `libtcmalloc_minimal.so.4` or
`libtcmalloc.so.4`, `jemalloc`: `libjemalloc.so.2`) in `--allocator_dirs`
and the linker's cache; Debian and Ubuntu ship them as
`libtcmalloc-minimal4` and `libjemalloc2` (without root: `apt-get download
libtcmalloc-minimal4 && dpkg-deb -x libtcmalloc-minimal4_*.deb DIR`, then
`--allocator_dirs=DIR/usr/lib/x86_64-linux-gnu`). One that is not found is
skipped with a message.
"""

import ctypes.util
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags

# Run as a script: the repository root, for `launch.benchmarks`.
sys.path.insert(0, os.path.abspath(os.path.join(__file__, *[os.pardir] * 3)))
from launch.benchmarks import interleave

GLIBC = "glibc"
LIBRARY_NAMES = {
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"),
    "jemalloc": ("libjemalloc.so.2",),
}
METHODS = ("gumbel", "soft", "rl", "pretrain")
RESULT_PREFIX = "BUILD_SPREAD "


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines this script's flags on `flag_values`."""
    fv = {"flag_values": flag_values}
    flags.DEFINE_list(
        "allocators",
        [GLIBC],
        f"Allocators to compare: {GLIBC} (the default malloc) and any of "
        f"{sorted(LIBRARY_NAMES)}.",
        **fv,
    )
    flags.DEFINE_list(
        "allocator_dirs",
        [],
        "Extra directories to look for the allocators' shared libraries in.",
        **fv,
    )
    flags.DEFINE_list(
        "methods", ["gumbel"], f"Train steps to time, of {METHODS}.", **fv
    )
    flags.DEFINE_integer("rounds", 4, "Rounds (one child per allocator).", **fv)
    flags.DEFINE_integer(
        "builds", 4, "Tasks built and timed per child, per method.", **fv
    )
    flags.DEFINE_integer("warmup", 3, "Untimed steps per build.", **fv)
    flags.DEFINE_integer("steps", 8, "Timed steps per build.", **fv)
    flags.DEFINE_bool(
        "quick",
        False,
        "Tiny shapes (a smoke run; the figures mean nothing).",
        **fv,
    )
    flags.DEFINE_bool(
        "child", False, "Internal: time builds in this process.", **fv
    )


def find_allocator(name: str, extra_dirs=()) -> str | None:
    """The path (or linker name) of allocator `name`'s library, or None."""
    for library in LIBRARY_NAMES[name]:
        for directory in extra_dirs:
            path = os.path.join(directory, library)
            if os.path.exists(path):
                return path
        # `find_library` wants the name without `lib` and `.so...`.
        found = ctypes.util.find_library(library[3:].split(".so")[0])
        if found:
            return found
    return None


def time_builds(method: str, builds: int, warmup: int, steps: int, quick):
    """Builds `builds` tasks of `method` one after another and times each
    one's XLA train step; returns one dict per build: `step_ms` (median),
    `spread` (slowest step / fastest - 1), the step's counted
    `gflops_per_step` and the `loss` of the last step."""
    import numpy as np
    import tensorflow as tf

    from launch.benchmarks import finetune_throughput as ft
    from launch.benchmarks import pretrain_throughput as pt

    results = []
    for _ in range(builds):
        if method == "pretrain":
            w = pt.Workload()
            if quick:
                w = dataclasses.replace(w, **pt.QUICK_SHAPES)
            task = pt.build_task(w)
            batches = [pt.make_batch(w, np.random.default_rng(0))]
            flops = pt.step_flops(w)[0]
        else:
            w = ft.Workload()
            if quick:
                w = dataclasses.replace(w, **ft.QUICK_SHAPES)
            task = ft.build_task(w, method)
            batches = ft.make_batches(w)
            flops = ft.step_flops(w, method)[0]
        step = tf.function(
            task.train_step, reduce_retracing=True, jit_compile=True
        )
        for i in range(warmup):
            float(step(batches[i % len(batches)])["loss"])
        seconds = []
        for i in range(steps):
            start = time.perf_counter()
            loss = float(step(batches[i % len(batches)])["loss"])
            seconds.append(time.perf_counter() - start)
        results.append(
            {
                "step_ms": 1e3 * statistics.median(seconds),
                "spread": max(seconds) / min(seconds) - 1.0,
                "gflops_per_step": flops / 1e9,
                "loss": loss,
            }
        )
    return results


def child_main(fv) -> None:
    """Prints the matmul rate and every build's figures as JSON lines."""
    from launch.benchmarks import matmul_rate

    gflops = matmul_rate.matmul_gflops()["gflops_per_sec"]
    for method in fv.methods:
        for build in time_builds(
            method, fv.builds, fv.warmup, fv.steps, fv.quick
        ):
            build.update(method=method, matmul_gflops=gflops)
            print(RESULT_PREFIX + json.dumps(build), flush=True)


def run_child(fv, library: str | None) -> list[dict]:
    """Runs one child process (with `library` preloaded); its builds."""
    env = dict(os.environ)
    if library is not None:
        env["LD_PRELOAD"] = library
    args = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        f"--methods={','.join(fv.methods)}",
        f"--builds={fv.builds}",
        f"--warmup={fv.warmup}",
        f"--steps={fv.steps}",
        f"--quick={fv.quick}",
    ]
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"The child with LD_PRELOAD={library} failed "
            f"(exit {done.returncode}):\n{done.stderr[-3000:]}"
        )
    return [
        json.loads(line[len(RESULT_PREFIX) :])
        for line in done.stdout.splitlines()
        if line.startswith(RESULT_PREFIX)
    ]


def summarise(builds: list[dict]) -> dict:
    """Median / min / max step ms, the median spread within a build and
    the median matmul share of `builds`."""
    ms = [b["step_ms"] for b in builds]
    shares = [
        b["gflops_per_step"] / (b["step_ms"] / 1e3) / b["matmul_gflops"]
        for b in builds
    ]
    return {
        "builds": len(builds),
        "median_ms": statistics.median(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "median_spread": statistics.median(b["spread"] for b in builds),
        "median_share": statistics.median(shares),
        "losses": sorted({b["loss"] for b in builds}),
    }


def compare(fv, progress=print) -> dict:
    """`{allocator: {method: summary}}` over `fv.rounds` rounds."""
    unknown = sorted(set(fv.allocators) - {GLIBC, *LIBRARY_NAMES})
    if unknown:
        raise app.UsageError(
            f"--allocators: unknown {unknown}; choose from "
            f"{[GLIBC, *sorted(LIBRARY_NAMES)]}"
        )
    bad = sorted(set(fv.methods) - set(METHODS))
    if bad:
        raise app.UsageError(f"--methods: unknown {bad}; choose from {METHODS}")
    libraries = {}
    for name in fv.allocators:
        if name == GLIBC:
            libraries[name] = None
            continue
        found = find_allocator(name, fv.allocator_dirs)
        if found is None:
            progress(
                f"{name}: none of {LIBRARY_NAMES[name]} found in the "
                "linker's cache or --allocator_dirs; skipped"
            )
            continue
        libraries[name] = found
    builds = {name: [] for name in libraries}

    def timer(name):
        def run():
            got = run_child(fv, libraries[name])
            builds[name].extend(got)
            progress(
                f"{name}: "
                + ", ".join(f"{b['method']} {b['step_ms']:.0f} ms" for b in got)
            )
            return 0.0

        return run

    interleave.rounds({name: timer(name) for name in libraries}, fv.rounds)
    return {
        name: {
            method: summarise([b for b in got if b["method"] == method])
            for method in fv.methods
        }
        for name, got in builds.items()
    }


def main(argv, flag_values: flags.FlagValues = flags.FLAGS):
    del argv
    fv = flag_values
    if fv.child:
        child_main(fv)
        return
    print(
        f"{fv.rounds} rounds x {fv.builds} builds per allocator and method; "
        f"each build: median of {fv.steps} XLA steps after {fv.warmup}"
    )
    results = compare(fv)
    print(
        "\nallocator | method | builds | step ms: median (min-max) | "
        "within a build | share"
    )
    for name, per_method in results.items():
        for method, s in per_method.items():
            print(
                f"{name} | {method} | {s['builds']} | {s['median_ms']:.0f} "
                f"({s['min_ms']:.0f}-{s['max_ms']:.0f}) | "
                f"{100 * s['median_spread']:.1f}% | "
                f"{s['median_share']:.3f}"
            )
    for method in fv.methods:
        losses = {
            name: tuple(per[method]["losses"]) for name, per in results.items()
        }
        same = len(set(losses.values())) == 1
        print(
            f"{method}: loss after the timed steps "
            f"{'the same under every allocator' if same else 'DIFFERS'}: "
            f"{losses}"
        )


if __name__ == "__main__":
    define_flags()
    app.run(main)
