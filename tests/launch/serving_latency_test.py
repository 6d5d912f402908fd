"""serving_latency: the graph and the XLA export timed side by side."""

import statistics

from absl import flags

from launch.benchmarks import serving_latency as bench
from tests.launch.conditional_serving_test import TINY_MODEL_FLAGS


def test_compare_xla_times_both_exports_in_interleaved_rounds(tmp_path):
    fv = flags.FlagValues()
    bench.define_flags(fv)
    fv(
        [
            "serving_latency",
            *TINY_MODEL_FLAGS,
            "--latency_requests=6",
            "--compare_xla_rounds=3",
        ]
    )
    result = bench.compare_xla(fv, str(tmp_path))
    for name in ("graph", "xla"):
        assert result[name]["requests"] == 6  # 3 rounds x 2 requests
        assert 0 < result[name]["p50_ms"] <= result[name]["p99_ms"]
        assert result[name]["cpu_p50_ms"] >= 0
    assert len(result["round_ratios"]) == 3
    assert result["median_ratio"] == statistics.median(result["round_ratios"])
    # Both exports were written, the second one XLA-compiled.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph", "xla"]
