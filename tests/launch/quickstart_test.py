"""launch/quickstart.sh run twice, and with OVERWRITE=1, on stub commands.

The script runs in a copy of its `launch/` folder whose `.venv/bin/python`
is a stub that logs each command and writes what the real one would leave
behind (dataset.json; a run's config.json and checkpoint), so the script's
own logic is tested in a second, not the training.
"""

import os
import shutil
import stat
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

_STUB = r"""#!/usr/bin/env bash
echo "$*" >> "$CALLS"
for arg in "$@"; do
  case "$arg" in
    --out_dir=*) mkdir -p "${arg#*=}"; echo {} > "${arg#*=}/dataset.json" ;;
    --run_dir=*) run="${arg#*=}" ;;
  esac
done
case "$1" in
  launch/pretrain.py|launch/finetune.py)
    mkdir -p "$run/ckpt"; echo {} > "$run/config.json"
    echo 'model_checkpoint_path: "ckpt-1"' > "$run/ckpt/checkpoint" ;;
esac
"""


@pytest.fixture
def sandbox(tmp_path):
    (tmp_path / "launch").mkdir()
    shutil.copy(
        os.path.join(REPO, "launch", "quickstart.sh"), tmp_path / "launch"
    )
    (tmp_path / "launch" / "setup_env.sh").write_text("true\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(_STUB)
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def _quickstart(sandbox, **env):
    calls = sandbox / "calls.log"
    calls.write_text("")
    done = subprocess.run(
        ["bash", str(sandbox / "launch" / "quickstart.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "CALLS": str(calls), **env},
        timeout=60,
    )
    return done, calls.read_text().splitlines()


def _scripts(calls):
    return [line.split()[0] for line in calls]


def test_second_run_continues_the_runs_and_deletes_nothing(sandbox):
    done, calls = _quickstart(sandbox)
    assert done.returncode == 0, done.stderr
    assert _scripts(calls) == [
        "launch/prepare_data.py",
        "launch/pretrain.py",
        "launch/finetune.py",
        "launch/export.py",
    ]
    assert not any("--resume" in line for line in calls)
    kept = sandbox / "checkpoints" / "ml100k-pretrain" / "kept.txt"
    kept.write_text("an earlier run's file")

    done, calls = _quickstart(sandbox)
    assert done.returncode == 0, done.stderr
    # The dataset is reused, both runs continued with --resume.
    assert _scripts(calls) == [
        "launch/pretrain.py",
        "launch/finetune.py",
        "launch/export.py",
    ]
    assert calls[0].endswith(" --resume") and calls[1].endswith(" --resume")
    assert "reusing the dataset in data/movielens-100k" in done.stdout
    assert "checkpoints/ml100k-pretrain holds a run: continuing it" in (
        done.stderr
    )
    assert kept.exists()


def test_overwrite_deletes_only_the_runs_and_starts_over(sandbox):
    _quickstart(sandbox)
    kept = sandbox / "checkpoints" / "ml100k-pretrain" / "kept.txt"
    kept.write_text("x")
    other = sandbox / "checkpoints" / "someone-elses-run"
    other.mkdir()
    done, calls = _quickstart(sandbox, OVERWRITE="1")
    assert done.returncode == 0, done.stderr
    assert "OVERWRITE=1: deleting the run checkpoints/ml100k-pretrain" in (
        done.stdout
    )
    assert _scripts(calls)[0] == "launch/prepare_data.py"
    assert not any("--resume" in line for line in calls)
    assert not kept.exists() and other.exists()


def test_overwrite_refuses_a_directory_that_is_no_run(sandbox):
    precious = sandbox / "checkpoints" / "ml100k-pretrain"
    precious.mkdir(parents=True)
    (precious / "thesis.tex").write_text("x")
    done, calls = _quickstart(sandbox, OVERWRITE="1")
    assert done.returncode == 2
    assert "is not a run directory" in done.stderr
    assert (precious / "thesis.tex").exists() and calls == []


def test_overwrite_must_be_0_or_1(sandbox):
    done, calls = _quickstart(sandbox, OVERWRITE="yes")
    assert done.returncode == 2 and calls == []
    assert "OVERWRITE must be 0 or 1; got 'yes'" in done.stderr
