"""The results archive: a fresh machine continues a grid from it."""

import dataclasses
import filecmp
import gzip
import json
import os
import sys

import numpy as np

from uaf_tf.experiments import archive
from uaf_tf.experiments import grid
from uaf_tf.experiments import instances
from uaf_tf.experiments import reproduction

FAKE = os.path.join(os.path.dirname(__file__), "fake_launch.py")


def _spec(tmp_path, out, seeds=(0, 1)):
    return grid.GridSpec(
        data_dir="data",
        out_dir=str(tmp_path / out),
        methods=("gumbel", "soft"),
        seeds=seeds,
        pretrain_flagfile="pre.cfg",
        popularity=False,
        python=sys.executable,
        finetune_script=FAKE,
        pretrain_script=FAKE,
        archive_dir=str(tmp_path / "archive"),
    )


def _run(spec, **kwargs):
    return reproduction.run_grid(
        grid.plan(spec), spec.out_dir, archive_dir=spec.archive_dir, **kwargs
    )


def _ran(spec):
    """Names of the cells whose fake launcher ran in `spec.out_dir`."""
    return sorted(
        cell.name
        for cell in grid.plan(spec)
        if os.path.exists(os.path.join(cell.run_dir, "invocations.txt"))
    )


def test_a_fresh_out_dir_continues_the_grid_from_the_archive(tmp_path):
    first = _spec(tmp_path, "machine1")
    _run(first, echo=print)
    archived = tmp_path / "archive"
    for cell in grid.plan(first):
        relative = os.path.relpath(cell.output, first.out_dir)
        assert filecmp.cmp(cell.output, archived / relative, shallow=False)
    # Nothing but the reports' files: no checkpoint, log or invocation.
    assert sorted(os.listdir(archived / "runs/gumbel/frac1.0/seed0")) == [
        "results.json"
    ]

    # Another machine, one more seed: the archived fine-tuning cells are
    # restored and skipped; pretraining runs again because the new seed's
    # cells need its checkpoint, and reproduces the archived result.
    lines = []
    second = _spec(tmp_path, "machine2", seeds=(0, 1, 2))
    _run(second, echo=lines.append)
    assert _ran(second) == [
        "pretrain",
        "runs/gumbel/frac1.0/seed2",
        "runs/soft/frac1.0/seed2",
    ]
    assert "Restored 4 finished cells from the archive" in lines[0]
    assert lines[1] == "7 cells: 4 done, 0 to resume, 3 to start."
    assert not any("Warning" in line for line in lines)
    runs, missing = reproduction.report.load_runs(grid.plan(second))
    assert (len(runs), missing) == (6, [])
    assert os.path.exists(archived / "runs/soft/frac1.0/seed2/results.json")

    # A third machine with every cell archived runs nothing, and the
    # pretraining results are restored for the report.
    third = _spec(tmp_path, "machine3", seeds=(0, 1, 2))
    _run(third, echo=print)
    assert _ran(third) == []
    assert os.path.exists(os.path.join(third.out_dir, "pretrain/results.json"))


def test_a_rerun_that_differs_from_the_archive_is_reported(tmp_path):
    _run(_spec(tmp_path, "machine1", seeds=(0,)), echo=print)
    path = tmp_path / "archive/pretrain/results.json"
    results = json.loads(path.read_text())
    results["valid"]["loss"] += 0.5
    path.write_text(json.dumps(results))

    lines = []
    _run(_spec(tmp_path, "machine2"), echo=lines.append)

    warnings = [line for line in lines if line.startswith("Warning")]
    assert len(warnings) == 1 and "pretrain differs" in warnings[0]
    assert json.loads(path.read_text())["valid"]["loss"] == 5.0


def test_test_instances_are_gzipped_byte_stably_and_restored(tmp_path):
    spec = _spec(tmp_path, "machine1", seeds=(0,))
    _run(spec, echo=print)
    cell = next(c for c in grid.plan(spec) if c.kind == grid.FINETUNE)
    ranks = np.array([3, 1, 120])
    instances.write_test_instances(
        cell.run_dir,
        index=np.array([5, 2, 9]),
        user=["u1", "u2", "u3"],
        sampled_rank=ranks - 1,
        full_rank=ranks * 10 - 1,
    )
    archive.save(cell, spec.out_dir, spec.archive_dir)
    relative = os.path.relpath(cell.run_dir, spec.out_dir)
    stored = tmp_path / "archive" / relative / "test_instances.tsv.gz"
    first = stored.read_bytes()
    archive.save(cell, spec.out_dir, spec.archive_dir)
    assert stored.read_bytes() == first  # No timestamp in the gzip header.
    with open(os.path.join(cell.run_dir, "test_instances.tsv"), "rb") as f:
        assert gzip.decompress(first) == f.read()

    fresh = _spec(tmp_path, "machine2", seeds=(0,))
    restored = archive.restore(
        grid.plan(fresh), fresh.out_dir, fresh.archive_dir
    )
    assert [c.name for c in restored] == [
        "pretrain",
        "runs/gumbel/frac1.0/seed0",
        "runs/soft/frac1.0/seed0",
    ]
    table = instances.read_test_instances(os.path.join(fresh.out_dir, relative))
    assert table["index"].tolist() == [2, 5, 9]
    assert sorted(table["sampled_rank"].tolist()) == [1, 3, 120]


