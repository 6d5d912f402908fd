"""The shared training loop: epochs, checkpoints, TensorBoard, model selection.

Pretraining and every UAF variant plug into `fit` through the `Task`
protocol; the loop owns everything else. A run directory holds:

```
<run_dir>/ckpt/             tf.train.CheckpointManager checkpoints
<run_dir>/tb/               TensorBoard events: train/*, valid/*
<run_dir>/tb/final/         test/*, best_valid/*, HParams (once, at the end)
<run_dir>/best.weights.h5   model weights of the best validation epoch
<run_dir>/results.json      what `fit` returns
```

Progress: a bar per epoch (steps, ETA, loss, ex/s) when stdout is a
terminal, and one summary line per epoch either way, so logs that are files
(CI) hold no carriage-return frames; `fit(progress=...)` overrides.

Conventions: `epoch` arguments of the `Task` methods are 0-based (a seed
offset); log lines, `results.json` and the history count epochs from 1.
TensorBoard scalars are indexed by the global step, valid ones included.

Resuming: the checkpoint holds the model, the task's objects (optimizers,
RNGs), the global step, the epochs done, the batches done in the current
epoch, the per-epoch loss sums and the validation history. `resume=True`
restores the latest one and skips the batches of the interrupted epoch
already trained (`dataset.skip`), so a run killed at any point and resumed
replays the same batch sequence, provided `task.train_dataset(epoch)` is a
deterministic function of `epoch` (e.g. shuffled with `seed + epoch`).
"""

import dataclasses
import json
import math
import os
import sys
import time
import typing

import keras
import tensorflow as tf
from absl import logging

from uaf_tf import config_flags
from uaf_tf import errors
from uaf_tf import run_dir as run_dir_lib
from uaf_tf.data import input_options
from uaf_tf.run_dir import BEST_WEIGHTS_FILE
from uaf_tf.run_dir import CHECKPOINT_DIR
from uaf_tf.run_dir import RESULTS_FILE
from uaf_tf.run_dir import TENSORBOARD_DIR
from uaf_tf.run_dir import describe_environment
from uaf_tf.training import distribution
from uaf_tf.training import precision as precision_lib
from uaf_tf.training import summaries

_RESERVED_CHECKPOINT_KEYS = ("model", "step", "epoch", "loop")
# Key of the global example count a distributed step adds to its logs.
_EXAMPLES = "_examples"

