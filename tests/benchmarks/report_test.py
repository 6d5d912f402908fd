"""report.py --quick writes the issue-10 schema; shares use its own rate.

One tiny run (about a CPU-minute); no time is asserted, only what the
report derives from the times it measured.
"""

import json

import pytest
from absl import flags

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
        "gemm_ceiling_pretrain_full_softmax",
        "gemm_ceiling_finetune_gumbel",
        *train,
        *[name + "_bf16" for name in train],
        *baselines,
        "pipeline_epoch_gumbel",
        "bare_step_gumbel",
        "evaluation_gumbel",
        *["serving_conditional"] * 3,
        "serving_both_branches",
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
    assert [r["policy"] for r in serving] == [
        "all_frozen",
        "all_finetuned",
        "learned",
        "learned",
    ]
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
        assert r["share_of_matmul"] == pytest.approx(
            r["gflops_per_sec"] / rate, rel=1e-12
        )
    # Every train step but none of serving and evaluation counts FLOPs.
    assert counted == len(records) - 5
    steps = {r["name"]: r for r in records if "step_ms" in r}
    # A step's GFLOP/s is its FLOPs over its median time: FLOPs/step of
    # UAF-RL over UAF-Gumbel is the conv-pass count's ratio.
    gumbel, rl = steps["finetune_gumbel"], steps["finetune_rl"]
    assert (rl["gflops_per_sec"] * rl["step_ms"]) / (
        gumbel["gflops_per_sec"] * gumbel["step_ms"]
    ) == pytest.approx(rl["conv_passes"] / gumbel["conv_passes"])


def test_targets_and_speedups_come_from_the_records(quick_report):
    records, text = quick_report
    rows = {t["target"]: t for t in report.targets(records)}
    by_name = {(r["name"], r.get("policy")): r for r in records}
    rl = by_name[("finetune_rl", None)]["step_ms"]
    gumbel = by_name[("finetune_gumbel", None)]["step_ms"]
    row = rows["UAF-RL step time / UAF-Gumbel step time"]
    assert row["value"] == pytest.approx(rl / gumbel)
    assert row["met"] == (rl / gumbel <= report.TARGET_RL_OVER_GUMBEL)
    frozen = by_name[("serving_conditional", "all_frozen")]
    tuned = by_name[("serving_conditional", "all_finetuned")]
    row = rows["serving batch-1 p50: all-frozen / all-fine-tuned"]
    assert row["value"] == pytest.approx(frozen["p50_ms"] / tuned["p50_ms"])
    pipe = by_name[("pipeline_epoch_gumbel", None)]
    bare = by_name[("bare_step_gumbel", None)]
    row = rows["end-to-end pipeline / bare train step throughput"]
    assert row["value"] == pytest.approx(
        pipe["examples_per_sec"] / bare["examples_per_sec"]
    )
    assert len(rows) == 10
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
