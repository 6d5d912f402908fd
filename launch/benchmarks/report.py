r"""One benchmark report: every step, pipeline and serving figure of issue 10.

    nice -n 19 python launch/benchmarks/report.py --out=DIR [--quick]

Runs, one after another in this process, on synthetic data of the standard
workload (20K source / 5K target items, L = 30, B = 256, C = 128, 8
residual blocks with dilations [1, 4] * 4):

1. the machine's 2048 x 2048 float32 matmul rate, median of 20
   (`matmul_rate.py`), the yardstick of every `share_of_matmul`; and the
   same product in bfloat16;
2. pretraining train steps, full and sampled softmax
   (`pretrain_throughput.py`);
3. the fine-tuning train steps of UAF-Gumbel, UAF-Soft, UAF-RL and the
   Finetune baselines (`finetune_throughput.py`);
4. both of them again under `mixed_bfloat16` where `--precisions` names it
   (default: float32 and mixed_bfloat16);
5. the steps the targets name (full-softmax pretraining, UAF-Gumbel,
   UAF-RL) again, in `--rounds` rounds that each also time the matmul
   (`interleave.py`): a share is over the matmul rate of its own round and
   RL/Gumbel compares steps timed seconds apart, the median over rounds;
6. UAF-Gumbel epochs through the real input pipeline (a dataset directory
   of TFRecord shards on disk, `pipelines.finetune_train_dataset`:
   shuffling and in-graph negatives) and the same train step on the same
   batches held in memory, alternating for `--pipeline_rounds` epochs each;
7. evaluation (`FinetuneTask.evaluate`: sampled and chunked full ranking);
8. serving latency (batch 1, p50/p99) and throughput (batch 256) under an
   all-frozen, an all-fine-tuned and a learned policy, and the former
   both-branch path (`conditional_serving.py`), as a plain graph (what
   `uaf-export` writes by default) and, unless `--jit=graph`, XLA-compiled
   (`uaf-export --xla_serving`; records `serving_xla_*`), each with its
   target ratios in wall-clock and in CPU time; then batch-1 requests
   through exported SavedModels, string ids in and out
   (`serving_latency.py --compare_rounds`): the graph export and, unless
   `--jit=graph`, the XLA one, each also with constant weights
   (`uaf-export --constant_weights`; records `exported_serving_*`);
9. the matmul rate again, to show how far the machine's load drifted.

Writes `DIR/report.json` (a list, one object per measurement: `name`,
`examples_per_sec`, `gflops_per_sec` and `share_of_matmul` where FLOPs
are counted, else null; for serving `p50_ms`, `p99_ms`, `policy`; and
the details of each, per round where interleaved) and `DIR/report.md`
(the tables, the ratios the issue's targets name, how each was measured
and whether it is met). The targets use the interleaved figures; the
sequential ones of steps 2-4 fill the per-method tables. Train steps are XLA
compiled as the trainer compiles them by default (falling back to a plain
`tf.function` if XLA fails; `mode` says which ran).

`--jit=graph` times plain `tf.function` graphs (no XLA compilation: a
loaded machine gets through the report sooner); `--steps`, `--warmup` and
`--pipeline_users` shorten it too.

`--quick` shrinks every shape and count (about a CPU-minute): the CI
schema test runs it; its figures mean nothing.
"""

import dataclasses
import datetime
import itertools
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import app
from absl import flags
from absl import logging

# Run as a script: the repository root, for `launch.benchmarks`.
sys.path.insert(0, os.path.abspath(os.path.join(__file__, *[os.pardir] * 3)))
from launch.benchmarks import conditional_serving
from launch.benchmarks import finetune_throughput as ft
from launch.benchmarks import gemm_ceiling
from launch.benchmarks import interleave
from launch.benchmarks import matmul_rate
from launch.benchmarks import pretrain_throughput as pt
from launch.benchmarks import serving_latency
from uaf_tf import run_dir as run_dir_lib
from uaf_tf.data import dataset_info
from uaf_tf.layers import samplers
from uaf_tf.models import finetune_baseline
from uaf_tf.training import finetune

