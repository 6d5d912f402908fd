"""Exports killed with SIGKILL at random points (issue 12 item 6).

A child process exports a tiny run; the test kills it at seeded random
moments, mostly while the version is being written (after its `.tmp-*`
directory appears), and checks after every kill that each child of the
model directory TF Serving would load as a version is complete. The next
export then deletes the leftovers and publishes a version that serves.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.serving.tiny_run import write_run_dir
from uaf_tf.serving import export_run
from uaf_tf.serving import signature_keys as keys
from uaf_tf.serving import versioned_dir

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
NUM_KILLS = 3
CHILD_TIMEOUT_S = 180

CHILD_SCRIPT = r"""
import sys
from uaf_tf.serving import export_run
print("ready", flush=True)
export_run(sys.argv[1], sys.argv[2], version=int(sys.argv[3]), top_k=3)
"""


def _start_child(run_dir, base, version):
    """Starts an export in a child process; returns once it is running."""
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": REPO_ROOT,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD_SCRIPT, run_dir, base, str(version)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(os.path.join(base + f".{version}.log"), "w"),
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _log(base, version):
    with open(base + f".{version}.log") as f:
        return f.read()[-3000:]


def _tmp_dirs(model_dir):
    if not os.path.isdir(model_dir):
        return []
    return [n for n in os.listdir(model_dir) if n.startswith(".tmp-")]


def _wait_for_tmp_dir(proc, model_dir, deadline):
    """Time when the export's temporary directory appeared (or None if the
    process ended first)."""
    while time.monotonic() < deadline:
        if _tmp_dirs(model_dir):
            return time.monotonic()
        if proc.poll() is not None:
            return None
        time.sleep(0.005)
    raise TimeoutError("the export never started writing")


def _listing(version_dir):
    """{relative path: size} of every file of a version directory."""
    files = {}
    for root, _, names in os.walk(version_dir):
        for name in names:
            path = os.path.join(root, name)
            files[os.path.relpath(path, version_dir)] = os.path.getsize(path)
    return files


def _variable_values(version_dir):
    """Sorted digests of every variable value the version's checkpoint holds.

    Reading each tensor fails on a truncated file. Names are left out: the
    checkpoint numbers its variables in an order (and its object-graph proto
    in a size, seen to differ by one byte) that can change from one process
    to the next, while the values of the same run cannot.
    """
    reader = tf.train.load_checkpoint(
        os.path.join(version_dir, "variables", "variables")
    )
    digests = []
    for key in reader.get_variable_to_shape_map():
        if key == "_CHECKPOINTABLE_OBJECT_GRAPH":
            continue
        value = np.asarray(reader.get_tensor(key))
        digests.append((value.dtype.str, value.shape, value.tobytes()))
    return sorted(digests)


def _assert_versions_complete(model_dir, reference):
    for name in os.listdir(model_dir):
        if versioned_dir.parses_as_version(name):
            version_dir = os.path.join(model_dir, name)
            # Same model, same files, same variable values.
            assert set(_listing(version_dir)) == set(reference["files"]), name
            assert _variable_values(version_dir) == reference["values"], name


def test_killed_exports_never_publish_half_a_version(tmp_path):
    run_dir = str(tmp_path / "run")
    write_run_dir(run_dir, "gumbel")
    base = str(tmp_path / "exports")
    model_dir = os.path.join(base, "uaf")

    # An uninterrupted export times the write (temp dir -> exit).
    proc = _start_child(run_dir, base, 1)
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    appeared = _wait_for_tmp_dir(proc, model_dir, deadline)
    assert proc.wait(timeout=CHILD_TIMEOUT_S) == 0, _log(base, 1)
    write_seconds = time.monotonic() - appeared
    reference = {
        "files": _listing(os.path.join(model_dir, "1")),
        "values": _variable_values(os.path.join(model_dir, "1")),
    }
    assert "saved_model.pb" in reference["files"]
    assert len(reference["values"]) > 10

    rng = np.random.default_rng(12)
    killed_while_writing = 0
    for attempt in range(NUM_KILLS):
        version = 2 + attempt
        proc = _start_child(run_dir, base, version)
        deadline = time.monotonic() + CHILD_TIMEOUT_S
        if attempt == 0:  # once before the write starts (model loading)
            time.sleep(rng.uniform(0.0, 0.5))
        else:
            assert _wait_for_tmp_dir(proc, model_dir, deadline) is not None
            time.sleep(rng.uniform(0.0, write_seconds))
        if proc.poll() is None:
            killed_while_writing += bool(_tmp_dirs(model_dir))
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=CHILD_TIMEOUT_S)
        _assert_versions_complete(model_dir, reference)

    # A kill must have hit a write in progress, or the test shows nothing
    # about half-written versions.
    assert killed_while_writing >= 1, killed_while_writing
    assert _tmp_dirs(model_dir)  # the leftovers the next export must clean

    _assert_versions_complete(model_dir, reference)
    # The next export (in this process) cleans them up.
    export_run(run_dir, base, version=100, top_k=3)
    children = sorted(os.listdir(model_dir))
    assert all(versioned_dir.parses_as_version(n) for n in children), children
    assert "100" in children
    final = os.path.join(model_dir, "100")
    assert set(_listing(final)) == set(reference["files"])
    assert _variable_values(final) == reference["values"]
    serve = tf.saved_model.load(final).signatures[keys.SERVE]
    out = serve(
        source_items=tf.constant([["s001", "s002"]]),
        exclude_history=tf.constant([True]),
    )
    assert out[keys.TOP_K_ITEMS].shape == (1, 3)


@pytest.mark.parametrize("prefix", [".tmp-", ".old-"])
def test_leftover_names_are_never_versions(prefix):
    for version in (0, 1, 17, 2**62):
        assert not versioned_dir.parses_as_version(f"{prefix}{version}-ab12")
