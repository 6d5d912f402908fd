"""serving_breakdown times a request's parts, and the parts compute what
serving computes."""

import json

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from launch.benchmarks import conditional_serving
from launch.benchmarks import serving_breakdown as bench
from tests.launch.conditional_serving_test import TINY_MODEL_FLAGS


def _flags(*extra):
    fv = flags.FlagValues()
    conditional_serving.define_flags(fv)
    fv(["serving_breakdown", *TINY_MODEL_FLAGS, *extra])
    return fv


def test_tiny_run_writes_every_part_and_the_summary(tmp_path):
    out = tmp_path / "breakdown.json"
    fv = _flags("--rounds=2", "--latency_requests=3", f"--out={out}")
    bench.main(["serving_breakdown"], flag_values=fv)
    written = json.loads(out.read_text())
    parts = written["parts"]
    assert list(parts) == list(bench.PARTS)
    for part in parts.values():
        assert part["requests"] == 2 * 3  # rounds x requests
        assert 0 < part["p50_ms"] <= part["p99_ms"]
    p50 = {name: part["p50_ms"] for name, part in parts.items()}
    summary = written["summary"]
    assert summary["conditionals_ms"] == pytest.approx(
        p50["frozen_blocks_conditional"] - p50["frozen_blocks_all_weights"],
        rel=1e-12,
    )
    assert summary["unused_weights_ms"] == pytest.approx(
        p50["frozen_blocks_all_weights"] - p50["frozen_blocks"], rel=1e-12
    )
    assert summary["all_frozen_over_both_branches"] == pytest.approx(
        p50["serve_all_frozen"] / p50["serve_both_branches"], rel=1e-12
    )


def test_the_block_parts_compute_the_same_hidden_states():
    for jit_compile in (False, True):
        fv = _flags()
        # Its fine-tuned copies differ from the frozen blocks, so running
        # the wrong branch shows.
        model = bench.build_model(fv)
        functions = bench.part_functions(model, 5, 3, jit_compile)
        ids = tf.constant(
            np.random.default_rng(1).integers(1, 51, [1, 5]), "int32"
        )
        frozen = functions["frozen_blocks"](ids).numpy()
        # The conditional path under an all-frozen policy runs the frozen
        # branch; both branches mixed with a = 0 give it bit for bit.
        np.testing.assert_allclose(
            functions["frozen_blocks_conditional"](ids), frozen, atol=1e-6
        )
        np.testing.assert_array_equal(functions["both_branches"](ids), frozen)
        np.testing.assert_array_equal(
            functions["frozen_blocks_all_weights"](ids), frozen
        )
        tuned = model.encode(ids, tf.ones([1, 2]), hard_policy=True)
        assert not np.allclose(tuned, frozen.mean(axis=1), atol=1e-3)
        np.testing.assert_array_equal(
            functions["policy"](ids), np.zeros([1, 2], "float32")
        )
        items, policy = functions["serve_all_frozen"](ids)
        assert items.shape == (1, 3) and not np.any(policy)
        # With the weights as constants, each request is served the same.
        for path in ("serve_all_frozen", "serve_both_branches"):
            want_items, want_policy = functions[path](ids)
            got_items, got_policy = functions[f"{path}_constants"](ids)
            np.testing.assert_array_equal(got_items, want_items)
            np.testing.assert_array_equal(got_policy, want_policy)
