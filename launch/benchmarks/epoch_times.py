r"""How long the trainer's epochs take through the real input pipeline,
with tf.data's autotune optimiser off (the pipelines' default) and on
(prints figures; not a test).

    python launch/benchmarks/epoch_times.py [--rounds=2] [--epochs=4]

Each round runs `trainer.fit` twice, in alternating order: UAF-Gumbel
fine-tuning on the standard workload's shapes (5K target items, L = 30,
B = 256, C = 128, 8 residual blocks), a synthetic dataset directory of
`--users` users written to disk (`testing.build_tiny_dataset_dir`), no
pretrained weights (speed only), XLA-compiled as the trainer compiles by
default. Once with the pipelines as they are (`input_options`: the
optimiser off), once with the task's training dataset given
`autotune.enabled = True` (TensorFlow's default). Evaluation datasets keep
the pipelines' options in both.

Prints each epoch's `train_seconds` from the run's history, which includes
releasing the epoch's input iterator: under TF 2.21 the release can wait
for the optimiser thread's next wake-up (`uaf_tf/data/input_options.py`),
at a time fixed from the iterator's creation (20.47 s, 40.95 s, ...). The
first epoch includes the XLA compilation; the summary compares the median
of the later ones.
"""

import os
import statistics
import sys
import tempfile

import tensorflow as tf
from absl import app
from absl import flags

# Run as a script: the repository root, for `launch.benchmarks`.
sys.path.insert(0, os.path.abspath(os.path.join(__file__, *[os.pardir] * 3)))
from launch.benchmarks import finetune_throughput as ft
from uaf_tf.training import trainer

OFF, ON = "optimiser off (default)", "optimiser on"


class _AutotuneOn:
    """A task whose training dataset turns the autotune optimiser on."""

    def __init__(self, task):
        self._task = task

    def __getattr__(self, name):
        return getattr(self._task, name)

    def train_dataset(self, epoch: int) -> tf.data.Dataset:
        options = tf.data.Options()
        options.autotune.enabled = True
        return self._task.train_dataset(epoch).with_options(options)


def epoch_seconds(
    data_dir: str, w: ft.Workload, epochs: int, autotune: bool, run_dir: str
) -> list[float]:
    """Trains UAF-Gumbel for `epochs`; each epoch's `train_seconds`."""
    task = ft.pipeline_task(w, data_dir)
    results = trainer.fit(
        _AutotuneOn(task) if autotune else task,
        run_dir,
        trainer.TrainerConfig(
            epochs=epochs, selection_metric="sampled/ndcg@10"
        ),
        progress="none",
    )
    return [h["train_seconds"] for h in results["history"]]


def main(argv):
    del argv
    fv = flags.FLAGS
    w = ft.Workload(steps=1, warmup=0, **(ft.QUICK_SHAPES if fv.quick else {}))
    work = tempfile.mkdtemp()
    data_dir = ft.build_pipeline_data(
        os.path.join(work, "data"), w, fv.users, min(99, w.target_vocab // 4)
    )
    seconds = {OFF: [], ON: []}
    for r in range(fv.rounds):
        order = (OFF, ON) if r % 2 == 0 else (ON, OFF)
        for name in order:
            run_dir = os.path.join(work, f"run-{r}-{name == ON:d}")
            got = epoch_seconds(data_dir, w, fv.epochs, name == ON, run_dir)
            seconds[name].append(got)
            shown = ", ".join(f"{s:.2f}" for s in got)
            print(f"round {r}: {name}: epochs {shown} s", flush=True)
    print(f"\n{fv.users} users, {fv.epochs} epochs a run, {fv.rounds} rounds")
    later = {k: [s for run in v for s in run[1:]] for k, v in seconds.items()}
    for name, values in later.items():
        if values:
            median = statistics.median(values)
            print(
                f"  {name:24s} epochs 2+: median {median:.2f} s, "
                f"longest {max(values):.2f} s"
            )
    if later[OFF] and later[ON]:
        ratio = statistics.median(later[ON]) / statistics.median(later[OFF])
        print(f"  median epoch, on / off: {ratio:.2f}")


if __name__ == "__main__":
    flags.DEFINE_integer("rounds", 2, "Rounds; each trains once each way.")
    flags.DEFINE_integer("epochs", 4, "Epochs per training run.")
    flags.DEFINE_integer("users", 3277, "Users of the synthetic dataset.")
    flags.DEFINE_bool("quick", False, "Tiny shapes (a smoke run).")
    app.run(main)
