"""gemm_ceiling counts the FLOPs the step benchmarks count, and times them."""

import pytest

from launch.benchmarks import finetune_throughput as ft
from launch.benchmarks import gemm_ceiling
from launch.benchmarks import pretrain_throughput as pt
from uaf_tf.layers import samplers


def _flops(gemms):
    return sum(g.count * g.flops for g in gemms)


@pytest.mark.parametrize("num_sampled", [0, 1024])
def test_pretrain_gemms_are_the_counted_step_flops(num_sampled):
    w = pt.Workload(num_sampled=num_sampled)
    assert _flops(gemm_ceiling.pretrain_gemms(w)) == pt.step_flops(w)[0]


@pytest.mark.parametrize("method", samplers.METHODS)
def test_finetune_gemms_are_the_counted_step_flops(method):
    w = ft.Workload()
    assert (
        _flops(gemm_ceiling.finetune_gemms(w, method))
        == (ft.step_flops(w, method)[0])
    )


def test_baselines_have_no_uaf_gemms():
    with pytest.raises(ValueError, match="Not a UAF method"):
        gemm_ceiling.finetune_gemms(ft.Workload(), "finetune-all")


def test_ceiling_sums_each_gemm_by_its_count():
    gemms = [
        gemm_ceiling.Gemm("a", 16, 8, 4, count=3),
        gemm_ceiling.Gemm("b", 8, 16, 8, count=0),  # not done: not timed
        gemm_ceiling.Gemm("c", 32, 4, 8, count=1),
    ]
    r = gemm_ceiling.ceiling(gemms, repeats=2)
    assert [g["name"] for g in r["gemms"]] == ["a", "c"]
    assert r["gflops_per_step"] == pytest.approx(
        (3 * 2 * 16 * 8 * 4 + 2 * 32 * 4 * 8) / 1e9
    )
    assert r["gflops_per_sec"] == pytest.approx(
        r["gflops_per_step"] / r["seconds_per_step"]
    )
