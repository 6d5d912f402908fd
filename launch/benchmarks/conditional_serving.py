r"""Serving cost of frozen blocks: conditional computation vs both branches.

    nice -n 19 python launch/benchmarks/conditional_serving.py \
        --out=/tmp/conditional_serving.json

Builds a randomly initialised UAF-Gumbel recommender of the standard shape
(C=128, 8 NextItNet blocks, L=30, 20K source / 5K target items; random
weights time the same as trained ones) and times its inference function,
`model(ids, training=False)` + `score_all_items` + top-K, as a
`tf.function` over int ids (the SavedModel's string lookups excluded):

- `conditional` (today's `call`: each block runs only the branch a user
  takes) under three policies, set through the policy head's bias:
  `all_frozen`, `all_finetuned` and `learned` (the untrained policy
  network's argmax, about half the blocks fine-tuned; the fraction is
  reported);
- `both_branches` (the former path, every block's two branches for every
  user, `encode(..., hard_policy=False)`) under the learned policy; its
  cost does not depend on the policy.

The four variants are interleaved round by round in one process, so their
ratios hold while the machine's load drifts. Reports batch-1 latency
p50/p99 and batch-256 throughput in wall-clock time, and the same in the
process's CPU time (`cpu_p50_ms`, `examples_per_cpu_sec`: what a request
costs, which other jobs on a loaded machine move much less than the wall
clock), prints a table and the ratios, and writes a JSON list with one
object per variant (`name`, `policy`, `p50_ms`, `p99_ms`,
`examples_per_sec`, ...). About 1 CPU-minute; not a test.
"""

import json
import os
import platform
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from uaf_tf.layers import samplers
from uaf_tf.models.nextitnet_backbone import PAPER_DILATIONS
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.uaf_recommender import UAFRecommender

# Policies, set through the policy head's bias.
ALL_FROZEN = "all_frozen"
ALL_FINETUNED = "all_finetuned"
LEARNED = "learned"
# Inference paths.
CONDITIONAL = "conditional"
BOTH_BRANCHES = "both_branches"
VARIANTS = (
    (CONDITIONAL, ALL_FROZEN),
    (CONDITIONAL, ALL_FINETUNED),
    (CONDITIONAL, LEARNED),
    (BOTH_BRANCHES, LEARNED),
)
# A head bias this large decides every action whatever the user.
_FORCING_BIAS = 100.0


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines this script's flags on `flag_values`."""
    fv = {"flag_values": flag_values}
    flags.DEFINE_integer("channels", 128, "C.", **fv)
    flags.DEFINE_integer("num_blocks", 8, "N, NextItNet blocks.", **fv)
    flags.DEFINE_integer("seq_len", 30, "L.", **fv)
    flags.DEFINE_integer("num_source_items", 20_000, "Source items.", **fv)
    flags.DEFINE_integer("num_target_items", 5_000, "Target items.", **fv)
    flags.DEFINE_integer("top_k", 10, "K of the top-K.", **fv)
    flags.DEFINE_integer(
        "rounds", 10, "Interleaved rounds (each times every variant).", **fv
    )
    flags.DEFINE_integer(
        "latency_requests", 40, "Batch-1 calls per variant and round.", **fv
    )
    flags.DEFINE_integer("batch_size", 256, "Throughput batch size.", **fv)
    flags.DEFINE_integer(
        "throughput_batches", 2, "Large batches per variant and round.", **fv
    )
    flags.DEFINE_integer("seed", 0, "Seeds the model and the requests.", **fv)
    flags.DEFINE_bool(
        "jit_compile",
        False,
        "Compile both inference functions with XLA (`tf.function("
        "jit_compile=True)`): fewer, fused ops per request, which is what "
        "batch-1 latency is made of on a CPU.",
        **fv,
    )
    flags.DEFINE_string("out", None, "Where to write the JSON list.", **fv)


def build_model(fv) -> UAFRecommender:
    """A random UAF-Gumbel recommender of the configured shape."""
    keras.utils.set_random_seed(fv.seed)
    dilations = (PAPER_DILATIONS * fv.num_blocks)[: fv.num_blocks]
    backbone = NextItNetBackbone(
        fv.num_source_items + 1, fv.channels, dilations=dilations
    )
    backbone.build((None, fv.seq_len))
    return UAFRecommender.from_pretrained(
        backbone,
        fv.num_target_items + 1,
        seq_len=fv.seq_len,
        sampler=samplers.GumbelSampler(seed=fv.seed),
    )