# `fit(progress=...)`: "bar" redraws a progress bar on stdout while an epoch
# trains, "epoch" prints only the per-epoch summary lines, "none" prints
# nothing, "auto" is "bar" on a terminal and "epoch" otherwise.
PROGRESS_MODES = ("auto", "bar", "epoch", "none")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """The optimisation options every training task shares.

    Nested in `PretrainConfig` and `FinetuneConfig` as their `training`
    field; its fields are flags of their own names (`--epochs`), and
    `trainer_config` makes the `TrainerConfig` of a run from them.

    Attributes:
        learning_rate: Adam learning rate (paper: 1e-4).
        batch_size: training batch size B (paper: 256).
        eval_batch_size: batch size of validation/test ranking.
        epochs: training epochs.
        steps_per_epoch: batches per epoch (0: one pass over the training
            data).
        seed: seeds weight initialisation (`keras.utils.set_random_seed`),
            the data order of epoch e (`seed + e`) and the samplers.
        log_every_steps: steps between TensorBoard train scalars (0: none).
        checkpoint_every_steps: steps between mid-epoch checkpoints (0: at
            epoch ends only).
        jit_compile: XLA-compile the train step; None tries XLA and falls
            back to a plain `tf.function`.
        strategy: the `tf.distribute` strategy: `"default"` (one process,
            one device), `"mirrored"` (every local GPU, or logical CPU
            device) or `"multi_worker"` (every worker of `TF_CONFIG`); see
            `training/distribution.py`. `batch_size` is the global batch.
        precision: the Keras dtype policy the model is built under
            (`training/precision.py`): `"float32"` (default) or
            `"mixed_bfloat16"` (bfloat16 matmuls and convolutions; float32
            weights, policy logits, sampling, losses and metrics).
    """

    learning_rate: float = 1e-4
    batch_size: int = 256
    eval_batch_size: int = 256
    epochs: int = 20
    steps_per_epoch: int = 0
    seed: int = 0
    log_every_steps: int = 50
    checkpoint_every_steps: int = 0
    jit_compile: bool | None = None
    strategy: str = dataclasses.field(
        default=distribution.DEFAULT,
        metadata={config_flags.CHOICES: distribution.STRATEGIES},
    )
    precision: str = dataclasses.field(
        default=precision_lib.FLOAT32,
        metadata={config_flags.CHOICES: precision_lib.PRECISIONS},
    )

    def __post_init__(self):
        config_flags.check_choice(self, "strategy", distribution.STRATEGIES)
        config_flags.check_choice(self, "precision", precision_lib.PRECISIONS)
        # Before any work: a learning rate of -1 trains (and diverges).
        config_flags.check_positive(self, "learning_rate")
        config_flags.check_at_least(
            self, 1, "batch_size", "eval_batch_size", "epochs"
        )
        config_flags.check_at_least(
            self,
            0,
            "steps_per_epoch",
            "seed",
            "log_every_steps",
            "checkpoint_every_steps",
        )

    def trainer_config(
        self,
        *,
        selection_metric: str,
        selection_mode: str,
        max_checkpoints: int = 3,
    ) -> "TrainerConfig":
        """The `TrainerConfig` of a run with these options.

        Args:
            selection_metric: validation key that picks the best epoch.
            selection_mode: `"max"` or `"min"`.
            max_checkpoints: checkpoints kept.
        """
        return TrainerConfig(
            epochs=self.epochs,
            log_every_steps=self.log_every_steps,
            checkpoint_every_steps=self.checkpoint_every_steps,
            max_checkpoints=max_checkpoints,
            selection_metric=selection_metric,
            selection_mode=selection_mode,
            steps_per_epoch=self.steps_per_epoch,
            jit_compile=self.jit_compile,
        )


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """How `fit` runs a task.

    Attributes:
        epochs: number of passes (of `steps_per_epoch` batches, if set).
        log_every_steps: steps between TensorBoard train scalars (means
            over the window); 0 disables them.
        checkpoint_every_steps: steps between mid-epoch checkpoints; 0 =
            checkpoint at epoch ends only (always done).
        max_checkpoints: checkpoints kept in `run_dir/ckpt`.
        selection_metric: key of `task.evaluate("valid")` that picks the best
            epoch, e.g. `"sampled/mrr@5"`, `"full/mrr@5"`.
        selection_mode: `"max"` or `"min"`.
        steps_per_epoch: 0 = one pass over `task.train_dataset(epoch)`;
            otherwise exactly that many batches (the dataset is repeated).
        jit_compile: compile the train step with XLA. `None` (default) tries
            XLA and falls back to a plain `tf.function` if the step does not
            compile (e.g. it uses ops without XLA kernels, such as the
            candidate samplers of sampled softmax). On the 2-core CPU the
            pretraining step is 1.3x faster with XLA (see
            `launch/benchmarks/pretrain_throughput.py`).
    """

    epochs: int
    log_every_steps: int = 50
    checkpoint_every_steps: int = 0
    max_checkpoints: int = 3
    selection_metric: str = "sampled/mrr@5"
    selection_mode: str = "max"
    steps_per_epoch: int = 0
    jit_compile: bool | None = None

    def __post_init__(self):
        if self.selection_mode not in ("max", "min"):
            raise ValueError(
                "`selection_mode` must be 'max' or 'min'. "
                f"Received: selection_mode={self.selection_mode!r}"
            )
        if self.epochs < 0 or self.steps_per_epoch < 0:
            raise ValueError(
                "`epochs` and `steps_per_epoch` must be >= 0. Received: "
                f"epochs={self.epochs}, steps_per_epoch={self.steps_per_epoch}"
            )


class TrainingDivergedError(errors.UserError, FloatingPointError):
    """The loss or a weight became nan or inf; training stopped.

    The message names the step and the last good checkpoint (the latest
    one: nothing after it was saved), kept in `last_checkpoint` (None when
    there is none yet).
    """

    def __init__(self, message: str, last_checkpoint: str | None):
        super().__init__(message)
        self.last_checkpoint = last_checkpoint


class WorkersOutOfStepError(errors.UserError, ValueError):
    """`--resume` under `multi_worker`: the workers' checkpoints are at
    different steps (e.g. one worker's run directory is missing); every
    worker stops, none trains."""


