"""Popularity models of both domains: the floor any learned model must beat.

- `finetune_popularity_results`: target items scored by how often each is a
  positive of `finetune/train` (optionally of the same seeded
  `train_fraction` subset the fine-tuning runs train on), evaluated like
  `launch/finetune.py` evaluates (`sampled/` among the stored candidates,
  `full/` among all target items) on `valid` and `test`.
- `pretrain_popularity_results`: source items scored by their frequency in
  the `pretrain/train` sequences (a unigram next-item model that ignores
  the history), evaluated like `PretrainTask.evaluate` evaluates on
  `pretrain/valid`: the last item of each held-out sequence ranked among all
  source items (`full/` metrics), and the mean next-item cross-entropy
  `loss` over the positions `SequencePretrainer.compute_loss` uses.

Ties (items with equal counts, e.g. never seen in training) are broken by
the pessimistic rule of `uaf_tf.metrics`: such a positive ranks last among
its equals.
"""

import numpy as np
import tensorflow as tf

from uaf_tf import metrics
from uaf_tf.data import dataset_info
from uaf_tf.data import pipelines


def finetune_popularity_results(
    data_dir: str, batch_size: int = 1024, train_fraction: float = 1.0
) -> dict:
    """`{"valid": {...}, "test": {...}}` metrics of target popularity.

    Args:
        data_dir: a dataset directory (launch/prepare_data.py).
        batch_size: evaluation batch size (memory only).
        train_fraction: count positives of this seeded subset of the
            training split only (the fine-tuning runs' subset, paper 5.4).
    """
    info = dataset_info.DatasetInfo.load(data_dir)
    counts = np.zeros([info.num_target_ids], np.float32)
    train = pipelines.finetune_train_dataset(
        data_dir, batch_size, seed=0, train_fraction=train_fraction
    )
    for batch in train:
        np.add.at(counts, batch[dataset_info.TARGET].numpy(), 1.0)
    popularity = tf.constant(counts)
    results = {"train_fraction": train_fraction}
    for split in ("valid", "test"):
        accumulator = metrics.MeanAccumulator()
        for batch in pipelines.eval_dataset(data_dir, split, batch_size):
            candidates = batch[dataset_info.CANDIDATES]
            sampled = tf.gather(popularity, candidates)  # [B, 1 + n_neg]
            values = metrics.metrics_from_ranks(
                metrics.rank_among_candidates(sampled), metrics.SAMPLED
            )
            every_item = tf.tile(
                popularity[None, :], [tf.shape(candidates)[0], 1]
            )  # [B, T]
            values.update(
                metrics.metrics_from_ranks(
                    metrics.rank_among_all_items(
                        every_item, batch[dataset_info.TARGET]
                    ),
                    metrics.FULL,
                )
            )
            accumulator.update(values)
        results[split] = accumulator.result()
    return results


def source_unigram_log_probs(data_dir: str, batch_size: int = 256):
    """Add-one smoothed log-frequencies of the source items, `[V]` float64.

    Counts every non-padding item of the `pretrain/train` sequences (c_i),
    then `p_i = (c_i + 1) / (N + V - 1)` for the V - 1 real items, N the
    number of counted items. Add-one smoothing gives items never seen in
    training a finite loss, so the mean cross-entropy stays comparable with
    the model's; padding (id 0) gets probability 0 (`-inf`), as it is never
    a label of the masked loss.
    """
    info = dataset_info.DatasetInfo.load(data_dir)
    counts = np.zeros([info.num_source_ids], np.float64)
    train = pipelines.pretrain_dataset(
        data_dir, "train", batch_size, shuffle=False, seed=0
    )
    for batch in train:
        ids = batch[dataset_info.SOURCE].numpy().reshape(-1)
        np.add.at(counts, ids[ids != dataset_info.PAD_ID], 1.0)
    counts[dataset_info.PAD_ID] = 0.0
    real_items = info.num_source_ids - 1
    log_probs = np.log(counts + 1.0) - np.log(counts.sum() + real_items)
    log_probs[dataset_info.PAD_ID] = -np.inf
    return log_probs


def pretrain_popularity_results(
    data_dir: str, eval_batch_size: int = 256
) -> dict:
    """`{"valid": {...}}`: the unigram model on `pretrain/valid`.

    The same quantities, over the same positions and with the same
    averaging, as `PretrainTask.evaluate` reports for a pretrained model:

    - `full/{hr,mrr,ndcg}@{5,10,20}`: the last item of each held-out sequence
      (`ids[:, -1]`) ranked by frequency among all source items.
    - `loss`: the next-item cross-entropy `-log p(ids[:, t + 1])` for
      t = 0..L-2, padding labels excluded (`mask_padding=True`, the
      default). Like `PretrainTask`, each batch of `eval_batch_size`
      sequences gives the mean over its positions, and the batch means are
      averaged weighted by sequences per batch; so pass the pretrained
      run's `eval_batch_size` to compare like with like.
    - `loss_per_position`: the plain mean over all positions (no batch
      weighting), for reference.

    Args:
        data_dir: a dataset directory (launch/prepare_data.py).
        eval_batch_size: the pretraining run's `eval_batch_size`.
    """
    log_probs = source_unigram_log_probs(data_dir)
    scores = tf.constant(log_probs.astype(np.float32))  # [V]
    accumulator = metrics.MeanAccumulator()
    total_nats, total_positions = 0.0, 0
    dataset = pipelines.pretrain_dataset(
        data_dir, "valid", eval_batch_size, shuffle=False, seed=0
    )
    for batch in dataset:
        ids = batch[dataset_info.SOURCE]  # [B, L]
        rows = tf.shape(ids)[0]
        values = metrics.metrics_from_ranks(
            metrics.rank_among_all_items(
                tf.tile(scores[None, :], [rows, 1]), ids[:, -1]
            ),
            metrics.FULL,
        )
        labels = ids.numpy()[:, 1:].reshape(-1)
        labels = labels[labels != dataset_info.PAD_ID]
        nats = -log_probs[labels]
        batch_loss = nats.sum() / max(len(labels), 1)
        values["loss"] = tf.fill([rows], batch_loss)
        accumulator.update(values)
        total_nats += float(nats.sum())
        total_positions += len(labels)
    valid = accumulator.result()
    valid["loss_per_position"] = total_nats / max(total_positions, 1)
    valid["num_positions"] = total_positions
    return {"valid": valid, "eval_batch_size": eval_batch_size}