def set_policy(model: UAFRecommender, policy: str) -> None:
    """Forces every action (or none, `learned`) through the head's bias."""
    bias = np.zeros([model.num_blocks, samplers.NUM_ACTIONS], "float32")
    if policy == ALL_FROZEN:
        bias[:, samplers.FREEZE_INDEX] = _FORCING_BIAS
    elif policy == ALL_FINETUNED:
        bias[:, samplers.FINETUNE_INDEX] = _FORCING_BIAS
    model.policy_network.head.bias.assign(bias.reshape(-1))


def inference_functions(
    model: UAFRecommender, seq_len: int, top_k: int, jit_compile: bool = False
):
    """`{path: tf.function(ids [B, L]) -> (top-K ids, policy)}`, compiled
    with XLA when `jit_compile`."""

    def top_items(user):
        scores = model.score_all_items(user)  # [B, T]
        return tf.math.top_k(scores[:, 1:], k=top_k).indices + 1

    def conditional(ids):
        out = model(ids, training=False)
        return top_items(out["user_embedding"]), out["policy"]

    def both_branches(ids):
        policy = model.choose_policy(model.policy_logits(ids), ids)
        user = model.encode(ids, policy, hard_policy=False)
        return top_items(user), policy

    # XLA needs a static batch (the conditional path's `dynamic_stitch`
    # does not compile over a dynamic one): one trace per request shape.
    spec = None if jit_compile else [tf.TensorSpec([None, seq_len], tf.int32)]
    return {
        path: tf.function(fn, input_signature=spec, jit_compile=jit_compile)
        for path, fn in (
            (CONDITIONAL, conditional),
            (BOTH_BRANCHES, both_branches),
        )
    }


def benchmark(fv) -> list[dict]:
    """Times the variants, interleaved; returns one dict per variant."""
    model = build_model(fv)
    functions = inference_functions(model, fv.seq_len, fv.top_k, fv.jit_compile)
    rng = np.random.default_rng(fv.seed)
    high = fv.num_source_items + 1
    single = [
        tf.constant(rng.integers(1, high, [1, fv.seq_len]), tf.int32)
        for _ in range(64)
    ]
    large = [
        tf.constant(rng.integers(1, high, [fv.batch_size, fv.seq_len]), "int32")
        for _ in range(4)
    ]
    latencies = {variant: [] for variant in VARIANTS}
    cpu_latencies = {variant: [] for variant in VARIANTS}
    large_seconds = {variant: 0.0 for variant in VARIANTS}
    large_cpu_seconds = {variant: 0.0 for variant in VARIANTS}
    large_examples = {variant: 0 for variant in VARIANTS}
    fractions = {variant: [] for variant in VARIANTS}
    for round_index in range(fv.rounds + 1):  # round 0 warms up, untimed
        # Rotate the order, so no variant always runs first after a switch.
        shift = round_index % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            path, policy = variant
            set_policy(model, policy)
            serve = functions[path]
            for request in single[:2] + large[:1]:  # after the bias change
                _, used = serve(request)
            fractions[variant].append(float(tf.reduce_mean(used)))
            if round_index == 0:
                continue
            for i in range(fv.latency_requests):
                request = single[(round_index * 7 + i) % len(single)]
                start, cpu_start = time.perf_counter(), time.process_time()
                serve(request)[0].numpy()
                latencies[variant].append(time.perf_counter() - start)
                cpu_latencies[variant].append(time.process_time() - cpu_start)
            start, cpu_start = time.perf_counter(), time.process_time()
            for i in range(fv.throughput_batches):
                serve(large[(round_index + i) % len(large)])[0].numpy()
            large_seconds[variant] += time.perf_counter() - start
            large_cpu_seconds[variant] += time.process_time() - cpu_start
            large_examples[variant] += fv.throughput_batches * fv.batch_size

    results = []
    for variant in VARIANTS:
        path, policy = variant
        latencies_ms = 1e3 * np.array(latencies[variant])
        cpu_ms = 1e3 * np.array(cpu_latencies[variant])
        results.append(
            {
                "name": f"serving_{path}",
                "policy": policy,
                "p50_ms": float(np.percentile(latencies_ms, 50)),
                "p99_ms": float(np.percentile(latencies_ms, 99)),
                "examples_per_sec": large_examples[variant]
                / large_seconds[variant],
                # CPU time of the whole process (all TF threads): what a
                # request costs, little moved by other jobs' load.
                "cpu_p50_ms": float(np.percentile(cpu_ms, 50)),
                "examples_per_cpu_sec": large_examples[variant]
                / large_cpu_seconds[variant],
                "batch_size": fv.batch_size,
                "latency_requests": len(latencies_ms),
                "finetune_fraction": float(np.mean(fractions[variant])),
                "jit_compile": fv.jit_compile,
            }
        )
    return results


