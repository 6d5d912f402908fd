"""build_spread.py: builds timed in child processes, per allocator."""

import pytest
from absl import app
from absl import flags

from launch.benchmarks import build_spread as bench


def _flags(*extra):
    fv = flags.FlagValues()
    bench.define_flags(fv)
    fv(["build_spread", *extra])
    return fv


def test_summary_takes_medians_and_shares_over_builds():
    builds = [
        {
            "step_ms": ms,
            "spread": spread,
            "gflops_per_step": 2.0,
            "matmul_gflops": 10.0,
            "loss": 1.5,
        }
        for ms, spread in ((500.0, 0.1), (400.0, 0.3), (1000.0, 0.2))
    ]
    s = bench.summarise(builds)
    assert (s["builds"], s["median_ms"], s["min_ms"], s["max_ms"]) == (
        3,
        500.0,
        400.0,
        1000.0,
    )
    # 2 GFLOP in 0.5 s is 4 GFLOP/s, 0.4 of a 10 GFLOP/s matmul.
    assert s["median_share"] == pytest.approx(0.4)
    assert s["median_spread"] == pytest.approx(0.2)
    assert s["losses"] == [1.5]


def test_finds_a_library_in_an_extra_directory(tmp_path):
    library = tmp_path / "libjemalloc.so.2"
    library.write_bytes(b"")
    assert bench.find_allocator("jemalloc", [str(tmp_path)]) == str(library)


def test_unknown_allocator_or_method_is_a_usage_error():
    with pytest.raises(app.UsageError, match="--allocators"):
        bench.compare(_flags("--allocators=glibc,hoard"))
    with pytest.raises(app.UsageError, match="--methods"):
        bench.compare(_flags("--methods=gumbel,bogus"))


def test_tiny_run_times_every_build_in_a_child_process():
    fv = _flags(
        "--quick",
        "--rounds=1",
        "--builds=2",
        "--steps=2",
        "--warmup=1",
        "--allocators=glibc",
        "--methods=gumbel",
    )
    lines = []
    results = bench.compare(fv, progress=lines.append)
    summary = results["glibc"]["gumbel"]
    assert summary["builds"] == 2
    assert 0 < summary["min_ms"] <= summary["median_ms"] <= summary["max_ms"]
    assert summary["median_share"] > 0
    assert summary["median_spread"] >= 0
    # Every build starts from the same weights and seed: one loss.
    assert len(summary["losses"]) == 1
    assert lines and lines[0].startswith("glibc: gumbel")
