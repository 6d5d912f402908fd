"""conditional_serving times the four inference variants, interleaved."""

import json

import numpy as np
import tensorflow as tf
from absl import flags

from launch.benchmarks import conditional_serving as bench

# A model small enough for a test, in both serving benchmarks' flags.
TINY_MODEL_FLAGS = (
    "--channels=8",
    "--num_blocks=2",
    "--seq_len=5",
    "--num_source_items=50",
    "--num_target_items=20",
    "--top_k=3",
)


def test_tiny_run_writes_every_variant(tmp_path):
    fv = flags.FlagValues()
    bench.define_flags(fv)
    out = tmp_path / "serving.json"
    fv(
        [
            "conditional_serving",
            *TINY_MODEL_FLAGS,
            "--rounds=2",
            "--latency_requests=3",
            "--batch_size=4",
            "--throughput_batches=1",
            f"--out={out}",
        ]
    )
    bench.main(["conditional_serving"], flag_values=fv)
    results = json.loads(out.read_text())
    assert [(r["name"], r["policy"]) for r in results] == [
        ("serving_conditional", "all_frozen"),
        ("serving_conditional", "all_finetuned"),
        ("serving_conditional", "learned"),
        ("serving_both_branches", "learned"),
    ]
    for r in results:
        assert r["latency_requests"] == 2 * 3  # rounds x requests
        assert 0 < r["p50_ms"] <= r["p99_ms"]
        assert r["examples_per_sec"] > 0 and r["examples_per_cpu_sec"] > 0
        assert r["cpu_p50_ms"] >= 0
    # The forcing bias decides every action; the learned policy is the
    # same network's argmax under both paths.
    assert results[0]["finetune_fraction"] == 0.0
    assert results[1]["finetune_fraction"] == 1.0
    assert results[2]["finetune_fraction"] == results[3]["finetune_fraction"]
    ratios = bench.ratios(results)
    assert ratios["all_frozen / all_finetuned"]["p50"] == (
        results[0]["p50_ms"] / results[1]["p50_ms"]
    )


def test_xla_compiled_functions_serve_what_the_graph_serves():
    fv = flags.FlagValues()
    bench.define_flags(fv)
    fv(
        [
            "conditional_serving",
            *TINY_MODEL_FLAGS,
        ]
    )
    model = bench.build_model(fv)
    graph = bench.inference_functions(model, 5, 3)
    xla = bench.inference_functions(model, 5, 3, jit_compile=True)
    ids = tf.constant(np.random.default_rng(0).integers(1, 51, [6, 5]), "int32")
    for policy in (bench.ALL_FROZEN, bench.ALL_FINETUNED, bench.LEARNED):
        bench.set_policy(model, policy)
        for path in (bench.CONDITIONAL, bench.BOTH_BRANCHES):
            want_items, want_policy = graph[path](ids)
            got_items, got_policy = xla[path](ids)
            np.testing.assert_array_equal(got_policy, want_policy)
            np.testing.assert_array_equal(got_items, want_items)
