"""The shared training loop: resume, selection, artifacts, XLA fallback."""

import io
import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import testing
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.sequence_pretrainer import SequencePretrainer
from uaf_tf.training import pretrain
from uaf_tf.training import summaries
from uaf_tf.training import trainer

V, L, BATCH = 41, 10, 16
TRAIN = testing.planted_sequences(64, L, V, min_length=4, seed=0)  # 4 steps
VALID = testing.planted_sequences(32, L, V, min_length=4, seed=1)


def _task(num_sampled=0, crash_at=None, scramble=False):
    """A tiny pretraining task on planted data.

    `crash_at=n` makes the data fail when global batch n is requested, a
    stand-in for kill -9 between two steps. `scramble` re-randomises the
    weights (without touching the TF global seed, which the shuffle order
    depends on), so a resumed run must get every weight from the checkpoint.
    """
    keras.utils.set_random_seed(0)
    backbone = NextItNetBackbone(num_items=V, channels=8, dilations=(1, 2))
    model = SequencePretrainer(backbone, num_items=V, num_sampled=num_sampled)
    model.build((None, L))
    if scramble:
        rng = np.random.default_rng(1)
        model.set_weights(
            [rng.standard_normal(w.shape) for w in model.get_weights()]
        )
    served = {"batches": 0}

    def train_dataset_fn(epoch):
        dataset = testing.sequence_dataset(TRAIN, BATCH, shuffle_seed=epoch)
        if crash_at is None:
            return dataset
        # Batches before this epoch + index within it = global batch number.
        first = served["batches"]
        served["batches"] += len(TRAIN) // BATCH

        def check(index, batch):
            tf.debugging.assert_less(
                index + first,
                tf.constant(crash_at, tf.int64),
                message="simulated crash",
            )
            return batch

        return dataset.enumerate().map(check)

    return pretrain.PretrainTask(
        model,
        train_dataset_fn,
        lambda split: testing.sequence_dataset(VALID, 32),
        learning_rate=1e-2,
    )


def _config(**overrides):
    kwargs = dict(
        epochs=2,
        log_every_steps=2,
        selection_metric="full/mrr@5",
        # XLA compiles take seconds per model; one test covers them.
        jit_compile=False,
    )
    kwargs.update(overrides)
    return trainer.TrainerConfig(**kwargs)


def test_fit_writes_results_checkpoints_and_tensorboard(tmp_path):
    run_dir = str(tmp_path)
    task = _task()
    results = trainer.fit(task, run_dir, _config())
    assert results["epochs_run"] == 2 and results["steps"] == 8
    assert [h["step"] for h in results["history"]] == [4, 8]
    assert results["valid"]["num_examples"] == 32
    assert results["test"] is None
    assert results["train_examples_per_sec"] > 0
    for h in results["history"]:  # Each epoch's timings.
        assert h["train_seconds"] > 0 and h["valid_seconds"] > 0
        assert h["train_examples_per_sec"] == pytest.approx(
            64 / h["train_seconds"], rel=1e-3
        )
    best = max(results["history"], key=lambda h: h["valid"]["full/mrr@5"])
    assert results["best_epoch"] == best["epoch"]
    assert results["valid"] == best["valid"]
    with open(os.path.join(run_dir, trainer.RESULTS_FILE)) as f:
        assert json.load(f) == results
    assert tf.train.latest_checkpoint(os.path.join(run_dir, "ckpt"))
    assert os.path.exists(os.path.join(run_dir, trainer.BEST_WEIGHTS_FILE))
    scalars = summaries.read_scalars(os.path.join(run_dir, "tb"))
    assert [s for s, _ in scalars["train/loss"]] == [2, 4, 6, 8]
    assert [s for s, _ in scalars["valid/full/mrr@5"]] == [4, 8]
    assert scalars["train/learning_rate"][0][1] == pytest.approx(1e-2)
    assert "train/examples_per_sec" in scalars
    # The final metrics, once, in tb/final; the environment in results.
    final = summaries.read_scalars(os.path.join(run_dir, "tb", "final"))
    assert final["best_valid/full/mrr@5"] == [
        (8, pytest.approx(results["valid"]["full/mrr@5"]))
    ]
    assert results["environment"]["packages"]["tensorflow"] == tf.__version__
    # The model now holds the best epoch's weights.
    assert task.evaluate("valid")["full/mrr@5"] == pytest.approx(
        results["valid"]["full/mrr@5"]
    )