class Task(typing.Protocol):
    """What `fit` needs from a training task (pretraining, a UAF variant).

    Attributes:
        model: the `keras.Model` whose weights are selected and saved as
            `best.weights.h5`; must be built before `fit` (checkpoint restore
            is immediate, not deferred).
    """

    model: keras.Model

    def checkpoint_objects(self) -> dict:
        """Extra trackables to checkpoint: optimizers, `tf.random.Generator`s.

        Optimizers must be built (`optimizer.build(variables)`) before `fit`.
        Keras optimizers found here are logged as `train/learning_rate`.
        """

    def train_dataset(self, epoch: int) -> tf.data.Dataset:
        """One epoch of training batches; deterministic given `epoch`."""

    def train_step(self, batch) -> dict:
        """One optimisation step, run inside the trainer's `tf.function`.

        Computes the loss, applies gradients with the task's optimizer(s) and
        returns scalar tensors to log; must include `"loss"`. The trainer
        counts examples by the leading dimension of the batch.
        """

    def evaluate(self, split: str) -> dict:
        """Metrics (python floats) on `split`, including `"num_examples"`."""

    def on_epoch_end(self, epoch: int, valid_results: dict, writer) -> None:
        """Extra TensorBoard views; runs under `writer.as_default(step)`."""

    def test_split(self) -> str | None:
        """Split evaluated once with the best weights (`None` = none)."""


def fit(
    task: Task,
    run_dir: str,
    config: TrainerConfig,
    *,
    resume: bool = False,
    progress: str = "auto",
    strategy: tf.distribute.Strategy | None = None,
) -> dict:
    """Trains `task` for `config.epochs`, selecting the best epoch on valid.

    Args:
        task: a `Task`.
        run_dir: output directory (created). Without `resume` it must not
            hold checkpoints already.
        config: a `TrainerConfig`.
        resume: restore the latest checkpoint of `run_dir/ckpt` (if any) and
            continue at its epoch and step.
        progress: what is printed to stdout, one of `PROGRESS_MODES`.
        strategy: a `tf.distribute.Strategy` under whose scope the task's
            model and optimizers were made; None (or the default strategy)
            runs the single-process loop. Under a strategy each global batch
            of `task.train_dataset` is split across the replicas
            (`distribution.distribute_dataset`), the step runs under
            `strategy.run` (without XLA) and its logs are reduced, weighted
            by each replica's examples; `task.train_step` must scale its
            loss with `distribution.scale_loss`. Evaluation is not
            distributed: the model is evaluated once, by the chief; the
            other workers of a multi-worker strategy neither evaluate nor
            write TensorBoard summaries, and select the best epoch on the
            chief's validation metric (`distribution.evaluates`), so their
            results hold `valid` = that metric only and `test` = None.

    Returns:
        The dict written to `run_dir/results.json`: `valid` (metrics of the
        best epoch), `test` (metrics of `task.test_split()` with the best
        weights, or None), `best_epoch` (1-based), `epochs_run`, `steps`,
        `wall_time_s`, `train_examples_per_sec`, `history` (per epoch:
        `epoch`, `step`, `train_loss`, `valid`, and the epoch's
        `train_seconds` (its input iterator's release included),
        `train_examples_per_sec` and `valid_seconds`), `environment`
        (`run_dir.describe_environment()`: library versions, devices, git
        commit). The final metrics and the run's hyperparameters also go
        to TensorBoard (`run_dir/tb/final`, `summaries.write_final_summaries`).
    """
    if progress not in PROGRESS_MODES:
        raise ValueError(
            f"`progress` must be one of {PROGRESS_MODES}. "
            f"Received: progress={progress!r}"
        )
    if progress == "auto":
        progress = "bar" if sys.stdout.isatty() else "epoch"
    if strategy is not None and not distribution.is_distributed(strategy):
        strategy = None
    return _Loop(task, run_dir, config, progress, strategy).run(resume)


class _ModelVariables(tf.Module):
    """Every variable of a Keras model, for `tf.train.Checkpoint`.

    Checkpointing a Keras 3 model object directly silently drops the weights
    of sublayers held in Python lists (`backbone.blocks`): Keras wraps such
    lists in a `TrackedList`, which TF's checkpoint dependency tracking does
    not follow (keras 3.15, TF backend). Keys are positions in
    `model.variables` plus the short variable name: stable for the same
    model code, and independent of the process-dependent layer-name
    suffixes (`next_it_net_backbone_2`).
    """

    def __init__(self, model: keras.Model):
        super().__init__(name="model_variables")
        self.by_position = {
            f"{i:04d}_{v.name}": v for i, v in enumerate(model.variables)
        }