def test_cells_finished_before_the_archive_existed_are_saved(tmp_path):
    spec = _spec(tmp_path, "machine1", seeds=(0,))
    grid.run_cells(grid.plan(spec), spec.out_dir, echo=print)  # No archive.
    assert not (tmp_path / "archive").exists()
    lines = []
    _run(spec, run=False, echo=lines.append)
    assert lines == [f"Archived 3 finished cells into {spec.archive_dir}."]
    assert (tmp_path / "archive/runs/soft/frac1.0/seed0/results.json").exists()


def test_the_plan_shows_archived_cells(tmp_path):
    _run(_spec(tmp_path, "machine1", seeds=(0,)), echo=print)
    fresh = _spec(tmp_path, "machine2", seeds=(0, 1))
    text = reproduction.describe_plan(
        grid.plan(fresh), fresh.archive_dir, fresh.out_dir
    )
    lines = text.splitlines()
    assert "[archived] runs/gumbel/frac1.0/seed0" in lines
    assert "[new] runs/gumbel/frac1.0/seed1" in lines
    assert lines[-1] == (
        f"5 cells: 0 done, 0 to resume, 2 to start, 3 in the archive "
        f"{fresh.archive_dir}."
    )
    assert "[new]" not in reproduction.describe_plan(
        grid.plan(_spec(tmp_path, "machine1", seeds=(0,)))
    )


def test_a_report_over_runs_from_two_cpu_models_says_so(tmp_path):
    # An existing pretraining run: the fake's pretraining results lack the
    # metrics the report's pretraining section reads.
    spec = dataclasses.replace(
        _spec(tmp_path, "machine1", seeds=(0,)),
        pretrained="pre",
        pretrain_flagfile=None,
    )
    _run(spec, echo=print)
    cells = [c for c in grid.plan(spec) if c.kind == grid.FINETUNE]
    for cell, cpu in zip(cells, ("AMD EPYC", "Intel(R) Xeon(R) Processor")):
        with open(os.path.join(cell.run_dir, "config.json"), "w") as f:
            json.dump({"method": cell.method, "environment": {"cpu": cpu}}, f)
    files = reproduction.write_report(spec, make_plots=False, echo=print)
    with open(files.markdown) as f:
        markdown = f.read()
    assert (
        "Machines of the finished runs: 1 on AMD EPYC, 1 on Intel(R) Xeon(R) "
        "Processor (config.json `environment.cpu`)"
    ) in markdown
    os.remove(os.path.join(cells[1].run_dir, "config.json"))
    files = reproduction.write_report(spec, make_plots=False, echo=print)
    with open(files.markdown) as f:
        assert "1 on AMD EPYC, 1 without a recorded CPU model" in f.read()


def test_a_run_over_part_of_the_archive_keeps_its_report(tmp_path):
    # As above, an existing pretraining run (the fake's lacks the metrics
    # the report's pretraining section reads).
    def spec(seeds):
        return dataclasses.replace(
            _spec(tmp_path, "machine1", seeds=seeds),
            pretrained="pre",
            pretrain_flagfile=None,
        )

    messages = []
    reproduction.reproduce(spec((0, 1)), make_plots=False, echo=print)
    report = tmp_path / "archive" / "results.md"
    full = report.read_text()
    assert "n seeds" in full and "| 2 |" in full

    # One seed of the same grid: its report covers 2 of the 4 cells.
    reproduction.reproduce(spec((1,)), make_plots=False, echo=messages.append)
    assert report.read_text() == full
    assert any(
        "holds 2 cells this command does not cover "
        "(runs/gumbel/frac1.0/seed0/results.json, ...)" in m
        for m in messages
    ), messages

    # The full command with --report_only rewrites it.
    os.remove(report)
    reproduction.reproduce(
        spec((0, 1)), run=False, make_plots=False, echo=print
    )
    assert report.read_text() == full