def test_refuses_to_overwrite_a_run_without_resume(tmp_path):
    trainer.fit(_task(), str(tmp_path), _config(epochs=1))
    with pytest.raises(ValueError, match="resume"):
        trainer.fit(_task(), str(tmp_path), _config(epochs=1))


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_resume_after_crash_mid_epoch_reproduces_the_uninterrupted_run(
    tmp_path, jit_compile
):
    config = _config(checkpoint_every_steps=3, jit_compile=jit_compile)
    reference = _task()
    expected = trainer.fit(reference, str(tmp_path / "a"), config)

    # Crash before global batch 7 (epoch 2, its 3rd batch): the last
    # checkpoint is step 6, 2 batches into epoch 2.
    run_dir = str(tmp_path / "b")
    with pytest.raises(tf.errors.InvalidArgumentError, match="simulated"):
        trainer.fit(_task(crash_at=6), run_dir, config)
    ckpt = tf.train.latest_checkpoint(os.path.join(run_dir, "ckpt"))
    assert ckpt.endswith("ckpt-6")

    # Fresh objects with other weights: everything must come from the ckpt.
    resumed_task = _task(scramble=True)
    results = trainer.fit(resumed_task, run_dir, config, resume=True)
    assert results["steps"] == 8 and results["epochs_run"] == 2
    assert int(resumed_task.optimizer.iterations.numpy()) == 8
    assert [h["step"] for h in results["history"]] == [4, 8]
    for got, want in zip(results["history"], expected["history"], strict=True):
        assert got["train_loss"] == pytest.approx(want["train_loss"], 1e-5)
        assert got["valid"] == pytest.approx(want["valid"], rel=1e-5)
    for got, want in zip(
        resumed_task.model.get_weights(),
        reference.model.get_weights(),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_resume_of_a_finished_run_trains_only_the_new_epochs(tmp_path):
    run_dir = str(tmp_path)
    trainer.fit(_task(), run_dir, _config(epochs=1))
    task = _task(scramble=True)
    results = trainer.fit(task, run_dir, _config(epochs=2), resume=True)
    assert [h["epoch"] for h in results["history"]] == [1, 2]
    assert results["steps"] == 8
    assert int(task.optimizer.iterations.numpy()) == 8


def test_steps_per_epoch_repeats_the_data(tmp_path):
    results = trainer.fit(
        _task(), str(tmp_path), _config(epochs=2, steps_per_epoch=6)
    )
    assert [h["step"] for h in results["history"]] == [6, 12]


def test_sampled_softmax_step_falls_back_from_xla(tmp_path):
    # The candidate sampler has no XLA kernel: jit_compile=None retries the
    # step as a plain tf.function and training proceeds.
    results = trainer.fit(
        _task(num_sampled=8), str(tmp_path), _config(jit_compile=None)
    )
    assert results["steps"] == 8
    assert np.isfinite(results["history"][-1]["train_loss"])


def test_selection_metric_must_exist(tmp_path):
    with pytest.raises(KeyError, match="sampled/mrr@5"):
        trainer.fit(
            _task(),
            str(tmp_path),
            _config(selection_metric="sampled/mrr@5"),
        )


def test_config_validation():
    with pytest.raises(ValueError, match="selection_mode"):
        trainer.TrainerConfig(epochs=1, selection_mode="best")


_SUMMARY = re.compile(
    r"epoch (\d)/2 step (\d+): train loss (\d+\.\d{4}) \| valid "
    r"full/hr@5 [\d.]+, full/mrr@5 ([\d.]+), full/ndcg@5 [\d.]+, "
    r"loss [\d.]+ \| [\d.]+ ex/s \| eval [\d.]+ s( \[best\])?"
)


def test_output_off_a_terminal_is_one_line_per_epoch(tmp_path, capsys):
    # pytest's captured stdout is no terminal: "auto" prints summary lines.
    results = trainer.fit(_task(), str(tmp_path), _config())
    out = capsys.readouterr().out
    assert "\r" not in out
    lines = out.splitlines()
    assert len(lines) == 2
    matches = [_SUMMARY.fullmatch(line) for line in lines]
    assert all(matches), lines
    history = results["history"]
    for match, entry in zip(matches, history, strict=True):
        assert int(match[1]) == entry["epoch"]
        assert int(match[2]) == entry["step"]
        assert match[3] == f"{entry['train_loss']:.4f}"
        assert match[4] == f"{entry['valid']['full/mrr@5']:.4f}"
    # [best] marks the epochs that improved the selection metric.
    mrr = [h["valid"]["full/mrr@5"] for h in history]
    assert [bool(m[5]) for m in matches] == [True, mrr[1] > mrr[0]]


def test_progress_bar_redraws_one_line_per_epoch(tmp_path, capsys):
    trainer.fit(_task(), str(tmp_path), _config(), progress="bar")
    out = capsys.readouterr().out
    lines = out.split("\n")
    assert lines[-1] == "" and len(lines) == 3
    for epoch, line in enumerate(lines[:2], start=1):
        frames = line.split("\r")
        # The bar's last frame is complete (4 of 4 steps) ...
        assert any(
            f.startswith(f"epoch {epoch}/2  4/4 [{'=' * 24}] ") for f in frames
        ), frames
        # ... and the summary line replaces the bar at the epoch's end.
        assert _SUMMARY.fullmatch(frames[-1].removesuffix("\x1b[K"))


def test_progress_bar_draws_eta_and_rate():
    stream = io.StringIO()
    bar = trainer._ProgressBar("epoch 1/3", 10, stream=stream, interval=0)
    bar.update(5, 1.23456, 812.4)
    frame = stream.getvalue()
    # 5 of 10 steps: 12 of 24 cells filled, then the arrow head.
    assert frame.startswith(
        f"\repoch 1/3  5/10 [{'=' * 12}>{'.' * 11}] ETA 0:0"
    )
    assert frame.endswith("  loss 1.2346  812 ex/s\x1b[K")
    unknown = io.StringIO()
    trainer._ProgressBar("e", None, stream=unknown, interval=0).update(
        3, 1.0, 10.0
    )
    assert unknown.getvalue().startswith("\re  3 steps 0:00  loss 1.0000")


def test_progress_mode_is_checked(tmp_path):
    with pytest.raises(ValueError, match="progress"):
        trainer.fit(_task(), str(tmp_path), _config(), progress="loud")


class _NanLossAt:
    """Wraps a task so the loss it reports at global step `step` is nan (the
    step's update is applied as usual), a stand-in for a diverged loss."""

    def __init__(self, task, step: int, value: float = float("nan")):
        self.task = task
        self.model = task.model
        self.optimizer = task.optimizer
        self.steps = tf.Variable(0, dtype=tf.int64)
        self.bad_step = step
        self.value = value

    def checkpoint_objects(self):
        return self.task.checkpoint_objects()

    def train_dataset(self, epoch):
        return self.task.train_dataset(epoch)

    def train_step(self, batch):
        logs = self.task.train_step(batch)
        self.steps.assign_add(1)
        bad = tf.equal(self.steps, self.bad_step)
        loss = tf.where(bad, tf.constant(self.value), logs["loss"])
        return {**logs, "loss": loss}

    def evaluate(self, split):
        return self.task.evaluate(split)

    def on_epoch_end(self, epoch, valid_results, writer):
        self.task.on_epoch_end(epoch, valid_results, writer)

    def test_split(self):
        return self.task.test_split()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_loss_stops_training_at_the_last_good_checkpoint(tmp_path, value):
    config = _config(epochs=3, checkpoint_every_steps=3)
    reference = _task()
    expected = trainer.fit(reference, str(tmp_path / "a"), config)

    # Step 8 reports a bad loss: checkpoints were saved at steps 3, 4
    # (epoch 1's end) and 6, so the last good one is ckpt-6; nothing of
    # steps 7-8 is saved, no results.json is written.
    run_dir = str(tmp_path / "b")
    with pytest.raises(trainer.TrainingDivergedError) as info:
        trainer.fit(_NanLossAt(_task(), 8, value), run_dir, config)
    message = str(info.value)
    last = os.path.join(run_dir, "ckpt", "ckpt-6")
    assert message == (
        f"Training stopped: loss is {value} at step 8 (epoch 2, batch 4); "
        f"the last good checkpoint is {last} (step 6); continue from it "
        "with --resume, e.g. with a lower --learning_rate."
    )
    assert "\n" not in message
    assert info.value.last_checkpoint == last
    assert tf.train.latest_checkpoint(os.path.join(run_dir, "ckpt")) == last
    assert not os.path.exists(os.path.join(run_dir, trainer.RESULTS_FILE))

    # --resume from it replays steps 7-8 and ends where an uninterrupted
    # run ends.
    resumed = _task(scramble=True)
    results = trainer.fit(resumed, run_dir, config, resume=True)
    assert results["steps"] == 12 and results["epochs_run"] == 3
    for got, want in zip(results["history"], expected["history"], strict=True):
        assert got["train_loss"] == pytest.approx(want["train_loss"], 1e-5)
    for got, want in zip(
        resumed.model.get_weights(), reference.model.get_weights(), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_nan_loss_before_any_checkpoint_says_there_is_none(tmp_path):
    with pytest.raises(trainer.TrainingDivergedError) as info:
        trainer.fit(_NanLossAt(_task(), 2), str(tmp_path), _config())
    assert "loss is nan at step 2 (epoch 1, batch 2)" in str(info.value)
    assert "no checkpoint was saved yet" in str(info.value)
    assert info.value.last_checkpoint is None


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    # A finite loss whose update leaves an inf weight: the epoch-end save
    # at step 4 is refused, ckpt-2 stays the latest.
    task = _task()
    variable = task.model.trainable_variables[0]
    poisoned = _NanLossAt(task, 10**6)  # Never a bad loss.

    def train_step(batch):
        logs = task.train_step(batch)
        poisoned.steps.assign_add(1)
        variable.assign(
            tf.where(
                tf.equal(poisoned.steps, 4),
                tf.fill(tf.shape(variable), float("inf")),
                variable,
            )
        )
        return logs

    poisoned.train_step = train_step
    run_dir = str(tmp_path)
    with pytest.raises(trainer.TrainingDivergedError, match="after step 4"):
        trainer.fit(poisoned, run_dir, _config(checkpoint_every_steps=2))
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, "ckpt"))
    assert latest.endswith("ckpt-2")


def test_resume_uses_the_tasks_learning_rate_not_the_checkpoints(tmp_path):
    run_dir = str(tmp_path)
    trainer.fit(_task(), run_dir, _config(epochs=1))
    task = _task()
    task.optimizer.learning_rate = 1e-3  # The run's (changed) option.
    trainer.fit(task, run_dir, _config(epochs=2), resume=True)
    assert float(task.optimizer.learning_rate) == pytest.approx(1e-3)
    scalars = summaries.read_scalars(os.path.join(run_dir, "tb"))
    rates = [v for _, v in scalars["train/learning_rate"]]
    assert rates[:2] == pytest.approx([1e-2, 1e-2])
    assert rates[2:] == pytest.approx([1e-3, 1e-3])
