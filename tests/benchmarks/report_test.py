"""report.py --quick writes the issue-10 schema; shares use its own rate.

One tiny run (about a CPU-minute); no time is asserted, only what the
report derives from the times it measured.
"""

import json
import statistics

import pytest
from absl import flags

from launch.benchmarks import gemm_ceiling
from launch.benchmarks import report


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    fv = flags.FlagValues()
    report.define_flags(fv)
    fv(["report", "--quick", f"--out={out}"])
    report.main(["report"], flag_values=fv)
    records = json.loads((out / "report.json").read_text())
    # The running copy of the records is gone once the report is written.
    assert not (out / report.PARTIAL_FILE).exists()
    return records, (out / "report.md").read_text()


def test_every_measurement_is_there(quick_report):
    records, _ = quick_report
    names = [r["name"] for r in records]
    train = [
        "pretrain_full_softmax",
        "pretrain_sampled_softmax",
        "finetune_gumbel",
        "finetune_soft",
        "finetune_rl",
    ]
    baselines = [
        "finetune_finetune-zero",
        "finetune_finetune-cls",
        "finetune_finetune-last1",
        "finetune_finetune-last2",
        "finetune_finetune-all",
    ]
    assert names == [
        "matmul_float32",
        "matmul_bfloat16",
        *train,
        *[name + "_bf16" for name in train],
        *baselines,
        "interleaved_matmul_float32",
        "interleaved_pretrain_full_softmax",
        "interleaved_finetune_gumbel",
        "interleaved_finetune_rl",
        "interleaved_gemm_ceiling_pretrain_full_softmax",
        "interleaved_gemm_ceiling_finetune_gumbel",
        "pipeline_epoch_gumbel",
        "bare_step_gumbel",
        "evaluation_gumbel",
        *["serving_conditional"] * 3,
        "serving_both_branches",
        *["serving_xla_conditional"] * 3,
        "serving_xla_both_branches",
        "exported_serving_graph",
        "exported_serving_graph_constants",
        "exported_serving_xla",
        "exported_serving_xla_constants",
        "matmul_float32_end",
    ]
    for r in records:
        assert {
            "name",
            "examples_per_sec",
            "gflops_per_sec",
            "share_of_matmul",
        } <= set(r)
    serving = [r for r in records if r["name"].startswith("serving_")]
    assert [r["policy"] for r in serving] == 2 * [
        "all_frozen",
        "all_finetuned",
        "learned",
        "learned",
    ]
    assert [r["jit_compile"] for r in serving] == 4 * [False] + 4 * [True]
    for r in serving:
        assert 0 < r["p50_ms"] <= r["p99_ms"]
    bf16 = [r for r in records if r["name"].endswith("_bf16")]
    assert {r["precision"] for r in bf16} == {"mixed_bfloat16"}


def test_shares_are_over_the_same_run_matmul_rate(quick_report):
    records, _ = quick_report
    rate = records[0]["gflops_per_sec"]
    assert records[0]["name"] == "matmul_float32" and rate > 0
    counted = 0
    for r in records:
        if r["gflops_per_sec"] is None:
            assert r["share_of_matmul"] is None
            continue
        counted += 1
        if r["name"].startswith("interleaved_") and "round_shares" in r:
            continue  # over their own rounds' rate: the next test
        assert r["share_of_matmul"] == pytest.approx(
            r["gflops_per_sec"] / rate, rel=1e-12
        )
    # Every train step but none of serving and evaluation counts FLOPs.
    assert counted == len(records) - 9 - 4  # 4 exported-serving records
    steps = {r["name"]: r for r in records if "step_ms" in r}
    # A step's GFLOP/s is its FLOPs over its median time: FLOPs/step of
    # UAF-RL over UAF-Gumbel is the conv-pass count's ratio.
    gumbel, rl = steps["finetune_gumbel"], steps["finetune_rl"]
    assert (rl["gflops_per_sec"] * rl["step_ms"]) / (
        gumbel["gflops_per_sec"] * gumbel["step_ms"]
    ) == pytest.approx(rl["conv_passes"] / gumbel["conv_passes"])


def test_interleaved_shares_are_over_each_rounds_matmul_rate(quick_report):
    records, _ = quick_report
    r = {rec["name"]: rec for rec in records}
    matmul = r["interleaved_matmul_float32"]["round_gflops_per_sec"]
    assert len(matmul) == r["interleaved_matmul_float32"]["rounds"] == 2
    for name in (
        "pretrain_full_softmax",
        "finetune_gumbel",
        "finetune_rl",
        "gemm_ceiling_pretrain_full_softmax",
        "gemm_ceiling_finetune_gumbel",
    ):
        rec = r[f"interleaved_{name}"]
        if name in r:
            # The same counted FLOPs as the sequential record of that step.
            seq = r[name]
            assert rec["gflops_per_step"] == pytest.approx(
                seq["gflops_per_sec"] * seq["step_ms"] / 1e3
            )
        expected = [
            rec["gflops_per_step"] / (ms / 1e3) / m
            for ms, m in zip(rec["round_step_ms"], matmul)
        ]
        assert rec["round_shares"] == pytest.approx(expected)
        assert rec["share_of_matmul"] == pytest.approx(
            statistics.median(expected)
        )
    # A ceiling counts the FLOPs of its step's matrix products.
    quick = report.Settings.quick()
    for step, gemms in (
        ("pretrain_full_softmax", gemm_ceiling.pretrain_gemms(quick.pretrain)),
        (
            "finetune_gumbel",
            gemm_ceiling.finetune_gemms(quick.finetune, "gumbel"),
        ),
    ):
        ceiling = r[f"interleaved_gemm_ceiling_{step}"]
        assert ceiling["gflops_per_step"] == pytest.approx(
            sum(g.count * g.flops for g in gemms) / 1e9
        )


