"""tf.data input pipelines over a prepared dataset directory.

All pipelines read uncompressed TFRecord shards, batch the serialized
records and parse each batch with one vectorised `tf.io.parse_example`.
Ids come out as int32, `index` as int64 and `user` as string.

- `pretrain_dataset`: `{"source": [B, L]}`.
- `finetune_train_dataset`: `{"source": [B, L], "target": [B],
  "negative": [B], "user": [B], "index": [B]}` (+ `"reward_negatives":
  [B, n]` for UAF-RL), the negatives drawn in-graph
  (`negatives.sample_negatives`) afresh every epoch.
- `eval_dataset`: `{"source", "target", "candidates": [B, 1 + n_neg],
  "user", "index"}`, deterministic order, last partial batch kept.

Each ends with `input_options.input_options()` (tf.data's autotune
optimiser off; see that module for why).
"""

import tensorflow as tf

from uaf_tf.data import dataset_info as di
from uaf_tf.data import examples
from uaf_tf.data import input_options
from uaf_tf.data import negatives
from uaf_tf.data import splits

_AUTOTUNE = tf.data.AUTOTUNE
_ID_KEYS = (di.SOURCE, di.TARGET, di.CANDIDATES)
_SCALAR_KEYS = (di.TARGET, di.USER, di.INDEX)


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(
            f"`batch_size` must be >= 1. Received: batch_size={batch_size}"
        )


def _parser(spec: dict):
    def parse(serialized: tf.Tensor) -> dict:
        features = tf.io.parse_example(serialized, spec)
        out = {}
        for key, value in features.items():
            if key in _SCALAR_KEYS:
                value = tf.squeeze(value, axis=1)
            if key in _ID_KEYS:
                value = tf.cast(value, tf.int32)
            out[key] = value
        return out

    return parse


def _records(
    files: list[str], shuffle_files: bool, seed: int
) -> tf.data.Dataset:
    names = tf.data.Dataset.from_tensor_slices(files)
    if shuffle_files:
        names = names.shuffle(len(files), seed=seed)
    return tf.data.TFRecordDataset(names, num_parallel_reads=_AUTOTUNE)


