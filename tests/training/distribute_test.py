"""tf.distribute training (issue 11): MirroredStrategy on two logical CPU
devices and MultiWorkerMirroredStrategy with two worker processes on
loopback ports both train the weights single-process training does; a run
interrupted mid-epoch resumes exactly, under the same or another strategy;
only the chief evaluates; the samplers' noise differs across replicas and
follows the seed.

Each configuration runs in fresh processes (`launch/distributed_run.py`: 2
steps of pretraining, then 2 of UAF-Gumbel fine-tuning, global batch 16;
the multi-worker one the real `launch/pretrain.py` / `launch/finetune.py`
CLI with the same options): the logical devices and the multi-worker
strategy must be set up before TensorFlow initialises.
"""

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from launch import distributed_run
from uaf_tf import errors
from uaf_tf import testing
from uaf_tf.layers import samplers
from uaf_tf.training import distribution
from uaf_tf.training import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
SCRIPT = os.path.join(ROOT, "launch", "distributed_run.py")
NOISE_CHILD = os.path.join(os.path.dirname(__file__), "replica_noise_child.py")
RUNS = ("pretrain", "finetune")
# Model-level: max |a - b| over the largest weight. Float32 sums in another
# order differ by ~1e-7 of it; a wrong loss scale (x2) by ~1e-3.
RELATIVE_TOLERANCE = 1e-5
# Per weight tensor: Adam's normalisation amplifies the summation-order
# noise of near-zero gradients (measured 1.2e-5 on fine-tuning).
TENSOR_TOLERANCE = 1e-4
# Ranking metrics of weights that differ by float32 summation order.
METRIC_TOLERANCE = 1e-4
# Per process; generous for a loaded 2-core machine.
TIMEOUT_S = 600


def _run(args, out_dir, env=None):
    return _start([SCRIPT, f"--out_dir={out_dir}", *args], env)