def ratios(results: list[dict]) -> dict:
    """Latency and throughput ratios between the variants."""
    by_key = {(r["name"], r["policy"]): r for r in results}
    frozen = by_key[(f"serving_{CONDITIONAL}", ALL_FROZEN)]
    tuned = by_key[(f"serving_{CONDITIONAL}", ALL_FINETUNED)]
    learned = by_key[(f"serving_{CONDITIONAL}", LEARNED)]
    both = by_key[(f"serving_{BOTH_BRANCHES}", LEARNED)]
    pairs = {
        "all_frozen / all_finetuned": (frozen, tuned),
        "all_frozen / both_branches": (frozen, both),
        "all_finetuned / both_branches": (tuned, both),
        "learned / both_branches": (learned, both),
    }
    return {
        name: {
            "p50": a["p50_ms"] / b["p50_ms"],
            "throughput": a["examples_per_sec"] / b["examples_per_sec"],
            "cpu_p50": a["cpu_p50_ms"] / b["cpu_p50_ms"],
            "cpu_throughput": a["examples_per_cpu_sec"]
            / b["examples_per_cpu_sec"],
        }
        for name, (a, b) in pairs.items()
    }


def run_description(fv, detail: str, load_before, load_after) -> str:
    """Two lines: the model and timing (`detail` after the item counts),
    and the machine with its 1-minute load average before and after."""
    return (
        f"model: random UAF-Gumbel, C={fv.channels}, N={fv.num_blocks}, "
        f"L={fv.seq_len}, {fv.num_source_items} source / "
        f"{fv.num_target_items} target items, K={fv.top_k}; {detail}"
        f"{fv.rounds} interleaved rounds; "
        + ("XLA-compiled" if fv.jit_compile else "graph (no XLA)")
        + f"\nmachine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, tensorflow {tf.__version__}; 1-min load "
        f"average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )


def run_and_describe(argv, fv, measure, detail: str = ""):
    """Checks `argv`, prints the command, runs `measure(fv)` and prints
    `run_description`; returns `(result, load_before, load_after)`."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    print("command: " + " ".join([os.path.basename(sys.executable)] + sys.argv))
    load_before = os.getloadavg()
    result = measure(fv)
    load_after = os.getloadavg()
    print(run_description(fv, detail, load_before, load_after))
    return result, load_before, load_after


def main(argv, flag_values: flags.FlagValues = flags.FLAGS):
    fv = flag_values
    results, load_before, load_after = run_and_describe(argv, fv, benchmark)
    print(
        f"{'path':<14} {'policy':<13} {'tuned':>5} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'ex/s':>6} {'cpu p50 ms':>10} {'ex/cpu-s':>8}"
    )
    for r in results:
        print(
            f"{r['name'].removeprefix('serving_'):<14} {r['policy']:<13} "
            f"{r['finetune_fraction']:>5.2f} {r['p50_ms']:>7.2f} "
            f"{r['p99_ms']:>7.2f} {r['examples_per_sec']:>6.0f} "
            f"{r['cpu_p50_ms']:>10.2f} {r['examples_per_cpu_sec']:>8.0f}"
        )
    print(f"ratios (batch 1 = p50 latency, batch {fv.batch_size} = ex/s):")
    for name, ratio in ratios(results).items():
        print(
            f"  {name:<30} wall: batch-1 x{ratio['p50']:.2f}, "
            f"batch-{fv.batch_size} x{ratio['throughput']:.2f}; CPU time: "
            f"batch-1 x{ratio['cpu_p50']:.2f}, "
            f"batch-{fv.batch_size} x{ratio['cpu_throughput']:.2f}"
        )
    if fv.out:
        for r in results:
            r["load_average_1min"] = [load_before[0], load_after[0]]
        with open(fv.out, "w") as f:
            json.dump(results, f, indent=2)
        print(f"wrote {fv.out}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
