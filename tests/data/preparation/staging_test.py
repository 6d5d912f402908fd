"""Builds are staged beside the destination and renamed into place; a
build killed at any point never leaves a complete-looking partial one."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from uaf_tf.data import dataset_info as di
from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import original
from uaf_tf.data.preparation import staging
from uaf_tf.data.preparation import synthetic
from uaf_tf.data.preparation.write_options import WriteOptions

_REPO_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)


_OPTIONS = WriteOptions(num_eval_negatives=1)


def _tree(root: str) -> dict[str, bytes]:
    """Relative path -> contents of every file under `root`."""
    files = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


def _hidden(parent) -> list[str]:
    return sorted(n for n in os.listdir(parent) if n.startswith("."))


def _small_files(tmp_path):
    pre, fine = tmp_path / "pre.csv", tmp_path / "fine.csv"
    pre.write_text("1,2,3\n2,3,4\n3,4,5\n")
    fine.write_text("1,2,,a,b\n2,3,,b,c\n3,,a\n")
    return str(pre), str(fine)


def test_rebuild_replaces_and_failed_build_keeps_the_old(tmp_path):
    pre, fine = _small_files(tmp_path)
    out = str(tmp_path / "out")
    original.build_from_original(
        out, pre, fine, WriteOptions(seed=1, num_eval_negatives=1)
    )
    old = _tree(out)
    with open(fine, "a") as f:
        f.write("no separator\n")
    with pytest.raises(bl.BadLineError):
        original.build_from_original(
            out, pre, fine, WriteOptions(seed=2, num_eval_negatives=1)
        )
    assert _tree(out) == old  # Intact, and nothing left beside it.
    assert _hidden(tmp_path) == []
    stats = original.build_from_original(
        out,
        pre,
        fine,
        WriteOptions(seed=2, skip_bad_lines=True, num_eval_negatives=1),
    )
    assert di.DatasetInfo.load(out).seed == 2 and stats["seed"] == 2
    assert _hidden(tmp_path) == []


def test_a_directory_that_is_not_a_dataset_is_refused(tmp_path):
    pre, fine = _small_files(tmp_path)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("keep me")
    with pytest.raises(bl.OptionError, match="not a dataset directory"):
        original.build_from_original(
            str(tmp_path / "home"), pre, fine, _OPTIONS
        )
    assert _tree(tmp_path / "home") == {"notes.txt": b"keep me"}
    with pytest.raises(bl.OptionError, match="not a directory"):
        original.build_from_original(pre, pre, fine, _OPTIONS)
    (tmp_path / "empty").mkdir()
    original.build_from_original(str(tmp_path / "empty"), pre, fine, _OPTIONS)
    di.DatasetInfo.load(str(tmp_path / "empty"))


def test_leftovers_of_dead_builds_are_removed_live_ones_kept(tmp_path):
    pre, fine = _small_files(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for leftover in (
        f".out.tmp-{dead.pid}-abc",
        f".out.old-{dead.pid}-def",
        f".out.tmp-{os.getpid()}-live",  # This process: still running.
        f".other.tmp-{dead.pid}-x",  # Another destination's.
    ):
        os.makedirs(tmp_path / leftover / "pretrain")
    original.build_from_original(str(tmp_path / "out"), pre, fine, _OPTIONS)
    assert _hidden(tmp_path) == [
        f".other.tmp-{dead.pid}-x",
        f".out.tmp-{os.getpid()}-live",
    ]


def test_json_is_replaced_atomically(tmp_path):
    path = str(tmp_path / "stats.json")
    staging.write_json_atomically(path, {"a": 1})
    staging.write_json_atomically(path, {"a": 2})
    assert open(path).read() == '{\n  "a": 2\n}'
    assert os.listdir(tmp_path) == ["stats.json"]


def _wait_for_staged_files(out, pid, num_files, child) -> None:
    """Polls until a staging directory of process `pid` beside `out` holds
    `num_files` files (or the child exits)."""
    parent, name = os.path.split(out)
    prefix = f".{name}.tmp-{pid}-"
    while child.poll() is None:
        for entry in os.listdir(parent):
            if entry.startswith(prefix):
                staged = os.walk(os.path.join(parent, entry))
                if sum(len(names) for _, _, names in staged) >= num_files:
                    return
        time.sleep(0.002)


_CHILD = """
import sys
from uaf_tf.data.preparation import original
from uaf_tf.data.preparation.write_options import WriteOptions
print("ready", flush=True)
original.build_from_original(
    sys.argv[1],
    sys.argv[2],
    sys.argv[3],
    WriteOptions(num_shards=4, seed=7, num_eval_negatives=20),
)
print("done", flush=True)
"""


def test_build_killed_at_random_points_is_never_half_visible(tmp_path):
    config = synthetic.PlantedConfig(
        num_users=4000, num_source_items=300, num_target_items=60, seq_len=8
    )
    pre, fine = str(tmp_path / "pre.csv"), str(tmp_path / "fine.csv")
    synthetic.write_original_files(pre, fine, config)
    reference = str(tmp_path / "reference")
    started = time.monotonic()
    original.build_from_original(
        reference,
        pre,
        fine,
        WriteOptions(num_shards=4, seed=7, num_eval_negatives=20),
    )
    build_seconds = time.monotonic() - started
    new = _tree(reference)
    out = str(tmp_path / "data" / "out")
    original.build_from_original(
        out, pre, fine, WriteOptions(seed=8, num_eval_negatives=20)
    )
    old = _tree(out)
    assert old != new
    env = {
        **os.environ,
        "PYTHONPATH": _REPO_ROOT,
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    rng = random.Random(0)
    outcomes = []
    for _ in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, out, pre, fine],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert child.stdout.readline() == "ready\n"  # TF imported.
        # Kill point: once the staging directory holds `num_files` files
        # (random, so shards are half-written), or a random sleep into
        # pass 1 when `num_files` is 0.
        num_files = rng.randint(0, 16)
        if num_files == 0:
            time.sleep(rng.uniform(0.0, build_seconds))
        else:
            _wait_for_staged_files(out, child.pid, num_files, child)
        child.send_signal(signal.SIGKILL)
        child.wait()
        # Old, new or (between the two renames) absent; never partial.
        if os.path.exists(out):
            tree = _tree(out)
            assert tree in (old, new)
            outcomes.append("new" if tree == new else "old")
            di.DatasetInfo.load(out)
        else:
            outcomes.append("absent")
        staged = [n for n in _hidden(tmp_path / "data") if ".tmp-" in n]
        outcomes[-1] += f" ({num_files} files, {len(staged)} staged left)"
    print("kill outcomes:", outcomes)
    original.build_from_original(
        out,
        pre,
        fine,
        WriteOptions(num_shards=4, seed=7, num_eval_negatives=20),
    )
    assert _tree(out) == new  # The rerun equals an uninterrupted build.
    assert _hidden(tmp_path / "data") == []  # Dead leftovers removed.