def _start(command, env=None):
    return subprocess.Popen(
        [sys.executable, *command],
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


def _wait(*processes, returncode=0):
    """Each process's output, once it has ended with `returncode`."""
    outputs = []
    try:
        for process in processes:
            output, _ = process.communicate(timeout=TIMEOUT_S)
            assert process.returncode == returncode, output[-3000:]
            outputs.append(output)
        return outputs
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


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
def data(tmp_path_factory):
    """The output root and a tiny dataset in it."""
    root = tmp_path_factory.mktemp("distribute")
    data_dir = testing.build_tiny_dataset_dir(
        str(root / "data"), num_users=80, seq_len=10
    )
    return root, data_dir


@pytest.fixture(scope="module")
def runs(data):
    """The single-process reference run."""
    root, data_dir = data
    args = [f"--data_dir={data_dir}", "--steps=2"]
    _wait(_run(args, root / "single"))
    return root, args


@pytest.fixture(scope="module")
def mirrored(runs):
    """The run under MirroredStrategy on two logical CPU devices."""
    root, args = runs
    out = root / "mirrored"
    _wait(_run([*args, *MIRRORED], out))
    return out


MIRRORED = ("--strategy=mirrored", "--logical_cpus=2")
# Interrupted right after the checkpoint of step 1 of 2 (mid-epoch).
INTERRUPT = ("--checkpoint_every_steps=1", "--interrupt_after_step=1")
INTERRUPTED = distributed_run.INTERRUPTED


def _assert_matches(out, reference, run):
    differences = distributed_run.weight_differences(
        _weights(out / run), _weights(reference / run)
    )
    assert differences["max_rel"] < RELATIVE_TOLERANCE, (run, differences)
    assert differences["max_rel_per_tensor"] < TENSOR_TOLERANCE, run


def test_mirrored_on_two_logical_cpus_matches_single_process(runs, mirrored):
    root, _ = runs
    for run in RUNS:
        _assert_matches(mirrored, root / "single", run)
    results = json.loads((mirrored / "finetune" / "results.json").read_text())
    # 2 steps of the global batch of 16, counted once (not per replica).
    assert results["steps"] == 2
    assert results["history"][0]["step"] == 2


def test_interrupted_mid_epoch_resumes_exactly_under_any_strategy(
    runs, mirrored
):
    """Interrupted right after a mid-epoch checkpoint, three times over:
    pretraining stops and resumes under `mirrored`; fine-tuning starts
    under `mirrored` and resumes single-process (`default`)."""
    root, args = runs
    out = root / "resumed"
    # 1: pretraining stops after its step 1 of 2.
    _wait(_run([*args, *MIRRORED, *INTERRUPT], out), returncode=INTERRUPTED)
    assert (out / "pretrain" / "ckpt" / "ckpt-1.index").exists()
    assert not (out / "pretrain" / "results.json").exists()
    # 2: it resumes and ends; fine-tuning stops after its step 1.
    _wait(
        _run([*args, *MIRRORED, *INTERRUPT, "--resume"], out),
        returncode=INTERRUPTED,
    )
    assert (out / "finetune" / "ckpt" / "ckpt-1.index").exists()
    assert not (out / "finetune" / "results.json").exists()
    # 3: fine-tuning resumes on one device, without a strategy.
    _wait(_run([*args, "--resume"], out))
    # The same operations on the same values (pretraining, all mirrored):
    # the uninterrupted run's bits.
    differences = distributed_run.weight_differences(
        _weights(out / "pretrain"), _weights(mirrored / "pretrain")
    )
    assert differences["max_abs"] == 0.0, differences
    # Another strategy mid-run: the same global batches, so the same run
    # up to float32 summation order.
    _assert_matches(out, mirrored, "finetune")
    _assert_matches(out, root / "single", "finetune")
    for run in RUNS:
        results = json.loads((out / run / "results.json").read_text())
        assert results["steps"] == 2
        assert [h["step"] for h in results["history"]] == [2]
    config = json.loads((out / "finetune" / "config.json").read_text())
    assert config["training"]["strategy"] == "default"
    # (With --checkpoint_every_steps, which the last process left at 0.)
    assert config["resume_history"][-1]["changed"]["strategy"] == {
        "from": "mirrored",
        "to": "default",
    }


def _cli_flags(strategy):
    """The options of `distributed_run`'s runs, as CLI flags."""
    return [
        "--batch_size=16",
        "--eval_batch_size=64",
        "--learning_rate=1e-3",
        "--epochs=1",
        "--steps_per_epoch=2",
        "--log_every_steps=0",
        "--jit_compile=false",
        f"--strategy={strategy}",
    ]


def _workers(command, cluster):
    return [
        _start(
            command,
            env={
                "TF_CONFIG": json.dumps(
                    {
                        "cluster": cluster,
                        "task": {"type": "worker", "index": index},
                    }
                )
            },
        )
        for index in range(len(cluster["worker"]))
    ]


def _pretrain_command(data_dir, run_dir, *more):
    return [
        os.path.join(ROOT, "launch", "pretrain.py"),
        f"--data_dir={data_dir}",
        f"--run_dir={run_dir}",
        "--channels=8",
        "--dilations=1,2",
        *_cli_flags("multi_worker"),
        *more,
    ]


def _two_workers(command, returncode=0):
    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
    return _wait(*_workers(command, cluster), returncode=returncode)


def test_two_cli_workers_agree_match_single_process_chief_evaluates(data, runs):
    """`launch/pretrain.py`, then `launch/finetune.py`, the same command
    on both workers (`--strategy=multi_worker`, TF_CONFIG per worker)."""
    root, data_dir = data
    out = root / "multi_worker"
    flags = _cli_flags("multi_worker")
    pretrain_command = _pretrain_command(data_dir, out / "pretrain")
    finetune_command = [
        os.path.join(ROOT, "launch", "finetune.py"),
        f"--data_dir={data_dir}",
        f"--pretrained={out / 'pretrain'}",
        f"--run_dir={out / 'finetune'}",
        "--method=gumbel",
        *flags,
    ]
    for command in (pretrain_command, finetune_command):
        _two_workers(command)
    for run in RUNS:
        chief, other = out / run, out / f"{run}.worker-1"
        between = distributed_run.weight_differences(
            _weights(other), _weights(chief)
        )
        assert between["max_abs"] == 0.0, (run, between)
        _assert_matches(out, root / "single", run)
        # The chief evaluated (once) and wrote the summaries; worker 1
        # selected the epoch on the chief's metric and wrote neither.
        results = json.loads((chief / "results.json").read_text())
        single = json.loads(
            (root / "single" / run / "results.json").read_text()
        )
        metric = results["selection_metric"]
        assert results["valid"][metric] == pytest.approx(
            single["valid"][metric], rel=METRIC_TOLERANCE
        )
        if single["test"] is None:
            assert results["test"] is None
        else:
            assert results["test"] == pytest.approx(
                single["test"], rel=METRIC_TOLERANCE
            )
        assert (chief / "tb").is_dir()
        worker = json.loads((other / "results.json").read_text())
        assert worker["valid"] == {metric: results["valid"][metric]}
        assert worker["test"] is None
        assert worker["best_epoch"] == results["best_epoch"]
        assert not (other / "tb").exists()
    assert (out / "finetune" / "test_instances.tsv").exists()
    assert not (out / "finetune.worker-1" / "test_instances.tsv").exists()


# Four more worker processes (CI time): runs with --run_large.
@pytest.mark.large
def test_workers_resuming_from_different_steps_stop_together(data, tmp_path):
    """Worker 1 lost its run directory: `--resume` would train it from
    step 0 against the chief's step 2; both workers stop instead."""
    _, data_dir = data
    run_dir = tmp_path / "pretrain"
    command = _pretrain_command(data_dir, run_dir, "--steps_per_epoch=1")
    _two_workers(command)
    shutil.rmtree(f"{run_dir}.worker-1")
    outputs = _two_workers(
        [*command, "--resume"], returncode=errors.EXIT_STATUS
    )
    for output in outputs:
        assert "checkpoints are at different steps" in output


def test_replica_noise_differs_across_replicas_and_follows_the_seed(data):
    root, data_dir = data
    out = root / "noise.json"
    _wait(_start([NOISE_CHILD, data_dir, str(out)]))
    draws = json.loads(out.read_text())
    half = len(draws["reward_negatives_single"]) // 2
    for name in ("gumbel", "rl"):
        replicas, again, single = (
            draws[name][k] for k in ("replicas", "again", "single")
        )
        for call in range(2):
            first, second = replicas[call]
            # Each replica draws other noise (the rows' logits are equal)...
            assert first != second, name
            # ... the noise its rows get in one process (the global batch;
            # alpha's softmax, in a graph here and eager there, may round
            # differently: 6e-8 apart measured)...
            np.testing.assert_allclose(
                first + second, single[call], rtol=1e-6, err_msg=name
            )
        # ... a new stream at every call, the same again from the seed.
        assert replicas[0] != replicas[1], name
        assert again == replicas, name
    negatives = draws["reward_negatives"]
    first, second = negatives[0]
    assert first != second
    assert first + second == draws["reward_negatives_single"]
    assert len(first) == half and negatives[1] == negatives[0]


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


def test_one_device_mirrored_run_logs_and_resumes_in_process(tmp_path):
    """The distributed code path (`strategy.run`, a distributed dataset,
    mirrored variables) on this process's one CPU device: train scalars
    with the learning rate, and a resume, equal to the run without one."""
    import keras

    from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
    from uaf_tf.models.sequence_pretrainer import SequencePretrainer
    from uaf_tf.training import pretrain
    from uaf_tf.training import summaries

    strategy = distribution.make_strategy(distribution.MIRRORED)
    vocab, length = 41, 10
    sequences = testing.planted_sequences(64, length, vocab, seed=0)

    def make_task():
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = SequencePretrainer(
                NextItNetBackbone(num_items=vocab, channels=8, dilations=(1,)),
                num_items=vocab,
            )
            model.build((None, length))
            task = pretrain.PretrainTask(
                model,
                lambda epoch: testing.sequence_dataset(
                    sequences, 16, shuffle_seed=epoch
                ),
                lambda split: testing.sequence_dataset(sequences[:32], 32),
                learning_rate=1e-2,
            )
        return task

    def fit(task, run_dir, epochs, resume=False):
        config = trainer.TrainerConfig(
            epochs=epochs,
            log_every_steps=2,
            selection_metric="full/mrr@5",
            jit_compile=False,
        )
        return trainer.fit(
            task, str(run_dir), config, resume=resume, strategy=strategy
        )

    whole = make_task()
    expected = fit(whole, tmp_path / "a", epochs=2)
    fit(make_task(), tmp_path / "b", epochs=1)
    resumed = make_task()
    results = fit(resumed, tmp_path / "b", epochs=2, resume=True)
    assert results["steps"] == 8
    assert results["best_epoch"] == expected["best_epoch"]
    scalars = summaries.read_scalars(str(tmp_path / "b" / "tb"))
    assert [s for s, _ in scalars["train/learning_rate"]] == [2, 4, 6, 8]
    assert scalars["train/learning_rate"][0][1] == pytest.approx(1e-2)
    assert int(resumed.optimizer.iterations.numpy()) == 8
    for got, want in zip(
        resumed.model.get_weights(), whole.model.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(got, want)
