"""serving_latency: the graph and the XLA export timed side by side."""

import statistics

import pytest
import tensorflow as tf
from absl import app
from absl import flags

from launch.benchmarks import serving_latency as bench
from tests.launch.conditional_serving_test import TINY_MODEL_FLAGS


def test_compare_times_the_exports_in_interleaved_rounds(tmp_path):
    fv = flags.FlagValues()
    bench.define_flags(fv)
    fv(
        [
            "serving_latency",
            *TINY_MODEL_FLAGS,
            "--latency_requests=6",
            "--compare_xla_rounds=3",  # the older name of --compare_rounds
        ]
    )
    result = bench.compare_exports(fv, str(tmp_path))
    for name in ("graph", "xla"):
        assert result[name]["requests"] == 6  # 3 rounds x 2 requests
        assert 0 < result[name]["p50_ms"] <= result[name]["p99_ms"]
        assert result[name]["cpu_p50_ms"] >= 0
    assert len(result["round_ratios"]["xla"]) == 3
    assert result["median_ratio"] == {
        "xla": statistics.median(result["round_ratios"]["xla"])
    }
    # Both exports were written, the second one XLA-compiled.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph", "xla"]


def test_compare_times_constant_weight_exports_against_the_first(tmp_path):
    fv = flags.FlagValues()
    bench.define_flags(fv)
    fv(
        [
            "serving_latency",
            *TINY_MODEL_FLAGS,
            "--latency_requests=4",
            "--compare_rounds=2",
            "--compare_exports=xla,xla_constants,graph_constants",
        ]
    )
    result = bench.compare_exports(fv, str(tmp_path))
    assert set(result["median_ratio"]) == {"xla_constants", "graph_constants"}
    # The constants exports pass far fewer variables into a request.
    captured = {
        name: len(
            tf.saved_model.load(str(tmp_path / name / "1"))
            .signatures["serving_default"]
            .captured_inputs
        )
        for name in ("xla", "xla_constants", "graph_constants")
    }
    assert captured["xla_constants"] == captured["graph_constants"]
    assert captured["xla_constants"] < captured["xla"] / 2


def test_compare_refuses_unknown_exports(tmp_path):
    fv = flags.FlagValues()
    bench.define_flags(fv)
    fv(["serving_latency", "--compare_rounds=2", "--compare_exports=xla,tpu"])
    with pytest.raises(app.UsageError, match="--compare_exports"):
        bench.compare_exports(fv, str(tmp_path))
