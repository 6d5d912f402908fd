r"""Where a batch-1 request's time goes, part by part (prints figures; not a
test).

    python launch/benchmarks/serving_breakdown.py --jit_compile \
        [--out=/tmp/serving_breakdown.json]

Explains the all-frozen / both-branches batch-1 latency ratio that
`conditional_serving.py` reports. On the same random UAF-Gumbel model
(its flags: standard shape C=128, 8 blocks, L=30, 20K / 5K items; the
fine-tuned copies moved off the frozen weights), times
these functions of one request `ids [1, L]`, each a `tf.function` (XLA-
compiled with `--jit_compile`), interleaved round by round:

- `call`: `ids + 1`; calling a compiled function and reading its result;
- `policy`: the policy network and the sampler's argmax, `a [1, N]`;
- `frozen_blocks`: the embedding and every block's frozen branch called
  directly, `[1, L, C]`;
- `frozen_blocks_all_weights`: the same, with every fine-tuned copy's
  weights also passed into the call (used for nothing): what passing
  weights costs, apart from computing with them;
- `frozen_blocks_conditional`: the same blocks through the gated blocks'
  conditional path under an all-frozen policy (what serving runs), which
  passes both branches' weights: the difference to
  `frozen_blocks_all_weights` is what the conditionals cost;
- `both_branches`: the embedding and every block's two branches (the
  former path), `[1, L, C]`;
- `scoring`: `score_all_items` and the top-K of one user vector;
- `serve_all_frozen` and `serve_both_branches`: whole requests, as
  `conditional_serving.py` times them;
- `serve_all_frozen_constants` and `serve_both_branches_constants`: the
  same with the weights folded in as constants
  (`uaf_tf.serving.constant_weights`, `uaf-export --constant_weights`).

Prints each part's p50 (wall clock), the parts' sum next to the whole
request, what the weights' passing and the conditionals cost, the
all-frozen / both-branches ratio as measured, without the conditionals'
cost and with constant weights, and constant / variable weights for both
requests. About 40 CPU-seconds.
"""

import json
import os
import sys
import time

import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

# Run as a script: the repository root, for `launch.benchmarks`.
sys.path.insert(0, os.path.abspath(os.path.join(__file__, *[os.pardir] * 3)))
from launch.benchmarks import conditional_serving
from uaf_tf.serving.constant_weights import with_constant_weights

PARTS = (
    "call",
    "policy",
    "frozen_blocks",
    "frozen_blocks_all_weights",
    "frozen_blocks_conditional",
    "both_branches",
    "scoring",
    "serve_all_frozen",
    "serve_both_branches",
    "serve_all_frozen_constants",
    "serve_both_branches_constants",
)


def part_functions(model, seq_len: int, top_k: int, jit_compile: bool) -> dict:
    """`{part: tf.function(ids [1, L]) -> tensor}`; see the module doc."""
    num_blocks = model.num_blocks

    def frozen_blocks(ids):
        hidden = model.backbone.embed(ids)
        for gated in model.gated_blocks:
            hidden = gated.frozen(hidden, training=False)
        return hidden

    def frozen_blocks_all_weights(ids):
        # The frozen blocks, with every fine-tuned weight passed in too (as
        # the conditional path passes them), each used once, for nothing.
        unused = tf.add_n(
            [
                tf.reshape(weight, [-1])[0]
                for gated in model.gated_blocks
                for weight in gated.finetuned.weights
            ]
        )
        return frozen_blocks(ids) + 0.0 * unused

    def frozen_blocks_conditional(ids):
        hidden = model.backbone.embed(ids)
        freeze = tf.zeros([tf.shape(ids)[0]])
        for gated in model.gated_blocks:
            hidden = gated(hidden, freeze, training=False, hard=True)
        return hidden

    def both_branches(ids):
        hidden = model.backbone.embed(ids)
        policy = tf.zeros([tf.shape(ids)[0], num_blocks])
        for index, gated in enumerate(model.gated_blocks):
            hidden = gated(hidden, policy[:, index], training=False)
        return hidden

    def scoring(ids):
        # A user vector that depends on the request, so nothing is folded.
        user = tf.cast(ids[:, :1], tf.float32) * tf.ones([1, model.channels])
        scores = model.score_all_items(user)
        return tf.math.top_k(scores[:, 1:], k=top_k).indices

    def policy(ids):
        return model.choose_policy(model.policy_logits(ids), ids)

    serve = conditional_serving.inference_functions(
        model, seq_len, top_k, jit_compile
    )
    plain = {
        "call": lambda ids: ids + 1,
        "policy": policy,
        "frozen_blocks": frozen_blocks,
        "frozen_blocks_all_weights": frozen_blocks_all_weights,
        "frozen_blocks_conditional": frozen_blocks_conditional,
        "both_branches": both_branches,
        "scoring": scoring,
    }
    functions = {
        name: tf.function(fn, jit_compile=jit_compile)
        for name, fn in plain.items()
    }
    functions["serve_all_frozen"] = serve[conditional_serving.CONDITIONAL]
    functions["serve_both_branches"] = serve[conditional_serving.BOTH_BRANCHES]
    spec = tf.TensorSpec([1, seq_len], tf.int32)
    for path, name in (
        (conditional_serving.CONDITIONAL, "serve_all_frozen_constants"),
        (conditional_serving.BOTH_BRANCHES, "serve_both_branches_constants"),
    ):
        # The weights as part of the program, not inputs of every call.
        functions[name] = with_constant_weights(
            serve[path].python_function, [spec], jit_compile
        )
    return functions