def test_targets_and_speedups_come_from_the_records(quick_report):
    records, text = quick_report
    rows = {t["target"]: t for t in report.targets(records)}
    by_name = {(r["name"], r.get("policy")): r for r in records}
    # RL/Gumbel: the median of the interleaved rounds' step-time ratios.
    rl = by_name[("interleaved_finetune_rl", None)]["round_step_ms"]
    gumbel = by_name[("interleaved_finetune_gumbel", None)]["round_step_ms"]
    ratio = statistics.median(a / b for a, b in zip(rl, gumbel))
    row = rows["UAF-RL step time / UAF-Gumbel step time"]
    assert row["value"] == pytest.approx(ratio)
    assert row["met"] == (ratio <= report.TARGET_RL_OVER_GUMBEL)
    assert row["how"] == "interleaved, median of 2 rounds"
    share = rows["UAF-Gumbel step: share of the matmul rate"]
    assert (
        share["value"]
        == (by_name[("interleaved_finetune_gumbel", None)]["share_of_matmul"])
    )
    frozen = by_name[("serving_conditional", "all_frozen")]
    tuned = by_name[("serving_conditional", "all_finetuned")]
    row = rows["graph serving batch-1 p50: all-frozen / all-fine-tuned"]
    assert row["value"] == pytest.approx(frozen["p50_ms"] / tuned["p50_ms"])
    # XLA-compiled serving has its own rows, in wall-clock and CPU time.
    frozen = by_name[("serving_xla_conditional", "all_frozen")]
    both = by_name[("serving_xla_both_branches", "learned")]
    row = rows[
        "XLA serving batch-256 throughput (CPU time): all-frozen / "
        + report.BOTH
    ]
    assert row["value"] == pytest.approx(
        frozen["examples_per_cpu_sec"] / both["examples_per_cpu_sec"]
    )
    assert row["met"] == (row["value"] >= report.TARGET_FROZEN_THROUGHPUT)
    pipe = by_name[("pipeline_epoch_gumbel", None)]
    bare = by_name[("bare_step_gumbel", None)]
    row = rows["end-to-end pipeline / bare train step throughput"]
    pipe_rates = pipe["round_examples_per_sec"]
    bare_rates = bare["round_examples_per_sec"]
    assert len(pipe_rates) == len(bare_rates) == 2
    assert row["value"] == pytest.approx(
        statistics.median(p / b for p, b in zip(pipe_rates, bare_rates))
    )
    assert pipe["examples_per_sec"] == pytest.approx(
        statistics.median(pipe_rates)
    )
    # Each epoch's time splits into waiting for input and train steps.
    for rec, rates in ((pipe, pipe_rates), (bare, bare_rates)):
        assert len(rec["round_time_split"]) == len(rates)
        for split, rate in zip(rec["round_time_split"], rates):
            assert split["seconds"] == pytest.approx(
                rec["examples_per_epoch"] / rate
            )
            parts = ("input_seconds", "step_seconds", "release_seconds")
            assert sum(split[p] for p in parts) <= split["seconds"]
            assert 0 < split["longest_step"] <= split["step_seconds"]
    # 2 shares, 2 ceilings, RL, pipeline; serving: 2 compilations x 2
    # comparisons x 2 clocks x (latency, throughput).
    assert len(rows) == 6 + 16
    ups = report.speedups(records)
    assert set(ups) == {
        "pretrain_full_softmax",
        "pretrain_sampled_softmax",
        "finetune_gumbel",
        "finetune_soft",
        "finetune_rl",
    }
    assert ups["finetune_gumbel"] == pytest.approx(
        by_name[("finetune_gumbel_bf16", None)]["examples_per_sec"]
        / by_name[("finetune_gumbel", None)]["examples_per_sec"]
    )
    assert "## Targets" in text
    for target in rows:
        assert f"| {target} |" in text
    assert "mixed_bfloat16 / float32" in text


def test_exported_serving_is_timed_against_the_graph_export(quick_report):
    records, text = quick_report
    exported = [
        r for r in records if r["name"].startswith(report.EXPORTED_SERVING)
    ]
    assert [r["reference"] for r in exported] == 4 * ["graph"]
    assert exported[0]["p50_over_reference"] == 1.0
    for r in exported:
        assert r["policy"] == "learned"
        assert 0 < r["p50_ms"] <= r["p99_ms"]
        assert r["requests"] == 2  # 1 round x 2 requests
        assert r["saved_model_mb"] > 0
    for r in exported[1:]:
        assert r["p50_over_reference"] == statistics.median(r["round_ratios"])
        name = r["name"].removeprefix(report.EXPORTED_SERVING)
        assert f"| {name} | {r['p50_ms']:.2f} |" in text
