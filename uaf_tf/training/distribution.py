"""tf.distribute strategies for the training loop (`--strategy`).

`"default"` is TensorFlow's default (no-op) strategy: the trainer then runs
exactly the single-process code path it always has. `"mirrored"` replicates
the model on every local device (GPUs, or logical CPU devices), and
`"multi_worker"` on every device of every worker listed in `TF_CONFIG`
(`tf.distribute.MultiWorkerMirroredStrategy`, collective all-reduce).

Under a strategy with R replicas, each global batch of B rows that the task
makes is cut into R contiguous slices (replica r gets rows
`[r B // R, (r + 1) B // R)`), the step runs under `strategy.run`, every
replica's loss is scaled by its share of the global batch (`scale_loss`), and
the Keras optimizer sums the gradients across replicas: the update is the one
single-process training on the same global batch makes. The samplers draw
their noise for the global batch (`uaf_tf.layers.samplers.sample_global_rows`).
"""

import json
import os

import tensorflow as tf

DEFAULT = "default"
MIRRORED = "mirrored"
MULTI_WORKER = "multi_worker"
STRATEGIES = (DEFAULT, MIRRORED, MULTI_WORKER)

# One strategy object per name and process: two mirrored strategies in one
# process (pretraining, then fine-tuning) would issue colliding collective
# instance keys, and TensorFlow allows one multi-worker strategy only.
_STRATEGIES = {}
# `_sum_over_workers`' tf.functions, per strategy and kind.
_SUMS = {}


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The `tf.distribute.Strategy` called `name` (one of `STRATEGIES`).

    `"multi_worker"` reads the cluster from the `TF_CONFIG` environment
    variable and must be made before any other TensorFlow op runs in the
    process (a TensorFlow rule). Made once per process and name.
    """
    if name == DEFAULT:
        return tf.distribute.get_strategy()
    if name not in _STRATEGIES:
        _STRATEGIES[name] = _new_strategy(name)
    return _STRATEGIES[name]


def _new_strategy(name: str) -> tf.distribute.Strategy:
    if name == MIRRORED:
        return tf.distribute.MirroredStrategy()
    if name == MULTI_WORKER:
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "`strategy='multi_worker'` needs the cluster in the TF_CONFIG "
                "environment variable. Received: TF_CONFIG unset"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(
        f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}"
    )


def is_distributed(strategy: tf.distribute.Strategy | None) -> bool:
    """Whether `strategy` is a real one (not None or the default)."""
    return strategy is not None and not _is_default(strategy)


def _is_default(strategy) -> bool:
    # The default strategy is a private class; it is the one
    # `get_strategy()` returns outside every scope.
    return type(strategy).__name__ == "_DefaultDistributionStrategy"


def worker_index() -> int:
    """This process's worker index in `TF_CONFIG` (0 without one)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    if task.get("type", "worker") not in ("worker", "chief"):
        return 0
    return int(task.get("index", 0))


def is_chief() -> bool:
    """Whether this process writes the shared outputs (worker 0)."""
    return worker_index() == 0


def evaluates(strategy: tf.distribute.Strategy | None) -> bool:
    """Whether this process evaluates and writes summaries and exports.

    False only on a non-chief worker of a `"multi_worker"` strategy: the
    model is the same on every worker, so the chief alone evaluates it
    (once, not once per worker) and writes the TensorBoard summaries and
    the test exports; the other workers train, checkpoint and select the
    best epoch on the chief's validation metric (`broadcast_from_chief`).
    """
    return not (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and not is_chief()
    )


def broadcast_from_chief(strategy: tf.distribute.Strategy, value: float):
    """The chief's `value`, on every worker (one all-reduce).

    A collective: every worker must call it, in the same order. Replica 0
    (the chief's first device) contributes `value` and every other replica
    zero, so the sum is the chief's value bit for bit (float64), nan
    included; what the other workers pass is ignored.
    """
    return _sum_over_workers(strategy, value, first_replica_only=True)


def same_on_every_worker(strategy: tf.distribute.Strategy, value: float):
    """Whether every worker passed the chief's `value` (two all-reduces).

    A collective, like `broadcast_from_chief`; every worker gets the same
    answer, so all of them can stop together when it is False.
    """
    chief = broadcast_from_chief(strategy, value)
    return _sum_over_workers(strategy, abs(value - chief)) == 0.0


def _sum_over_workers(strategy, value: float, first_replica_only=False):
    key = (strategy, first_replica_only)
    if key not in _SUMS:

        @tf.function
        def total(value):
            def replica_fn(value):
                if not first_replica_only:
                    return value
                context = tf.distribute.get_replica_context()
                first = tf.equal(context.replica_id_in_sync_group, 0)
                return tf.where(first, value, tf.zeros_like(value))

            per_replica = strategy.run(replica_fn, args=(value,))
            return strategy.reduce(
                tf.distribute.ReduceOp.SUM, per_replica, axis=None
            )

        _SUMS[key] = total
    return float(_SUMS[key](tf.constant(value, tf.float64)))


def worker_run_dir(run_dir: str) -> str:
    """Where this worker writes its run: `run_dir` for the chief, else
    `<run_dir>.worker-<i>` (TensorFlow requires every worker to save
    checkpoints; non-chief ones must not overwrite the chief's)."""
    index = worker_index()
    return run_dir if index == 0 else f"{run_dir}.worker-{index}"


def replica_slice(batch, replica: int, num_replicas: int):
    """Rows `[r B // R, (r + 1) B // R)` of every tensor of `batch`."""
    size = tf.shape(tf.nest.flatten(batch)[0])[0]
    start = (replica * size) // num_replicas
    end = ((replica + 1) * size) // num_replicas
    return tf.nest.map_structure(lambda t: t[start:end], batch)


def distribute_dataset(strategy, dataset_fn):
    """`strategy.distribute_datasets_from_function` of global batches.

    Args:
        strategy: a (non-default) strategy.
        dataset_fn: `() -> tf.data.Dataset` of global batches, the same on
            every worker (seeded).

    Returns:
        A distributed dataset whose elements give replica r the r-th slice
        (`replica_slice`) of each global batch; worker w (input pipeline w)
        feeds its local replicas their slices in order.
    """
    num_replicas = strategy.num_replicas_in_sync

    def per_worker(context: tf.distribute.InputContext):
        local = num_replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local

        def slices(batch):
            return tf.data.Dataset.range(local).map(
                lambda j: replica_slice(
                    batch, first + tf.cast(j, tf.int32), num_replicas
                )
            )

        return dataset_fn().flat_map(slices)

    return strategy.distribute_datasets_from_function(per_worker)


def scale_loss(loss: tf.Tensor, weight) -> tf.Tensor:
    """`loss` (a mean over `weight` terms of this replica) scaled for the
    global batch: `loss * weight / sum of weight over all replicas`.

    Summed over replicas (what the optimizer does with the gradients), this
    is the mean over the global batch, as `tf.nn.compute_average_loss` does
    for per-example losses, but also right for masked means (`weight` =
    number of unmasked terms). Outside a strategy with several replicas it
    returns `loss` itself, so single-process training is unchanged.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return loss
    weight = tf.cast(weight, loss.dtype)
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, weight)
    return loss * weight / total
