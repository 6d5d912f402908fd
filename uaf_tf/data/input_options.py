"""`tf.data.Options` that every uaf-tf input pipeline ends with.

tf.data's autotuning optimiser is switched off; the pipelines keep
`tf.data.AUTOTUNE` for their parallelism and prefetch buffers, which then
take fixed values: `min(16, CPU cores)` parallel calls and prefetch's own
buffer-growing heuristic, which does not depend on the optimiser.

Why: under TF 2.21, releasing an iterator sometimes blocks until the
optimiser thread's next scheduled wake-up. That thread sleeps for a period
that doubles from 10 ms up to 60 s. Releasing the iterator cancels it, and
the cancellation callback wakes it; but the callback runs before the
cancellation manager marks itself cancelled, so a thread that wakes in
between sees "not cancelled" and sleeps out the rest of its period. Every
epoch's iterator is released when the epoch ends, so an epoch could pay up
to 60 s doing nothing. With `TF_CPP_VMODULE=model=2` the log shows it: the
optimiser thread, woken by the release, logs "Waiting for 3616 ms" and the
release takes 3.6 s (`docs/speed.md`, "Iterator releases"). Measured on
the standard fine-tuning workload, the pipeline keeps up with the train
step either way (input waits 0.06-0.15 s per 17 s epoch), so the optimiser
bought nothing here.

To turn the optimiser back on for one dataset, give it options of your
own: `dataset.with_options(opts)` with `opts.autotune.enabled = True`
overrides these.
"""

import tensorflow as tf


def input_options() -> tf.data.Options:
    """Options of every uaf-tf input pipeline (autotune optimiser off)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def with_input_options(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with `input_options()` applied."""
    return dataset.with_options(input_options())


def with_default_input_options(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with `input_options()` unless it sets autotuning itself.

    For datasets from outside this package (a task of your own): the
    training loop iterates them through this, so their epochs do not stall
    either, while an explicit `autotune.enabled` is kept.
    """
    if dataset.options().autotune.enabled is not None:
        return dataset
    return with_input_options(dataset)