class _LoopState(tf.Module):
    """Loop counters saved in the checkpoint (besides `step` and `epoch`)."""

    def __init__(self):
        super().__init__(name="loop_state")
        # Batches trained in the current, unfinished epoch.
        self.epoch_step = tf.Variable(0, dtype=tf.int64)
        self.epoch_loss_sum = tf.Variable(0.0, dtype=tf.float64)
        self.epoch_examples = tf.Variable(0, dtype=tf.int64)
        self.train_examples = tf.Variable(0, dtype=tf.int64)
        self.train_seconds = tf.Variable(0.0, dtype=tf.float64)
        self.wall_seconds = tf.Variable(0.0, dtype=tf.float64)
        # JSON list of finished epochs, so history and best epoch survive a
        # restart exactly as checkpointed.
        self.history = tf.Variable("[]", dtype=tf.string)


class _Loop:
    """One `fit` call. The step function and the per-epoch dataset are made
    in `_make_step_fn` / `_epoch_dataset` only, the two places where a
    `tf.distribute.Strategy` (`strategy.run`, `distribute_datasets_from_
    function`) changes the loop."""

    def __init__(
        self,
        task: Task,
        run_dir: str,
        config: TrainerConfig,
        progress: str = "epoch",
        strategy: tf.distribute.Strategy | None = None,
    ):
        self.task = task
        self.strategy = strategy
        # False on a non-chief worker: it skips evaluation and summaries.
        self.evaluates = distribution.evaluates(strategy)
        self.run_dir = run_dir
        self.config = config
        self.progress = progress
        self.step = tf.Variable(0, dtype=tf.int64, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, name="epoch")
        self.state = _LoopState()
        extra = dict(task.checkpoint_objects())
        clash = sorted(set(extra) & set(_RESERVED_CHECKPOINT_KEYS))
        if clash:
            raise ValueError(
                f"`checkpoint_objects()` keys {clash} are reserved by the "
                f"trainer ({_RESERVED_CHECKPOINT_KEYS})."
            )
        self.optimizers = {
            k: v
            for k, v in extra.items()
            if isinstance(v, keras.optimizers.Optimizer)
        }
        if not task.model.built:
            raise ValueError(
                "Build `task.model` (and the optimizers) before `fit`, so "
                "checkpoints can be restored into existing variables."
            )
        self.checkpoint = tf.train.Checkpoint(
            model=_ModelVariables(task.model),
            step=self.step,
            epoch=self.epoch,
            loop=self.state,
            **extra,
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint,
            os.path.join(run_dir, CHECKPOINT_DIR),
            max_to_keep=config.max_checkpoints,
        )
        self.best_path = os.path.join(run_dir, BEST_WEIGHTS_FILE)

    # === Pieces a distribution strategy replaces ===

    def _make_step_fn(self, jit_compile: bool):
        if self.strategy is not None:
            return self._make_distributed_step_fn()
        return tf.function(
            self.task.train_step,
            reduce_retracing=True,
            jit_compile=jit_compile,
        )

    def _make_distributed_step_fn(self):
        strategy, task = self.strategy, self.task

        def replica_step(batch):
            size = tf.cast(tf.shape(tf.nest.flatten(batch)[0])[0], tf.float64)
            logs = task.train_step(batch)
            # Weighted by the replica's examples, summed below.
            logs = {k: tf.cast(v, tf.float64) * size for k, v in logs.items()}
            logs[_EXAMPLES] = size
            return logs

        def step(batch):
            per_replica = strategy.run(replica_step, args=(batch,))
            totals = {
                k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()
            }
            size = totals.pop(_EXAMPLES)
            logs = {k: v / size for k, v in totals.items()}
            logs[_EXAMPLES] = size
            return logs

        return tf.function(step, reduce_retracing=True)

    def _epoch_dataset(self, epoch: int, skip: int) -> tf.data.Dataset:
        def global_batches():
            # Releasing each epoch's iterator can stall unless autotuning
            # is off (`data/input_options.py`).
            dataset = input_options.with_default_input_options(
                self.task.train_dataset(epoch)
            )
            if self.config.steps_per_epoch:
                dataset = dataset.repeat().take(self.config.steps_per_epoch)
            if skip:
                dataset = dataset.skip(skip)
            return dataset

        if self.strategy is not None:
            return distribution.distribute_dataset(
                self.strategy, global_batches
            )
        return global_batches()

    # === The loop ===

    def run(self, resume: bool) -> dict:
        config = self.config
        os.makedirs(self.run_dir, exist_ok=True)
        self._restore_or_check(resume)
        if resume:
            self._check_workers_resume_together()
        if self.evaluates:
            writer = tf.summary.create_file_writer(
                os.path.join(self.run_dir, TENSORBOARD_DIR)
            )
        else:
            writer = tf.summary.create_noop_writer()
        # XLA is not used under a strategy (collectives in the step).
        self._jit = False if self.strategy is not None else config.jit_compile
        self._step_fn = self._make_step_fn(self._jit is not False)
        wall_start = time.perf_counter()
        wall_before = float(self.state.wall_seconds.numpy())
        try:
            while int(self.epoch.numpy()) < config.epochs:
                epoch = int(self.epoch.numpy())
                seconds, examples = self._train_epoch(epoch, writer)
                self._end_epoch(
                    epoch, writer, seconds, examples, wall_start, wall_before
                )
            results = self._finish(wall_start, wall_before)
        finally:
            writer.close()
        return results

    def _restore_or_check(self, resume: bool) -> None:
        latest = self.manager.latest_checkpoint
        if latest and not resume:
            raise ValueError(
                f"{self.run_dir} already holds checkpoints ({latest}). Pass "
                "`resume=True` (`--resume`) to continue, or use a new run_dir."
            )
        if not latest:
            if resume:
                logging.info(
                    "No checkpoint in %s: starting fresh.", self.run_dir
                )
            return
        learning_rates = self._learning_rates()
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        # The task's optimizers were made with the run's learning rate,
        # which a resumed run may change (`run_dir.RESUMABLE_OPTIONS`): it
        # wins over the one in the checkpoint.
        if self._learning_rates() != learning_rates:
            for name, optimizer in self.optimizers.items():
                key = (
                    "train/learning_rate"
                    if len(self.optimizers) == 1
                    else f"train/learning_rate/{name}"
                )
                logging.info(
                    "Learning rate %g (checkpoint: %g).",
                    learning_rates[key],
                    _learning_rate(optimizer),
                )
                optimizer.learning_rate = learning_rates[key]
        logging.info(
            "Resumed %s: %d epochs done, step %d (%d batches into epoch %d).",
            latest,
            int(self.epoch.numpy()),
            int(self.step.numpy()),
            int(self.state.epoch_step.numpy()),
            int(self.epoch.numpy()) + 1,
        )

    def _check_workers_resume_together(self) -> None:
        """Under a multi-worker strategy, every worker must restore the
        same step (each from its own run directory), or the workers would
        train different batches and wait on each other forever."""
        if not isinstance(
            self.strategy, tf.distribute.MultiWorkerMirroredStrategy
        ):
            return
        step = int(self.step.numpy())
        if not distribution.same_on_every_worker(self.strategy, step):
            raise WorkersOutOfStepError(
                "--resume under `strategy='multi_worker'`: the workers' "
                "checkpoints are at different steps (this worker, "
                f"{distribution.worker_index()}: step {step}, in "
                f"{self.manager.directory}). Resume with the workers "
                "(and run directories) that wrote them. Received: "
                f"run_dir={self.run_dir!r}"
            )

    def _run_step(self, batch) -> dict:
        """Runs the step function, falling back from XLA if it can't compile."""
        if self._jit is None:
            try:
                logs = self._step_fn(batch)
                self._jit = True
                return logs
            except (
                tf.errors.InvalidArgumentError,
                tf.errors.UnimplementedError,
                tf.errors.InternalError,
            ) as error:
                # Compilation fails before anything runs, so no variable has
                # been updated: retrying without XLA is safe.
                logging.warning(
                    "Train step does not compile with XLA; using a plain "
                    "tf.function. (%s)",
                    str(error).splitlines()[0][:300],
                )
                self._jit = False
                self._step_fn = self._make_step_fn(False)
        return self._step_fn(batch)

    def _train_epoch(self, epoch: int, writer) -> tuple[float, int]:
        """Trains the rest of epoch `epoch`; returns (seconds, examples)."""
        config, state = self.config, self.state
        skip = int(state.epoch_step.numpy())
        dataset = self._epoch_dataset(epoch, skip)
        bar = None
        if self.progress == "bar":
            bar = _ProgressBar(
                f"epoch {epoch + 1}/{config.epochs}",
                self._steps_in_epoch(dataset, skip),
                done=skip,
            )
        window = _Window()
        seconds, examples = 0.0, 0
        clock = time.perf_counter()
        for batch in dataset:
            logs = self._run_step(batch)
            size = logs.pop(_EXAMPLES, None)
            logs = {k: float(v) for k, v in logs.items()}
            if "loss" not in logs:
                raise KeyError(
                    f"`train_step` must return 'loss'; got {sorted(logs)}."
                )
            if not math.isfinite(logs["loss"]):
                # Nothing of this step is saved: the latest checkpoint
                # stays the last good one.
                raise self._diverged(
                    f"loss is {logs['loss']} at step "
                    f"{int(self.step.numpy()) + 1} (epoch {epoch + 1}, batch "
                    f"{int(state.epoch_step.numpy()) + 1})"
                )
            if size is None:
                size = int(tf.nest.flatten(batch)[0].shape[0])
            else:  # The global batch of a distributed step.
                size = int(size)
            step = int(self.step.assign_add(1).numpy())
            state.epoch_step.assign_add(1)
            state.epoch_loss_sum.assign_add(logs["loss"] * size)
            state.epoch_examples.assign_add(size)
            examples += size
            window.add(logs, size)
            if bar is not None:
                elapsed = seconds + time.perf_counter() - clock
                bar.update(
                    int(state.epoch_step.numpy()),
                    float(state.epoch_loss_sum.numpy())
                    / int(state.epoch_examples.numpy()),
                    examples / max(elapsed, 1e-9),
                )

            if config.log_every_steps and step % config.log_every_steps == 0:
                self._log_window(step, window, writer)
                window = _Window()
            if (
                config.checkpoint_every_steps
                and step % config.checkpoint_every_steps == 0
            ):
                # Training time is accounted up to here, the save excluded.
                now = time.perf_counter()
                seconds += now - clock
                state.train_seconds.assign_add(now - clock)
                self._save(step)
                clock = time.perf_counter()
                window.exclude(clock - now)
        now = time.perf_counter()
        seconds += now - clock
        state.train_seconds.assign_add(now - clock)
        if bar is not None:
            bar.evaluating()
        return seconds, examples

    def _save(self, step: int) -> None:
        """Saves a checkpoint, unless a weight is nan or inf (then the
        latest checkpoint stays the last good one)."""
        for variable in self.task.model.variables:
            value = tf.convert_to_tensor(variable)
            if value.dtype.is_floating and not bool(
                tf.reduce_all(tf.math.is_finite(value))
            ):
                raise self._diverged(
                    f"weight {variable.path} holds nan or inf after step {step}"
                )
        self.manager.save(checkpoint_number=step)

    def _diverged(self, what: str) -> "TrainingDivergedError":
        latest = self.manager.latest_checkpoint
        if latest:
            # Checkpoints are numbered by the global step (`_save`).
            saved_step = latest.rsplit("-", 1)[-1]
            advice = (
                f"the last good checkpoint is {latest} (step {saved_step}); "
                "continue from it with --resume, e.g. with a lower "
                "--learning_rate"
            )
        else:
            advice = (
                "no checkpoint was saved yet; start again, e.g. with a lower "
                "--learning_rate"
            )
        return TrainingDivergedError(
            f"Training stopped: {what}; {advice}.", latest
        )

    def _steps_in_epoch(self, dataset, skip: int) -> int | None:
        """Batches of a whole epoch, for the progress bar (None: unknown).

        Without `steps_per_epoch`, the dataset's cardinality, else the step
        count of the last finished epoch (TFRecord datasets do not know
        their length).
        """
        if self.config.steps_per_epoch:
            return self.config.steps_per_epoch
        if self.strategy is not None:
            cardinality = -1  # A distributed dataset has none.
        else:
            cardinality = int(dataset.cardinality().numpy())
        if cardinality >= 0:
            return cardinality + skip
        history = json.loads(self.state.history.numpy().decode())
        if not history:
            return None
        before = history[-2]["step"] if len(history) > 1 else 0
        return history[-1]["step"] - before

    def _log_window(self, step: int, window, writer) -> None:
        """TensorBoard train scalars: means over the last window."""
        means = window.means()
        rate = window.examples_per_sec()
        with writer.as_default(step=step):
            for name, value in means.items():
                summaries.scalar(f"train/{name}", value)
            summaries.scalar("train/examples_per_sec", rate)
            for name, lr in self._learning_rates().items():
                summaries.scalar(name, lr)

    def _learning_rates(self) -> dict:
        if len(self.optimizers) == 1:
            (optimizer,) = self.optimizers.values()
            return {"train/learning_rate": _learning_rate(optimizer)}
        return {
            f"train/learning_rate/{k}": _learning_rate(o)
            for k, o in self.optimizers.items()
        }

    def _end_epoch(
        self, epoch, writer, seconds, trained, wall_start, wall_before
    ) -> None:
        """Validates, selects, checkpoints and logs the finished `epoch`;
        `seconds` and `trained` examples are this process's share of it
        (after a resume mid-epoch, the rest of the epoch)."""
        config, state = self.config, self.state
        rate = trained / max(seconds, 1e-9)
        examples = int(state.epoch_examples.numpy())
        if examples == 0:
            raise ValueError(
                f"Epoch {epoch + 1}: `task.train_dataset({epoch})` was empty."
            )
        train_loss = float(state.epoch_loss_sum.numpy()) / examples
        eval_start = time.perf_counter()
        valid = self._validate()
        eval_seconds = time.perf_counter() - eval_start
        step = int(self.step.numpy())
        if self.evaluates:
            with writer.as_default(step=step):
                summaries.scalar("train/epoch_loss", train_loss)
                for name, value in valid.items():
                    if name != "num_examples":
                        summaries.scalar(f"valid/{name}", value)
                self.task.on_epoch_end(epoch, valid, writer)
            writer.flush()

        history = json.loads(state.history.numpy().decode())
        value = valid[config.selection_metric]
        best = _best_entry(history, config)
        improved = not math.isnan(value) and (
            best is None
            or (
                value > best if config.selection_mode == "max" else value < best
            )
        )
        if improved:
            # Keras insists on the `.weights.h5` suffix; write then rename so
            # a crash never leaves a truncated best file.
            tmp_path = os.path.join(self.run_dir, "best.tmp.weights.h5")
            self.task.model.save_weights(tmp_path)
            os.replace(tmp_path, self.best_path)
        history.append(
            {
                "epoch": epoch + 1,
                "step": step,
                "train_loss": train_loss,
                "valid": valid,
                # Timings: never compared across runs, unlike the above.
                "train_seconds": round(seconds, 6),
                "train_examples_per_sec": round(rate, 3),
                "valid_seconds": round(eval_seconds, 6),
            }
        )
        state.history.assign(json.dumps(history))
        state.epoch_step.assign(0)
        state.epoch_loss_sum.assign(0.0)
        state.train_examples.assign_add(examples)
        state.epoch_examples.assign(0)
        state.wall_seconds.assign(
            wall_before + time.perf_counter() - wall_start
        )
        self.epoch.assign(epoch + 1)
        self._save(step)

        if self.progress != "none":
            line = _epoch_summary(
                f"epoch {epoch + 1}/{config.epochs}",
                step,
                train_loss,
                valid,
                rate,
                eval_seconds,
                improved,
            )
            if self.progress == "bar":
                line = "\r" + line + "\x1b[K"  # Replaces the bar's line.
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def _validate(self) -> dict:
        """The validation metrics of this epoch, computed by the chief.

        On a non-chief worker of a multi-worker strategy only the selection
        metric, received from the chief: every worker then selects the
        same best epoch, and the model is evaluated once.
        """
        metric = self.config.selection_metric
        valid = {}
        if self.evaluates:
            valid = dict(self.task.evaluate("valid"))
            if metric not in valid:
                raise KeyError(
                    f"selection_metric {metric!r} is not among the "
                    f"validation results {sorted(valid)}."
                )
        if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            value = distribution.broadcast_from_chief(
                self.strategy, valid.get(metric, 0.0)
            )
            if not self.evaluates:
                valid = {metric: value}
        return valid

    def _finish(self, wall_start, wall_before) -> dict:
        config, state = self.config, self.state
        history = json.loads(state.history.numpy().decode())
        best_index = _best_index(history, config)
        if best_index is not None and os.path.exists(self.best_path):
            self.task.model.load_weights(self.best_path)
        test_split = self.task.test_split()
        test = None
        if test_split and self.evaluates:
            test = dict(self.task.evaluate(test_split))
        train_seconds = float(state.train_seconds.numpy())
        results = {
            "valid": history[best_index]["valid"] if history else None,
            "test": test,
            "test_split": test_split,
            "best_epoch": history[best_index]["epoch"] if history else None,
            "selection_metric": config.selection_metric,
            "epochs_run": len(history),
            "steps": int(self.step.numpy()),
            "wall_time_s": wall_before + time.perf_counter() - wall_start,
            "train_examples_per_sec": (
                int(state.train_examples.numpy()) / train_seconds
                if train_seconds > 0
                else 0.0
            ),
            "history": history,
            "environment": describe_environment(),
        }
        run_dir_lib.write_json(
            os.path.join(self.run_dir, RESULTS_FILE), results, indent=2
        )
        if self.evaluates:
            summaries.write_final_summaries(self.run_dir, results)
        if test is not None:
            logging.info(
                "best epoch %s; %s: %s",
                results["best_epoch"],
                test_split,
                ", ".join(f"{k} {v:.4f}" for k, v in sorted(test.items())),
            )
        return results