FLOAT32 = pt.FLOAT32
MIXED_BFLOAT16 = "mixed_bfloat16"
UAF_METHODS = (samplers.GUMBEL, samplers.SOFT, samplers.RL)
MATMUL = "matmul_float32"
# The records so far, while the report runs (removed at its end).
PARTIAL_FILE = "report.partial.json"

# Targets of issue 10 (ratios measured by this report).
TARGET_SHARE = 0.6
TARGET_RL_OVER_GUMBEL = 1.3
TARGET_FROZEN_LATENCY = 0.6
TARGET_FROZEN_THROUGHPUT = 1.6
TARGET_PIPELINE = 0.9
# How conditional_serving.py measures (rounds, the figures pooled).
SERVING_ROUNDS = "interleaved rounds, pooled (conditional_serving.py)"
# The former path the conditional one is compared with.
BOTH = "both branches (former path)"
# Name prefix of the XLA-compiled serving records.
SERVING_XLA = "serving_xla_"
# Name prefix of the exported-SavedModel serving records.
EXPORTED_SERVING = "exported_serving_"


# The served model of `Settings.quick`, in both serving benchmarks' flags.
_QUICK_SERVING_MODEL = (
    "--channels=8",
    "--num_blocks=2",
    "--seq_len=6",
    "--num_source_items=60",
    "--num_target_items=40",
    "--top_k=3",
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Shapes and counts of one report."""

    pretrain: pt.Workload
    finetune: ft.Workload
    num_sampled: int
    matmul_size: int
    matmul_repeats: int
    pipeline_users: int
    # Rounds of the interleaved measurements (`interleave.py`): the steps
    # the targets name beside the matmul, and the pipeline beside the bare
    # step (one epoch each per round); `round_steps` timed steps a round.
    rounds: int
    round_steps: int
    pipeline_rounds: int
    eval_negatives: int
    serving_flags: tuple[str, ...]
    jit: bool
    # Serving is timed as a plain graph (what `uaf-export` writes by
    # default) and, when set, XLA-compiled too (`uaf-export --xla_serving`).
    serving_xla: bool
    # `serving_latency.py` flags of the exported-SavedModel comparison.
    export_flags: tuple[str, ...]

    @classmethod
    def standard(
        cls,
        steps: int,
        warmup: int,
        jit: bool,
        pipeline_users: int,
        rounds: int = 5,
        pipeline_rounds: int = 3,
    ) -> "Settings":
        return cls(
            pretrain=pt.Workload(steps=steps, warmup=warmup),
            finetune=ft.Workload(steps=steps, warmup=warmup),
            num_sampled=1024,
            matmul_size=matmul_rate.SIZE,
            matmul_repeats=matmul_rate.REPEATS,
            pipeline_users=pipeline_users,
            rounds=rounds,
            round_steps=5,
            pipeline_rounds=pipeline_rounds,
            eval_negatives=99,
            serving_flags=(),
            jit=jit,
            serving_xla=jit,
            export_flags=("--compare_rounds=5", "--latency_requests=250"),
        )

    @classmethod
    def quick(cls) -> "Settings":
        return cls(
            pretrain=pt.Workload(warmup=1, steps=2, **pt.QUICK_SHAPES),
            finetune=ft.Workload(warmup=1, steps=2, **ft.QUICK_SHAPES),
            num_sampled=5,
            matmul_size=64,
            matmul_repeats=3,
            pipeline_users=40,
            rounds=2,
            round_steps=1,
            pipeline_rounds=2,
            eval_negatives=9,
            serving_flags=(
                *_QUICK_SERVING_MODEL,
                "--rounds=1",
                "--latency_requests=3",
                "--batch_size=4",
                "--throughput_batches=1",
            ),
            jit=False,
            serving_xla=True,
            export_flags=(
                *_QUICK_SERVING_MODEL,
                "--compare_rounds=1",
                "--latency_requests=2",
            ),
        )


def record(name, examples_per_sec, gflops_per_sec, matmul, **details):
    """One measurement; its share is over the same run's `matmul` rate."""
    return {
        "name": name,
        "examples_per_sec": examples_per_sec,
        "gflops_per_sec": gflops_per_sec,
        "share_of_matmul": (
            None if gflops_per_sec is None else gflops_per_sec / matmul
        ),
        **details,
    }


def _suffix(precision: str) -> str:
    return "" if precision == FLOAT32 else "_bf16"


def _with_fallback(fn, jit: bool, *args):
    """`fn(*args, jit)`, or with `jit=False` if XLA compilation fails."""
    if jit:
        try:
            return fn(*args, True)
        except Exception as error:  # XLA refuses some graphs: say so.
            logging.warning("XLA failed (%s); timing the graph.", error)
    return fn(*args, False)


def _compiled(train_step, jit: bool, warm_up):
    """`(step, mode)`: `train_step` as a `tf.function`, XLA-compiled when
    `jit` and XLA accepts it, after `warm_up(step)` traced it."""
    if jit:
        step = tf.function(train_step, reduce_retracing=True, jit_compile=True)
        try:
            warm_up(step)
            return step, "xla"
        except Exception as error:  # XLA refuses some graphs: say so.
            logging.warning("XLA failed (%s); timing the graph.", error)
    step = tf.function(train_step, reduce_retracing=True)
    warm_up(step)
    return step, "graph"


def interleaved_records(s: Settings, matmul: float, batches: list) -> list:
    """The figures the targets name, timed in rounds beside the matmul.

    Each round times the square matmul, the full-softmax pretraining step,
    the UAF-Gumbel step, the UAF-RL step (`s.round_steps` each, median) and
    the GEMM ceilings of the first two (`gemm_ceiling.ceiling`), in an
    order that rotates from round to round (`interleave.rounds`). So a
    share is over the matmul rate of its own round and RL/Gumbel compares
    steps timed seconds apart. A record's `share_of_matmul` is the median
    of its rounds' shares; UAF-RL's `over_gumbel` the median of its rounds'
    step-time ratios.
    """
    k, p, w = s.round_steps, s.pretrain, s.finetune
    product = matmul_rate.matmul_product(s.matmul_size)
    pre_batch = pt.make_batch(p, np.random.default_rng(0))
    pre_step, pre_mode = _compiled(
        pt.build_task(p).train_step,
        s.jit,
        lambda f: pt.time_median(f, pre_batch, warmup=1, steps=1),
    )
    timers = {
        "matmul": lambda: matmul_rate.median_seconds(
            product, warmup=1, repeats=k
        ),
        "pretrain_full_softmax": lambda: pt.time_median(
            pre_step, pre_batch, warmup=1, steps=k
        ),
    }
    # name -> (FLOPs per call, examples per call or None, mode).
    counted = {
        "pretrain_full_softmax": (pt.step_flops(p)[0], p.batch_size, pre_mode)
    }
    for method in (samplers.GUMBEL, samplers.RL):
        step, mode = _compiled(
            ft.build_task(w, method).train_step,
            s.jit,
            lambda f: ft.time_steps(f, batches, warmup=1, steps=1),
        )
        name = f"finetune_{method}"
        timers[name] = lambda f=step: ft.time_steps(
            f, batches, warmup=1, steps=k
        )
        counted[name] = (ft.step_flops(w, method)[0], w.batch_size, mode)
    for name, gemms in (
        ("pretrain_full_softmax", gemm_ceiling.pretrain_gemms(p)),
        ("finetune_gumbel", gemm_ceiling.finetune_gemms(w, samplers.GUMBEL)),
    ):
        timers[f"gemm_ceiling_{name}"] = lambda g=gemms: gemm_ceiling.ceiling(
            g, repeats=k
        )["seconds_per_step"]
        flops = sum(g.count * g.flops for g in gemms)
        counted[f"gemm_ceiling_{name}"] = (flops, None, "bare matmuls")
    seconds = interleave.rounds(timers, s.rounds)
    matmul_rates = [2 * s.matmul_size**3 / t / 1e9 for t in seconds["matmul"]]
    out = [
        record(
            "interleaved_matmul_float32",
            None,
            statistics.median(matmul_rates),
            # Over the rate at the start of the report: the drift.
            matmul,
            rounds=s.rounds,
            round_gflops_per_sec=matmul_rates,
        )
    ]
    for name, (flops, examples, mode) in counted.items():
        times = seconds[name]
        rates = [flops / t / 1e9 for t in times]
        shares = interleave.round_ratios(rates, matmul_rates)
        median = statistics.median(times)
        out.append(
            {
                "name": f"interleaved_{name}",
                "examples_per_sec": examples and examples / median,
                "gflops_per_sec": statistics.median(rates),
                "share_of_matmul": statistics.median(shares),
                "step_ms": 1e3 * median,
                "gflops_per_step": flops / 1e9,
                "mode": mode,
                "rounds": s.rounds,
                "round_step_ms": [1e3 * t for t in times],
                "round_shares": shares,
            }
        )
    rl, gumbel = seconds["finetune_rl"], seconds["finetune_gumbel"]
    by_name = {r["name"]: r for r in out}
    by_name["interleaved_finetune_rl"].update(
        over_gumbel=interleave.median_ratio(rl, gumbel),
        round_over_gumbel=interleave.round_ratios(rl, gumbel),
    )
    return out


def pretrain_records(s: Settings, precision: str, matmul: float) -> list:
    out = []
    for kind, num_sampled in (("full", 0), ("sampled", s.num_sampled)):
        w = dataclasses.replace(s.pretrain, num_sampled=num_sampled)
        r = _with_fallback(lambda jit: pt.benchmark(w, jit, precision), s.jit)
        out.append(
            record(
                f"pretrain_{kind}_softmax{_suffix(precision)}",
                r["examples_per_sec"],
                r["achieved_gflops"],
                matmul,
                step_ms=r["step_ms"],
                mode=r["mode"],
                precision=precision,
                num_sampled=num_sampled,
                gflops_per_step=r["gflops_per_step"],
            )
        )
    return out


def finetune_records(
    s: Settings, methods, precision: str, matmul: float, batches: list
) -> list:
    out = []
    for method in methods:
        r = _with_fallback(
            lambda jit, m=method: ft.benchmark(
                s.finetune, m, jit, batches, precision
            ),
            s.jit,
        )
        out.append(
            record(
                f"finetune_{method}{_suffix(precision)}",
                r["examples_per_sec"],
                r.get("achieved_gflops"),
                matmul,
                step_ms=r["step_ms"],
                mode=r["mode"],
                precision=precision,
                method=method,
                conv_passes=r.get("convs"),
            )
        )
    return out


def pipeline_records(s: Settings, matmul: float, work_dir: str) -> list:
    """UAF-Gumbel through the on-disk pipeline vs the bare step; eval."""
    w = s.finetune
    data_dir = ft.build_pipeline_data(
        os.path.join(work_dir, "data"), w, s.pipeline_users, s.eval_negatives
    )
    info = dataset_info.DatasetInfo.load(data_dir)
    task = ft.pipeline_task(w, data_dir)
    held = list(task.train_dataset(0))
    # Warm-up: trace the full and the last partial batch's shapes.
    step, mode = _compiled(
        task.train_step,
        s.jit,
        lambda f: [float(f(b)["loss"]) for b in held[:1] + held[-1:]],
    )
    epochs = itertools.count(1)
    # Where each epoch's time went, per side and round: seconds waiting
    # for the input, in train steps and releasing the iterator, and the
    # longest wait and step.
    where = {"pipeline": [], "bare": []}

    def examples_per_sec(batches, side: str) -> float:
        examples, start = 0, time.perf_counter()
        waits, steps = [], []
        batch_iter = iter(batches)
        while True:
            t0 = time.perf_counter()
            batch = next(batch_iter, None)
            t1 = time.perf_counter()
            waits.append(t1 - t0)
            if batch is None:
                break
            float(step(batch)["loss"])
            steps.append(time.perf_counter() - t1)
            examples += int(tf.shape(batch[dataset_info.TARGET])[0])
        # Releasing the iterator (its tf.data threads) is part of the
        # epoch, as when a `for` loop ends.
        t0 = time.perf_counter()
        del batch_iter, batch
        released = time.perf_counter()
        seconds = released - start
        where[side].append(
            {
                "seconds": seconds,
                "input_seconds": sum(waits),
                "step_seconds": sum(steps),
                "release_seconds": released - t0,
                "longest_input_wait": max(waits),
                "longest_step": max(steps, default=0.0),
            }
        )
        return examples / seconds

    # End to end, every epoch read, shuffled and negatives drawn anew,
    # against the same steps on batches already in memory, in alternating
    # rounds (`interleave.py`).
    rates = interleave.rounds(
        {
            "pipeline": lambda: examples_per_sec(
                task.train_dataset(next(epochs)), "pipeline"
            ),
            "bare": lambda: examples_per_sec(held, "bare"),
        },
        s.pipeline_rounds,
    )
    counted = ft.step_flops(w, samplers.GUMBEL)[0] / w.batch_size
    out = []
    for name, side in (
        ("pipeline_epoch_gumbel", "pipeline"),
        ("bare_step_gumbel", "bare"),
    ):
        rate = statistics.median(rates[side])
        out.append(
            record(
                name,
                rate,
                counted * rate / 1e9,
                matmul,
                examples_per_epoch=sum(
                    int(b[dataset_info.TARGET].shape[0]) for b in held
                ),
                rounds=s.pipeline_rounds,
                round_examples_per_sec=rates[side],
                round_time_split=where[side],
                mode=mode,
            )
        )
    out[0].update(
        over_bare=interleave.median_ratio(rates["pipeline"], rates["bare"]),
        round_over_bare=interleave.round_ratios(
            rates["pipeline"], rates["bare"]
        ),
    )
    task.evaluate(finetune.VALID)  # traces
    start = time.perf_counter()
    results = task.evaluate(finetune.VALID)
    seconds = time.perf_counter() - start
    out.append(
        record(
            "evaluation_gumbel",
            results["num_examples"] / seconds,
            None,
            matmul,
            examples=int(results["num_examples"]),
            seconds=seconds,
            candidates=1 + s.eval_negatives,
            full_ranking_items=info.num_target_ids,
        )
    )
    return out


def serving_records(s: Settings, matmul: float) -> list:
    """The serving variants as a graph (`serving_<path>`) and, with
    `s.serving_xla`, XLA-compiled (`serving_xla_<path>`)."""
    out = []
    for xla in (False, True) if s.serving_xla else (False,):
        fv = flags.FlagValues()
        conditional_serving.define_flags(fv)
        fv(
            [
                "conditional_serving",
                *s.serving_flags,
                f"--jit_compile={xla}",
            ]
        )
        for r in conditional_serving.benchmark(fv):
            name = r.pop("name")
            if xla:
                name = name.replace("serving_", SERVING_XLA, 1)
            out.append(
                record(name, r.pop("examples_per_sec"), None, matmul, **r)
            )
    return out


def exported_serving_records(s: Settings, matmul: float) -> list:
    """Batch-1 requests through exported SavedModels (string ids in and
    out, `serving_latency.compare_exports`), interleaved: as a graph and,
    with `s.serving_xla`, XLA-compiled, each with its variables and with
    constant weights (`uaf-export --constant_weights`). One record
    `exported_serving_<export>` each; `p50_over_reference` is the median
    over rounds of its p50 over the first export's."""
    exports = ["graph", "graph_constants"]
    if s.serving_xla:
        exports += ["xla", "xla_constants"]
    fv = flags.FlagValues()
    serving_latency.define_flags(fv)
    fv(
        [
            "serving_latency",
            *s.export_flags,
            "--compare_exports=" + ",".join(exports),
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = serving_latency.compare_exports(fv, tmp)
    return [
        record(
            EXPORTED_SERVING + name,
            None,
            None,
            matmul,
            policy=conditional_serving.LEARNED,
            reference=exports[0],
            p50_over_reference=result["median_ratio"].get(name, 1.0),
            round_ratios=result["round_ratios"].get(name),
            **result[name],
        )
        for name in exports
    ]


def run(
    s: Settings,
    precisions,
    work_dir: str,
    progress=print,
    partial_path: str | None = None,
) -> list:
    """Every measurement of the report, in order; returns the records.

    With `partial_path`, the records so far are rewritten there as JSON
    after each step, so a run cut short still leaves its figures.
    """
    rates = {}
    records = []

    def add(new):
        for r in new:
            progress(
                f"{r['name']}: {_fmt(r['examples_per_sec'])} ex/s, "
                f"{_fmt(r['gflops_per_sec'])} GFLOP/s"
                + (
                    f", {100 * r['share_of_matmul']:.1f}% of matmul"
                    if r["share_of_matmul"] is not None
                    else ""
                ),
            )
        records.extend(new)
        if partial_path:
            with open(partial_path, "w") as f:
                json.dump(records, f, indent=1)

    for dtype in ("float32", "bfloat16"):
        m = matmul_rate.matmul_gflops(s.matmul_size, s.matmul_repeats, 1, dtype)
        rates[dtype] = m["gflops_per_sec"]
        add(
            [
                record(
                    f"matmul_{dtype}",
                    None,
                    m["gflops_per_sec"],
                    rates["float32"],
                    median_ms=m["median_ms"],
                    size=s.matmul_size,
                    repeats=s.matmul_repeats,
                )
            ]
        )
    matmul = rates["float32"]
    batches = ft.make_batches(s.finetune)
    for precision in precisions:
        add(pretrain_records(s, precision, matmul))
        add(finetune_records(s, UAF_METHODS, precision, matmul, batches))
    add(
        finetune_records(s, finetune_baseline.METHODS, FLOAT32, matmul, batches)
    )
    add(interleaved_records(s, matmul, batches))
    add(pipeline_records(s, matmul, work_dir))
    add(serving_records(s, matmul))
    add(exported_serving_records(s, matmul))
    end = matmul_rate.matmul_gflops(s.matmul_size, s.matmul_repeats, 1)
    add(
        [
            record(
                MATMUL + "_end",
                None,
                end["gflops_per_sec"],
                matmul,
                median_ms=end["median_ms"],
                size=s.matmul_size,
                repeats=s.matmul_repeats,
            )
        ]
    )
    return records


def _by_name(records: list) -> dict:
    return {(r["name"], r.get("policy")): r for r in records}


def targets(records: list) -> list[dict]:
    """The issue's target ratios: `{"target", "value", "bound", "met",
    "how"}` (how it was measured; None where it was not)."""
    r = _by_name(records)

    def get(name, policy=None):
        return r.get((name, policy))

    rows = []

    def add(target, value, bound, at_least, how):
        met = (
            None
            if value is None
            else (value >= bound if at_least else value <= bound)
        )
        rows.append(
            {
                "target": target,
                "value": value,
                "bound": f"{'>=' if at_least else '<='} {bound:g}",
                "met": met,
                "how": how,
            }
        )

    def rounds(rec) -> str:
        return f"interleaved, median of {rec['rounds']} rounds"

    for name, label in (
        ("pretrain_full_softmax", "pretraining step (full softmax)"),
        ("finetune_gumbel", "UAF-Gumbel step"),
    ):
        bound = f"(bound) {label}'s GEMM shapes alone"
        for prefix, what in (("", label), ("gemm_ceiling_", bound)):
            rec = get(f"interleaved_{prefix}{name}")
            add(
                f"{what}: share of the matmul rate",
                None if rec is None else rec["share_of_matmul"],
                TARGET_SHARE,
                True,
                rec and f"{rounds(rec)} with the matmul",
            )
    rl = get("interleaved_finetune_rl")
    add(
        "UAF-RL step time / UAF-Gumbel step time",
        None if rl is None else rl["over_gumbel"],
        TARGET_RL_OVER_GUMBEL,
        False,
        rl and rounds(rl),
    )
    for prefix, compiled in (("serving_", "graph"), (SERVING_XLA, "XLA")):
        frozen = get(prefix + "conditional", conditional_serving.ALL_FROZEN)
        tuned = get(prefix + "conditional", conditional_serving.ALL_FINETUNED)
        both = get(prefix + "both_branches", conditional_serving.LEARNED)
        for other, versus in ((tuned, "all-fine-tuned"), (both, BOTH)):
            if not (frozen and other):
                continue
            for clock, p50, rate in (
                ("", "p50_ms", "examples_per_sec"),
                (" (CPU time)", "cpu_p50_ms", "examples_per_cpu_sec"),
            ):
                add(
                    f"{compiled} serving batch-1 p50{clock}: all-frozen / "
                    + versus,
                    frozen[p50] / other[p50],
                    TARGET_FROZEN_LATENCY,
                    False,
                    SERVING_ROUNDS,
                )
                add(
                    f"{compiled} serving batch-256 throughput{clock}: "
                    f"all-frozen / {versus}",
                    frozen[rate] / other[rate],
                    TARGET_FROZEN_THROUGHPUT,
                    True,
                    SERVING_ROUNDS,
                )
    pipe = get("pipeline_epoch_gumbel")
    if pipe:
        add(
            "end-to-end pipeline / bare train step throughput",
            pipe["over_bare"],
            TARGET_PIPELINE,
            True,
            f"{rounds(pipe)} (one epoch each)",
        )
    return rows


def speedups(records: list) -> dict:
    """bf16 speed-up of each train step timed in both precisions."""
    r = {rec["name"]: rec for rec in records}
    return {
        name: r[name + "_bf16"]["examples_per_sec"] / rec["examples_per_sec"]
        for name, rec in r.items()
        if name + "_bf16" in r
    }


def _fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(records: list, meta: dict) -> str:
    """The report's text: where it ran, the tables, the target ratios."""
    lines = [
        f"# Benchmark report ({meta['date']})",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Machine: {meta['cpu']}, {meta['cpus']} CPUs, TensorFlow "
        f"{meta['tensorflow']}; 1-minute load average "
        f"{meta['load_before']:.1f} before, {meta['load_after']:.1f} after; "
        f"{meta['seconds']:.0f} s wall clock.",
        "",
        f"Workload: {meta['workload']}",
        "",
        f"Shares are over the {meta['matmul_size']} x {meta['matmul_size']} "
        "float32 matmul rate measured at the start of this run "
        f"({_fmt(meta['matmul'])} GFLOP/s; "
        f"{_fmt(meta['matmul_end'])} GFLOP/s at its end).",
        "",
        "| measurement | ex/s | GFLOP/s | share of matmul | step ms | mode |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        if r["name"].startswith(("serving_", EXPORTED_SERVING)):
            continue
        share = r["share_of_matmul"]
        lines.append(
            f"| {r['name']} | {_fmt(r['examples_per_sec'])} | "
            f"{_fmt(r['gflops_per_sec'])} | "
            f"{'-' if share is None else f'{100 * share:.1f}%'} | "
            f"{_fmt(r.get('step_ms'))} | {r.get('mode', '-')} |"
        )
    lines += [
        "",
        "| serving path | policy | fine-tuned | p50 ms | p99 ms | ex/s "
        "(batch) | CPU p50 ms | ex per CPU-s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if not r["name"].startswith("serving_"):
            continue
        lines.append(
            f"| {r['name'].removeprefix('serving_')} | {r['policy']} | "
            f"{r['finetune_fraction']:.2f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['examples_per_sec']:.0f} "
            f"({r['batch_size']}) | {r['cpu_p50_ms']:.2f} | "
            f"{r['examples_per_cpu_sec']:.0f} |"
        )
    exported = [r for r in records if r["name"].startswith(EXPORTED_SERVING)]
    if exported:
        reference = exported[0]["reference"]
        lines += [
            "",
            "| exported SavedModel, batch 1 | p50 ms | p99 ms | CPU p50 ms "
            f"| p50 / {reference} (median of rounds) | SavedModel MiB |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['name'].removeprefix(EXPORTED_SERVING)} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_p50_ms']:.2f} "
            f"| {r['p50_over_reference']:.2f} | {r['saved_model_mb']:.1f} |"
            for r in exported
        ]
    lines += [
        "",
        "## Targets",
        "",
        "| target | value | bound | met | measured |",
        "|---|---|---|---|---|",
    ]
    for t in targets(records):
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        lines.append(
            f"| {t['target']} | {_fmt(t['value'], 2)} | {t['bound']} | {met} "
            f"| {t['how'] or '-'} |"
        )
    ups = speedups(records)
    if ups:
        lines += [
            "",
            "## mixed_bfloat16 / float32 train-step throughput (same run)",
            "",
            "| step | speed-up |",
            "|---|---|",
        ]
        lines += [f"| {name} | {up:.2f}x |" for name, up in ups.items()]
    return "\n".join(lines) + "\n"


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    fv = {"flag_values": flag_values}
    flags.DEFINE_string("out", None, "Report directory.", **fv)
    flags.DEFINE_bool("quick", False, "Tiny shapes (the CI schema test).", **fv)
    flags.DEFINE_integer("steps", 10, "Timed train steps each.", **fv)
    flags.DEFINE_integer("warmup", 3, "Untimed train steps each.", **fv)
    flags.DEFINE_enum(
        "jit",
        "xla",
        ["xla", "graph"],
        "Train steps XLA-compiled (the trainer's default) or plain graphs; "
        "`xla` also times serving XLA-compiled beside the graph.",
        **fv,
    )
    flags.DEFINE_integer(
        "pipeline_users",
        4096,
        "Synthetic users of the on-disk dataset (3 instances each).",
        **fv,
    )
    flags.DEFINE_integer(
        "rounds",
        5,
        "Interleaved rounds of the matmul and the pretraining, UAF-Gumbel "
        "and UAF-RL steps the targets name.",
        **fv,
    )
    flags.DEFINE_integer(
        "pipeline_rounds",
        3,
        "Interleaved rounds of one pipeline epoch and one in-memory pass.",
        **fv,
    )
    flags.DEFINE_list(
        "precisions",
        [FLOAT32, MIXED_BFLOAT16],
        f"Precisions of the train steps, of {pt.PRECISIONS}.",
        **fv,
    )


def main(argv, flag_values: flags.FlagValues = flags.FLAGS):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    fv = flag_values
    if not fv.out:
        raise app.UsageError("--out is required.")
    for name in ("rounds", "pipeline_rounds", "steps"):
        if fv[name].value < 1:
            raise app.UsageError(
                f"--{name} must be at least 1. Received: {fv[name].value}"
            )
    for precision in fv.precisions:
        if precision not in pt.PRECISIONS:
            raise app.UsageError(
                f"--precisions must be of {pt.PRECISIONS}. "
                f"Received: {precision!r}"
            )
    s = (
        Settings.quick()
        if fv.quick
        else Settings.standard(
            fv.steps,
            fv.warmup,
            fv.jit == "xla",
            fv.pipeline_users,
            fv.rounds,
            fv.pipeline_rounds,
        )
    )
    os.makedirs(fv.out, exist_ok=True)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work_dir:
        partial = os.path.join(fv.out, PARTIAL_FILE)
        records = run(s, fv.precisions, work_dir, partial_path=partial)
    os.remove(partial)
    w, p = s.finetune, s.pretrain
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "command": " ".join(["python", *sys.argv]),
        "cpu": run_dir_lib.cpu_model(),
        "cpus": os.cpu_count(),
        "tensorflow": tf.__version__,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "seconds": time.perf_counter() - start,
        "workload": (
            f"{w.source_vocab} source / {w.target_vocab} target items, "
            f"L={w.seq_len}, B={w.batch_size}, C={w.channels}, "
            f"{len(w.dilations)} residual blocks; pretraining V={p.vocab}, "
            f"sampled softmax {s.num_sampled} classes; median of "
            f"{w.steps} steps after {w.warmup} warm-up"
        ),
        "matmul_size": s.matmul_size,
        "matmul": _by_name(records)[(MATMUL, None)]["gflops_per_sec"],
        "matmul_end": _by_name(records)[(MATMUL + "_end", None)][
            "gflops_per_sec"
        ],
    }
    text = markdown(records, meta)
    with open(os.path.join(fv.out, "report.json"), "w") as f:
        json.dump(records, f, indent=1)
    with open(os.path.join(fv.out, "report.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    define_flags()
    app.run(main)
