r"""Pretraining and full ranking at a 1M-item, 1M-user scale (not a test).

    python launch/benchmarks/scale.py --steps=300 --out=/tmp/scale.json

Streams `--num_users` synthetic users (`data.synthetic_stream`: generated
inside tf.data batch by batch, never materialised) over a source vocabulary
of `--num_items` ids, and trains the NextItNet pretrainer with sampled
softmax (`--num_sampled` log-uniform negatives per position, logQ
corrected) for a bounded number of steps, exactly as `PretrainTask`
trains it. Then it ranks the last item of `--eval_users` held-out users
among all `--num_items` items with `metrics.rank_among_all_items_chunked`
(`--eval_chunk_size` items at a time: memory `[B, chunk]`, not `[B, V]`).

It prints and writes (`--out`) the training examples/s (sequences; and
predicted positions/s), the evaluation users/s, the resident memory after
each phase and the process's peak RSS (`resource.getrusage` ru_maxrss), and
whether the peak stayed under `--rss_limit_gib` (8 GiB); the exit status is
1 when it did not. Memory at this scale is dominated by the two
`[V, C]` tables (input embedding, softmax head) and Adam's two slots for
each: 6 V C float32, 1.5 GiB at V = 1M, C = 64.
"""

import json
import os
import resource
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from uaf_tf import metrics
from uaf_tf.data import synthetic_stream
from uaf_tf.data.dataset_info import SOURCE
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.sequence_pretrainer import SOFTMAX_SAMPLERS
from uaf_tf.models.sequence_pretrainer import SequencePretrainer
from uaf_tf.training import pretrain

_NUM_USERS = flags.DEFINE_integer(
    "num_users", 1_000_000, "Synthetic users streamed (one pass at most)."
)
_NUM_ITEMS = flags.DEFINE_integer(
    "num_items", 1_000_000, "Source vocabulary V (ids, padding included)."
)
_SEQ_LEN = flags.DEFINE_integer("seq_len", 20, "Sequence length L.")
_MIN_SEQ_LEN = flags.DEFINE_integer(
    "min_seq_len", 5, "Shortest sequence (the rest is left padding)."
)
_BATCH = flags.DEFINE_integer("batch_size", 256, "Training batch size B.")
_CHANNELS = flags.DEFINE_integer("channels", 64, "C.")
_DILATIONS = flags.DEFINE_list(
    "dilations", ["1", "4"] * 2, "Base dilations of the residual blocks."
)
_NUM_SAMPLED = flags.DEFINE_integer(
    "num_sampled", 1024, "Sampled-softmax negatives per position."
)
_SAMPLER = flags.DEFINE_enum(
    "softmax_sampler", "log_uniform", SOFTMAX_SAMPLERS, "Proposal."
)
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Adam.")
_WARMUP = flags.DEFINE_integer("warmup", 5, "Untimed first steps.")
_STEPS = flags.DEFINE_integer(
    "steps", 300, "Timed training steps (bounded; 0 = the whole stream)."
)
_EVAL_USERS = flags.DEFINE_integer(
    "eval_users", 2048, "Held-out users ranked among all items."
)
_EVAL_BATCH = flags.DEFINE_integer("eval_batch_size", 256, "Eval batch.")
_EVAL_CHUNK = flags.DEFINE_integer(
    "eval_chunk_size", metrics.DEFAULT_CHUNK_SIZE, "Items scored at once."
)
_RSS_LIMIT = flags.DEFINE_float("rss_limit_gib", 8.0, "Peak RSS target.")
_SEED = flags.DEFINE_integer("seed", 0, "Seeds the model and the streams.")
_OUT = flags.DEFINE_string("out", None, "Also write the figures as JSON.")

_GIB = 1024**3


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _gib(num_bytes) -> float:
    return round(num_bytes / _GIB, 3)


def _train(task, dataset, warmup, steps):
    """Runs `warmup` then `steps` train steps; returns timing and losses."""
    step_fn = tf.function(task.train_step)
    losses, rows, positions = [], 0, 0
    started = None
    for index, batch in enumerate(dataset):
        if index == warmup:
            started = time.perf_counter()
        loss = float(step_fn(batch)["loss"])
        losses.append(loss)
        if index >= warmup:
            ids = batch[SOURCE]
            rows += int(ids.shape[0])
            positions += int(tf.math.count_nonzero(ids[:, 1:]))
        if steps and index + 1 == warmup + steps:
            break
    seconds = time.perf_counter() - started
    return seconds, rows, positions, losses