def pretrain_dataset(
    data_dir: str,
    split: str,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    repeat: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Pretraining sequences of split `"train"` or `"valid"`.

    Args:
        data_dir: a directory made by `launch/prepare_data.py`.
        split: `"train"` or `"valid"` (of `pretrain/`).
        batch_size: B.
        shuffle: shuffle files and examples (reshuffled every epoch).
        seed: shuffle seed.
        repeat: repeat forever.
        drop_remainder: drop the last partial batch.

    Returns:
        Batches `{"source": int32 [B, L]}`.
    """
    _check_batch_size(batch_size)
    info = di.DatasetInfo.load(data_dir)
    files = info.files(data_dir, f"pretrain/{split}")
    ds = _records(files, shuffle, seed)
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(
        _parser(examples.pretrain_spec(info.seq_len)),
        num_parallel_calls=_AUTOTUNE,
    )
    return input_options.with_input_options(ds.prefetch(_AUTOTUNE))


def finetune_train_dataset(
    data_dir: str,
    batch_size: int,
    *,
    seed: int,
    train_fraction: float = 1.0,
    shuffle_buffer: int = 10_000,
    repeat: bool = False,
    fraction_seed: int | None = None,
    num_reward_negatives: int = 0,
) -> tf.data.Dataset:
    """Shuffled fine-tuning training instances with sampled negatives.

    Args:
        data_dir: a directory made by `launch/prepare_data.py`.
        batch_size: B; the last partial batch is kept.
        seed: seeds the file and example shuffles and the negatives.
        train_fraction: keep this seeded fraction of the training split
            (paper sec. 5.4), selected in-graph on the stored `index` by
            `splits.train_fraction_mask`; no rebuild needed.
        shuffle_buffer: example shuffle buffer.
        repeat: repeat forever (negatives still differ per epoch).
        fraction_seed: seed of the `train_fraction` subset; default the
            dataset's seed, so the subset stays fixed when `seed` changes
            per epoch and equals the one `prepare_data --train_fraction`
            writes.
        num_reward_negatives: n > 0 adds `"reward_negatives"`, n more
            negatives per instance for the UAF-RL reward (the positive is
            ranked among them). Drawn from a seed folded from the batch's
            seed, so `negative` is the same with or without them and the
            batches stay a function of `seed` (exact resume).

    Returns:
        Batches `{"source": int32 [B, L], "target": int32 [B],
        "negative": int32 [B], "user": string [B], "index": int64 [B]}`
        (+ `"reward_negatives": int32 [B, n]`). Negatives are uniform over
        [1, num_target_ids) minus `target`, drawn with replacement.
    """
    if num_reward_negatives < 0:
        raise ValueError(
            "`num_reward_negatives` must be >= 0. "
            f"Received: num_reward_negatives={num_reward_negatives}"
        )
    _check_batch_size(batch_size)
    info = di.DatasetInfo.load(data_dir)
    files = info.files(data_dir, "finetune/train")
    ds = _records(files, True, seed)
    if train_fraction < 1.0:
        keep = splits.train_fraction_mask(
            info.split_sizes["finetune/train"],
            train_fraction,
            info.seed if fraction_seed is None else fraction_seed,
        )
        index_spec = {di.INDEX: tf.io.FixedLenFeature([1], tf.int64)}

        def kept(serialized):
            index = tf.io.parse_single_example(serialized, index_spec)
            return tf.gather(keep, index[di.INDEX][0])

        ds = ds.filter(kept)
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size)
    ds = ds.map(
        _parser(examples.finetune_spec(info.seq_len)),
        num_parallel_calls=_AUTOTUNE,
    )
    # One stateless seed per batch; `rerandomize_each_iteration` gives new
    # seeds (new negatives) each time the dataset is iterated again.
    batch_seeds = tf.data.Dataset.random(
        seed=seed, rerandomize_each_iteration=True
    ).batch(2)
    num_target_ids = info.num_target_ids

    def add_negative(features, batch_seed):
        features[di.NEGATIVE] = negatives.sample_negatives(
            features[di.TARGET], num_target_ids, 1, batch_seed
        )[:, 0]
        if num_reward_negatives:
            features[di.REWARD_NEGATIVES] = negatives.sample_negatives(
                features[di.TARGET],
                num_target_ids,
                num_reward_negatives,
                tf.random.experimental.stateless_fold_in(batch_seed, 1),
            )
        return features

    ds = tf.data.Dataset.zip(ds, batch_seeds).map(
        add_negative, num_parallel_calls=_AUTOTUNE
    )
    return input_options.with_input_options(ds.prefetch(_AUTOTUNE))


def eval_dataset(data_dir: str, split: str, batch_size: int) -> tf.data.Dataset:
    """Fine-tuning `"valid"` or `"test"` instances with stored candidates.

    Args:
        data_dir: a directory made by `launch/prepare_data.py`.
        split: `"valid"` or `"test"`.
        batch_size: B; the last partial batch is kept.

    Returns:
        Batches `{"source": int32 [B, L], "target": int32 [B],
        "candidates": int32 [B, 1 + num_eval_negatives] (positive first),
        "user": string [B], "index": int64 [B]}`, in a fixed order.
    """
    if split not in ("valid", "test"):
        raise ValueError(
            f"`split` must be 'valid' or 'test'. Received: split={split!r}"
        )
    _check_batch_size(batch_size)
    info = di.DatasetInfo.load(data_dir)
    files = info.files(data_dir, f"finetune/{split}")
    ds = _records(files, False, 0).batch(batch_size)
    spec = examples.finetune_spec(info.seq_len, 1 + info.num_eval_negatives)
    ds = ds.map(_parser(spec), num_parallel_calls=_AUTOTUNE)
    return input_options.with_input_options(ds.prefetch(_AUTOTUNE))