def _learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    # Through a tensor: under a strategy the variable holds a
    # `MirroredVariable`, which `float()` refuses.
    return float(tf.convert_to_tensor(optimizer.learning_rate))


def _epoch_summary(
    name: str,
    step: int,
    train_loss: float,
    valid: dict,
    rate: float,
    eval_seconds: float,
    improved: bool,
) -> str:
    """One line per epoch, e.g. `epoch 2/20 step 28: train loss 6.7464 |
    valid full/hr@5 0.0213, ..., loss 6.8487 | 336.8 ex/s | eval 0.1 s`."""
    shown = ", ".join(
        f"{k} {v:.4f}"
        for k, v in sorted(valid.items())
        if k != "num_examples" and ("@5" in k or k == "loss")
    )
    return (
        f"{name} step {step}: train loss {train_loss:.4f} | valid {shown} | "
        f"{rate:.1f} ex/s | eval {eval_seconds:.1f} s"
        + (" [best]" if improved else "")
    )


class _ProgressBar:
    """A one-line progress bar redrawn with carriage returns, for terminals.

    `epoch 3/20  28/66 [=========>..........] ETA 0:12  loss 6.6548  852 ex/s`
    (without a known total: steps and elapsed time, no bar). Redraws at
    most every `interval` seconds.
    """

    WIDTH = 24

    def __init__(
        self,
        name: str,
        target: int | None,
        *,
        done: int = 0,
        stream=None,
        interval: float = 0.1,
    ):
        self.name = name
        self.target = target
        self.start_done = done
        self.stream = stream or sys.stdout
        self.interval = interval
        self.start = time.perf_counter()
        self.last_draw = -float("inf")
        self.text = ""

    def update(self, done: int, loss: float, rate: float) -> None:
        now = time.perf_counter()
        if now - self.last_draw < self.interval and done != self.target:
            return
        self.last_draw = now
        elapsed = now - self.start
        if self.target:
            fraction = min(done / self.target, 1.0)
            filled = int(self.WIDTH * fraction)
            arrow = ">" if filled < self.WIDTH else ""
            bar = "=" * filled + arrow + "." * (self.WIDTH - filled - 1)
            trained = done - self.start_done
            if done < self.target:
                remaining = elapsed / max(trained, 1) * (self.target - done)
                timing = f"ETA {_clock(remaining)}"
            else:
                timing = _clock(elapsed)
            head = f"{done}/{self.target} [{bar[: self.WIDTH]}] {timing}"
        else:
            head = f"{done} steps {_clock(elapsed)}"
        self._draw(f"{self.name}  {head}  loss {loss:.4f}  {rate:.0f} ex/s")

    def evaluating(self) -> None:
        self._draw(self.text + "  evaluating...")

    def _draw(self, text: str) -> None:
        self.text = text
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{seconds:02d}"
    return f"{minutes}:{seconds:02d}"