def _evaluate(model, dataset, chunk_size):
    """Full-ranking metrics of the last item, chunked over the items."""

    @tf.function(reduce_retracing=True)
    def ranks_of(ids):
        return metrics.rank_among_all_items_chunked(
            model.next_item_features(ids[:, :-1]),
            model.output_kernel,
            ids[:, -1],
            model.output_bias,
            chunk_size=chunk_size,
        )

    accumulator = metrics.MeanAccumulator()
    started = time.perf_counter()
    for batch in dataset:
        ranks = ranks_of(batch[SOURCE])
        accumulator.update(metrics.metrics_from_ranks(ranks, metrics.FULL))
    return time.perf_counter() - started, accumulator.result()


def main(argv):
    del argv
    figures = {"rss_start_gib": _gib(_rss_bytes())}
    keras.utils.set_random_seed(_SEED.value)
    num_items, seq_len = _NUM_ITEMS.value, _SEQ_LEN.value
    backbone = NextItNetBackbone(
        num_items=num_items,
        channels=_CHANNELS.value,
        dilations=tuple(int(d) for d in _DILATIONS.value),
    )
    model = SequencePretrainer(
        backbone,
        num_items=num_items,
        num_sampled=_NUM_SAMPLED.value,
        softmax_sampler=_SAMPLER.value,
    )
    model.build((None, seq_len))

    def stream(num_users, batch_size, seed):
        return synthetic_stream.pretrain_stream(
            num_users,
            num_items,
            seq_len,
            batch_size,
            seed=seed,
            min_seq_len=_MIN_SEQ_LEN.value,
        )

    task = pretrain.PretrainTask(
        model,
        lambda epoch: stream(_NUM_USERS.value, _BATCH.value, _SEED.value),
        lambda split: stream(
            _EVAL_USERS.value, _EVAL_BATCH.value, _SEED.value + 1
        ),
        learning_rate=_LEARNING_RATE.value,
        eval_chunk_size=_EVAL_CHUNK.value,
    )
    figures["parameters"] = int(
        sum(np.prod(v.shape) for v in model.trainable_variables)
    )
    figures["rss_built_gib"] = _gib(_rss_bytes())

    seconds, rows, positions, losses = _train(
        task, task.train_dataset(0), _WARMUP.value, _STEPS.value
    )
    steps = len(losses) - _WARMUP.value
    figures.update(
        train_steps=steps,
        train_seconds=round(seconds, 2),
        train_examples_per_sec=round(rows / seconds, 1),
        train_positions_per_sec=round(positions / seconds, 1),
        loss_first_10=round(float(np.mean(losses[:10])), 4),
        loss_last_10=round(float(np.mean(losses[-10:])), 4),
        rss_after_train_gib=_gib(_rss_bytes()),
        peak_rss_after_train_gib=_gib(_peak_rss_bytes()),
    )
    print(json.dumps(figures, indent=1), flush=True)

    seconds, results = _evaluate(
        model, task.eval_dataset_fn("valid"), _EVAL_CHUNK.value
    )
    figures.update(
        eval_users=results["num_examples"],
        eval_seconds=round(seconds, 2),
        eval_users_per_sec=round(results["num_examples"] / seconds, 1),
        eval_full_hr_at_10=round(results["full/hr@10"], 4),
        eval_full_mrr_at_10=round(results["full/mrr@10"], 4),
        # What one unchunked batch's scores alone would take.
        unchunked_scores_gib=_gib(_EVAL_BATCH.value * num_items * 4),
        chunk_scores_gib=_gib(
            _EVAL_BATCH.value * min(num_items, _EVAL_CHUNK.value) * 4
        ),
        rss_after_eval_gib=_gib(_rss_bytes()),
    )
    peak = _peak_rss_bytes()
    figures.update(
        peak_rss_gib=_gib(peak),
        rss_limit_gib=_RSS_LIMIT.value,
        under_rss_limit=peak < _RSS_LIMIT.value * _GIB,
        config={
            "num_users": _NUM_USERS.value,
            "num_items": num_items,
            "seq_len": seq_len,
            "min_seq_len": _MIN_SEQ_LEN.value,
            "batch_size": _BATCH.value,
            "channels": _CHANNELS.value,
            "dilations": [int(d) for d in _DILATIONS.value],
            "num_sampled": _NUM_SAMPLED.value,
            "softmax_sampler": _SAMPLER.value,
            "eval_batch_size": _EVAL_BATCH.value,
            "eval_chunk_size": _EVAL_CHUNK.value,
        },
    )
    print(json.dumps(figures, indent=1))
    print(
        f"peak RSS {figures['peak_rss_gib']:.2f} GiB "
        f"{'<' if figures['under_rss_limit'] else '>='} "
        f"{_RSS_LIMIT.value} GiB"
    )
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(figures, f, indent=1)
    if not figures["under_rss_limit"]:
        raise SystemExit(1)


if __name__ == "__main__":
    app.run(main)