def build_model(fv):
    """`conditional_serving.build_model`'s model under an all-frozen policy,
    its fine-tuned copies moved off the frozen weights (as training moves
    them), so no compiler can merge the two branches as equal."""
    model = conditional_serving.build_model(fv)
    conditional_serving.set_policy(model, conditional_serving.ALL_FROZEN)
    for gated in model.gated_blocks:
        for weight in gated.finetuned.weights:
            weight.assign(weight + 0.01)
    return model


def benchmark(fv) -> dict:
    """`{part: {"p50_ms", "p99_ms", "requests"}}`, timed interleaved."""
    model = build_model(fv)
    functions = part_functions(model, fv.seq_len, fv.top_k, fv.jit_compile)
    rng = np.random.default_rng(fv.seed)
    requests = [
        tf.constant(
            rng.integers(1, fv.num_source_items + 1, [1, fv.seq_len]), "int32"
        )
        for _ in range(16)
    ]
    seconds = {name: [] for name in PARTS}
    for round_index in range(fv.rounds + 1):  # round 0 warms up, untimed
        shift = round_index % len(PARTS)
        for name in PARTS[shift:] + PARTS[:shift]:
            fn = functions[name]
            for i in range(fv.latency_requests):
                request = requests[(round_index * 7 + i) % len(requests)]
                start = time.perf_counter()
                tf.nest.map_structure(lambda t: t.numpy(), fn(request))
                if round_index:
                    seconds[name].append(time.perf_counter() - start)
    return {
        name: {
            "p50_ms": float(np.percentile(1e3 * np.array(s), 50)),
            "p99_ms": float(np.percentile(1e3 * np.array(s), 99)),
            "requests": len(s),
        }
        for name, s in seconds.items()
    }


def summary(parts: dict) -> dict:
    """What the weights' passing and the conditionals cost, and the
    all-frozen / both-branches ratio three ways (ms and plain ratios, from
    the p50s)."""
    p50 = {name: part["p50_ms"] for name, part in parts.items()}
    frozen, both = p50["serve_all_frozen"], p50["serve_both_branches"]
    conditionals_ms = (
        p50["frozen_blocks_conditional"] - p50["frozen_blocks_all_weights"]
    )
    return {
        "unused_weights_ms": p50["frozen_blocks_all_weights"]
        - p50["frozen_blocks"],
        "conditionals_ms": conditionals_ms,
        # One call's overhead is in every part; count it once.
        "sum_of_parts_all_frozen_ms": p50["policy"]
        + p50["frozen_blocks_conditional"]
        + p50["scoring"]
        - 2 * p50["call"],
        "all_frozen_over_both_branches": frozen / both,
        "all_frozen_over_both_branches_free_conditionals": (
            frozen - conditionals_ms
        )
        / both,
        "all_frozen_over_both_branches_constants": (
            p50["serve_all_frozen_constants"]
            / p50["serve_both_branches_constants"]
        ),
        "constants_over_variables_all_frozen": (
            p50["serve_all_frozen_constants"] / frozen
        ),
        "constants_over_variables_both_branches": (
            p50["serve_both_branches_constants"] / both
        ),
    }


def main(argv, flag_values: flags.FlagValues = flags.FLAGS):
    fv = flag_values
    parts, load_before, load_after = conditional_serving.run_and_describe(
        argv, fv, benchmark, "batch 1; "
    )
    for name, part in parts.items():
        print(
            f"  {name:<27} p50 {part['p50_ms']:7.3f} ms   "
            f"p99 {part['p99_ms']:7.3f} ms"
        )
    s = summary(parts)
    print(
        f"passing the {fv.num_blocks} fine-tuned copies' weights into a call "
        f"costs {s['unused_weights_ms']:.3f} ms "
        "(frozen_blocks_all_weights - frozen_blocks); the conditionals "
        f"{s['conditionals_ms']:.3f} ms more "
        "(frozen_blocks_conditional - frozen_blocks_all_weights)"
    )
    print(
        "all-frozen request: measured "
        f"{parts['serve_all_frozen']['p50_ms']:.3f} ms, parts' sum "
        f"{s['sum_of_parts_all_frozen_ms']:.3f} ms"
    )
    print(
        "all-frozen / both branches, batch-1 p50: "
        f"{s['all_frozen_over_both_branches']:.2f} measured, "
        f"{s['all_frozen_over_both_branches_free_conditionals']:.2f} "
        "if the conditionals cost nothing, "
        f"{s['all_frozen_over_both_branches_constants']:.2f} with the "
        "weights as constants"
    )
    print(
        "weights as constants / as variables, batch-1 p50: all frozen "
        f"{s['constants_over_variables_all_frozen']:.2f}, both branches "
        f"{s['constants_over_variables_both_branches']:.2f}"
    )
    if fv.out:
        with open(fv.out, "w") as f:
            json.dump(
                {
                    "parts": parts,
                    "summary": s,
                    "jit_compile": fv.jit_compile,
                    "load_average_1min": [load_before[0], load_after[0]],
                },
                f,
                indent=2,
            )
        print(f"wrote {fv.out}")


if __name__ == "__main__":
    conditional_serving.define_flags()
    app.run(main)