def _best_index(history: list, config: TrainerConfig) -> int | None:
    best, best_value = None, None
    for i, entry in enumerate(history):
        value = entry["valid"][config.selection_metric]
        if math.isnan(value):
            continue
        if best is None or (
            value > best_value
            if config.selection_mode == "max"
            else value < best_value
        ):
            best, best_value = i, value
    if best is None and history:
        return len(history) - 1
    return best


def _best_entry(history: list, config: TrainerConfig) -> float | None:
    index = _best_index(history, config)
    if index is None:
        return None
    value = history[index]["valid"][config.selection_metric]
    return None if math.isnan(value) else value


class _Window:
    """Means of the logged scalars and throughput between two log lines."""

    def __init__(self):
        self.start = time.perf_counter()
        self.excluded = 0.0
        self.sums = {}
        self.steps = 0
        self.examples = 0

    def add(self, logs: dict, size: int) -> None:
        for name, value in logs.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.steps += 1
        self.examples += size

    def exclude(self, seconds: float) -> None:
        self.excluded += seconds

    def means(self) -> dict:
        return {k: v / max(self.steps, 1) for k, v in self.sums.items()}

    def examples_per_sec(self) -> float:
        seconds = time.perf_counter() - self.start - self.excluded
        return self.examples / max(seconds, 1e-9)
