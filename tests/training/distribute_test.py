"""tf.distribute training (issue 11): MirroredStrategy on two logical CPU
devices and MultiWorkerMirroredStrategy with two worker processes on
loopback ports both train the weights single-process training does.

Each configuration runs `launch/distributed_run.py` (2 steps of pretraining,
then 2 of UAF-Gumbel fine-tuning, global batch 16) in fresh processes: the
logical devices and the multi-worker strategy must be set up before
TensorFlow initialises.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

from launch import distributed_run
from uaf_tf import testing
from uaf_tf.layers import samplers
from uaf_tf.training import distribution
from uaf_tf.training import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
SCRIPT = os.path.join(ROOT, "launch", "distributed_run.py")
RUNS = ("pretrain", "finetune")
# Model-level: max |a - b| over the largest weight. Float32 sums in another
# order differ by ~1e-7 of it; a wrong loss scale (x2) by ~1e-3.
RELATIVE_TOLERANCE = 1e-5
# Per weight tensor: Adam's normalisation amplifies the summation-order
# noise of near-zero gradients (measured 1.2e-5 on fine-tuning).
TENSOR_TOLERANCE = 1e-4
TIMEOUT_S = 300


def _run(args, out_dir, env=None):
    command = [sys.executable, SCRIPT, f"--out_dir={out_dir}", *args]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": ROOT,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **(env or {}),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait(*processes):
    for process in processes:
        output, _ = process.communicate(timeout=TIMEOUT_S)
        assert process.returncode == 0, output[-3000:]


def _free_ports(count):
    """Ports the OS hands out now (bound together, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _weights(run_dir):
    return os.path.join(run_dir, "best.weights.h5")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The tiny dataset and the single-process reference run."""
    root = tmp_path_factory.mktemp("distribute")
    data_dir = testing.build_tiny_dataset_dir(
        str(root / "data"), num_users=80, seq_len=10
    )
    args = [f"--data_dir={data_dir}", "--steps=2"]
    _wait(_run(args, root / "single"))
    return root, args


def test_mirrored_on_two_logical_cpus_matches_single_process(runs):
    root, args = runs
    out = root / "mirrored"
    _wait(_run([*args, "--strategy=mirrored", "--logical_cpus=2"], out))
    for run in RUNS:
        differences = distributed_run.weight_differences(
            _weights(out / run), _weights(root / "single" / run)
        )
        assert differences["max_rel"] < RELATIVE_TOLERANCE, (run, differences)
        assert differences["max_rel_per_tensor"] < TENSOR_TOLERANCE, run
    results = json.loads((out / "finetune" / "results.json").read_text())
    # 2 steps of the global batch of 16, counted once (not per replica).
    assert results["steps"] == 2
    assert results["history"][0]["step"] == 2


def test_two_workers_agree_and_match_single_process(runs):
    root, args = runs
    out = root / "multi_worker"
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    workers = [
        _run(
            [*args, "--strategy=multi_worker"],
            out,
            env={
                "TF_CONFIG": json.dumps(
                    {
                        "cluster": cluster,
                        "task": {"type": "worker", "index": index},
                    }
                )
            },
        )
        for index in range(2)
    ]
    _wait(*workers)
    for run in RUNS:
        chief = _weights(out / run)
        other = _weights(out / f"{run}.worker-1")
        between = distributed_run.weight_differences(other, chief)
        assert between["max_abs"] == 0.0, (run, between)
        differences = distributed_run.weight_differences(
            chief, _weights(root / "single" / run)
        )
        assert differences["max_rel"] < RELATIVE_TOLERANCE, (run, differences)
        assert differences["max_rel_per_tensor"] < TENSOR_TOLERANCE, run


def test_replica_slices_cover_the_global_batch_once():
    import tensorflow as tf

    batch = {"x": tf.range(7)}
    slices = [
        distribution.replica_slice(batch, r, 3)["x"].numpy().tolist()
        for r in range(3)
    ]
    # Rows [r * 7 // 3, (r + 1) * 7 // 3): 0-1, 2-3, 4-6.
    assert slices == [[0, 1], [2, 3], [4, 5, 6]]


def test_strategy_option_is_checked():
    with pytest.raises(ValueError, match="strategy"):
        trainer.TrainingConfig(strategy="parameter_server")
    assert trainer.TrainingConfig().strategy == distribution.DEFAULT
    with pytest.raises(ValueError, match="TF_CONFIG"):
        if "TF_CONFIG" in os.environ:
            pytest.skip("TF_CONFIG is set")
        distribution.make_strategy(distribution.MULTI_WORKER)


def test_outside_a_strategy_the_helpers_change_nothing():
    import tensorflow as tf

    loss = tf.constant(2.5)
    assert distribution.scale_loss(loss, 7) is loss
    rows = tf.constant([[1.0], [2.0]])
    assert samplers.sample_global_rows(
        lambda t: t * 3, rows
    ).numpy().tolist() == [[3.0], [6.0]]
    assert distribution.worker_run_dir("/r") in ("/r", "/r.worker-1")
