"""Grid planning, skip / resume / failure handling with a fake launcher."""

import json
import os
import sys

import pytest

from uaf_tf.experiments import grid
from uaf_tf.experiments import reproduction

FAKE = os.path.join(os.path.dirname(__file__), "fake_launch.py")


def _spec(out_dir, **overrides):
    kwargs = dict(
        data_dir="data",
        out_dir=str(out_dir),
        methods=("gumbel", "soft"),
        seeds=(0, 1),
        pretrained="pre",
        popularity=False,
        finetune_flagfile="quick.cfg",
        extra_finetune_flags=("--epochs=1",),
        python=sys.executable,
        finetune_script=FAKE,
        pretrain_script=FAKE,
    )
    kwargs.update(overrides)
    return grid.GridSpec(**kwargs)


def _invocations(cell):
    path = os.path.join(cell.run_dir, "invocations.txt")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return f.read().splitlines()


def test_plan_order_and_commands(tmp_path):
    spec = _spec(
        tmp_path,
        pretrained=None,
        pretrain_flagfile="pre.cfg",
        popularity=True,
        train_fractions=(1.0, 0.5),
    )
    cells = grid.plan(spec)
    assert [c.name for c in cells] == [
        "pretrain",
        "popularity/pretrain",
        "popularity/finetune-frac1.0",
        "popularity/finetune-frac0.5",
        "runs/gumbel/frac1.0/seed0",
        "runs/soft/frac1.0/seed0",
        "runs/gumbel/frac1.0/seed1",
        "runs/soft/frac1.0/seed1",
        "runs/gumbel/frac0.5/seed0",
        "runs/soft/frac0.5/seed0",
        "runs/gumbel/frac0.5/seed1",
        "runs/soft/frac0.5/seed1",
    ]
    pretrain_dir = os.path.join(str(tmp_path), "pretrain")
    cell = cells[-1]
    assert cell.argv == (
        sys.executable,
        FAKE,
        "--flagfile=quick.cfg",
        "--method=soft",
        "--seed=1",
        "--train_fraction=0.5",
        "--data_dir=data",
        f"--pretrained={pretrain_dir}",
        f"--run_dir={os.path.join(str(tmp_path), 'runs/soft/frac0.5/seed1')}",
        "--epochs=1",
    )
    assert cell.depends_on == ("pretrain",)
    assert cells[1].depends_on == ("pretrain",)
    assert cells[2].depends_on == ()  # Target popularity needs no model.


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(pretrain_flagfile="p.cfg"), "exactly one"),
        (dict(pretrained=None), "exactly one"),
        (dict(seeds=(0, 0)), "repeats"),
        (dict(methods=()), "non-empty"),
        (dict(train_fractions=(0.0,)), "\\(0, 1\\]"),
    ],
)
def test_spec_validation(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        _spec(tmp_path, **overrides)


def test_skip_resume_and_failure(tmp_path):
    spec = _spec(tmp_path, methods=("gumbel", "interrupt", "crash"))
    cells = {c.name: c for c in grid.plan(spec)}
    done = cells["runs/gumbel/frac1.0/seed1"]
    os.makedirs(done.run_dir)
    with open(done.output, "w") as f:
        json.dump({"test": {}}, f)
    lines = []

    outcomes = grid.run_cells(
        list(cells.values()),
        spec.out_dir,
        headline=reproduction.headline,
        echo=lines.append,
    )

    status = {o.cell.name: o.status for o in outcomes}
    assert status == {
        "runs/gumbel/frac1.0/seed0": "ok",
        "runs/interrupt/frac1.0/seed0": "failed",
        "runs/crash/frac1.0/seed0": "failed",
        "runs/gumbel/frac1.0/seed1": "skipped",
        "runs/interrupt/frac1.0/seed1": "failed",
        "runs/crash/frac1.0/seed1": "failed",
    }
    assert _invocations(done) == []  # Finished cells are never rerun.
    crash = next(o for o in outcomes if o.cell.name.startswith("runs/crash"))
    assert crash.detail.startswith("exit code 3")
    assert "planted failure" in crash.detail
    with open(crash.log) as f:
        assert "planted failure" in f.read()
    assert lines[0] == "6 cells: 1 done, 0 to resume, 5 to start."
    first = next(line for line in lines if "done in" in line)
    assert first.startswith("[1/5] runs/gumbel/frac1.0/seed0 done in")
    assert "test sampled/mrr@5 0.1000 hr@5 0.2000" in first
    assert "1 finished (0 failed), 4 to go" in first
    assert "ETA" in first
    assert any(f"FAILED (exit code 3); see {crash.log}" in x for x in lines)

    # The interrupted cells left checkpoints: a rerun resumes exactly them
    # and retries the crashing ones; nothing else runs again.
    interrupted = cells["runs/interrupt/frac1.0/seed0"]
    assert interrupted.state() == grid.RESUME
    assert interrupted.command()[-1] == "--resume"
    lines.clear()
    outcomes = grid.run_cells(
        list(cells.values()), spec.out_dir, echo=lines.append
    )
    status = {o.cell.name: o.status for o in outcomes}
    assert status["runs/interrupt/frac1.0/seed0"] == "ok"
    assert status["runs/gumbel/frac1.0/seed0"] == "skipped"
    assert lines[0] == "6 cells: 2 done, 2 to resume, 2 to start."
    calls = _invocations(interrupted)
    assert len(calls) == 2 and "--resume" not in calls[0]
    assert calls[1].endswith("--resume")
    assert len(_invocations(cells["runs/gumbel/frac1.0/seed0"])) == 1


def test_failed_pretraining_blocks_the_cells_that_need_it(tmp_path):
    spec = _spec(
        tmp_path,
        pretrained=None,
        pretrain_flagfile="p.cfg",
        # The fake pretrain "method" is parsed from this flag.
        extra_pretrain_flags=("--method=crash",),
        methods=("gumbel",),
        seeds=(0,),
    )
    outcomes = grid.run_cells(grid.plan(spec), spec.out_dir, echo=print)
    assert [(o.cell.name, o.status) for o in outcomes] == [
        ("pretrain", "failed"),
        ("runs/gumbel/frac1.0/seed0", "blocked"),
    ]


def test_reproduce_reports_partial_results(tmp_path):
    spec = _spec(tmp_path, methods=("gumbel", "crash"))
    outcomes, files = reproduction.reproduce(spec, echo=print)
    assert sum(o.status == "failed" for o in outcomes) == 2
    assert files.missing == [
        "runs/crash/frac1.0/seed0",
        "runs/crash/frac1.0/seed1",
    ]
    with open(files.markdown) as f:
        markdown = f.read()
    # Seeds 0 and 1 of the fake: MRR@5 0.10 and 0.11, HR@5 twice that.
    assert "| UAF-Gumbel | **0.1050 ± 0.0071** | **0.2100 ± 0.0141** | 2 |" in (
        markdown
    )
    assert "`runs/crash/frac1.0/seed1`" in markdown
    assert os.path.exists(files.csv)
    assert os.listdir(files.tensorboard)


def test_eta_uses_the_mean_time_of_each_kind(tmp_path):
    cells = grid.plan(_spec(tmp_path, popularity=True, seeds=(0,)))
    finetune = [c for c in cells if c.kind == grid.FINETUNE]
    assert len(finetune) == 2
    durations = {grid.POPULARITY: [4.0], grid.FINETUNE: [100.0, 50.0]}
    # Two pending fine-tuning cells at 75 s each, not the overall mean.
    assert grid._progress(finetune, durations, 3, 0) == (
        "3 finished (0 failed), 2 to go; mean 75 s/cell, ETA 2.5 min"
    )
    assert grid._progress(finetune, {grid.POPULARITY: [4.0]}, 1, 0) == (
        "1 finished (0 failed), 2 to go; mean 4 s/cell, "
        "ETA after the first finetune cell"
    )


def test_a_cells_log_shows_its_lines_while_it_runs(tmp_path):
    # The grid writes each line of the child into the cell's log as it
    # comes: an ML-1M cell's log otherwise stayed empty for 30 minutes.
    spec = _spec(tmp_path, methods=("watch_log",), seeds=(0,))
    (outcome,) = grid.run_cells(grid.plan(spec), spec.out_dir, echo=print)
    assert outcome.status == "ok"
    with open(outcome.cell.output) as f:
        assert json.load(f)["saw_own_line"] is True
    assert grid._child_env()["PYTHONUNBUFFERED"] == "1"
