"""`tf.train.Example` layout of the stored splits: encoding and parse specs.

Pretraining examples hold `source` int64 [seq_len]. Fine-tuning examples
hold `source` int64 [seq_len], `target` int64 [1], `user` bytes [1] and
`index` int64 [1]; valid/test examples also hold `candidates` int64
[1 + num_eval_negatives] with the positive first.
"""

from collections.abc import Sequence

import tensorflow as tf

from uaf_tf.data import dataset_info as di

_Feature = tf.train.Feature
_Int64List = tf.train.Int64List


def pad_left(ids: Sequence[int], seq_len: int) -> list[int]:
    """Left-pads `ids` with `PAD_ID` to `seq_len` (oldest item first)."""
    if len(ids) > seq_len:
        raise ValueError(
            f"A sequence of {len(ids)} ids does not fit seq_len={seq_len}. "
            f"Received: {list(ids)[:10]}..."
        )
    return [di.PAD_ID] * (seq_len - len(ids)) + list(ids)


def int64_feature(values: Sequence[int]) -> tf.train.Feature:
    return _Feature(int64_list=_Int64List(value=values))


def pretrain_example(source: tf.train.Feature) -> bytes:
    """Serialises `{source}`; `source` from `int64_feature(padded ids)`."""
    return _serialize({di.SOURCE: source})


def _serialize(feature: dict) -> bytes:
    # `deterministic` sorts the feature map by key; without it protobuf
    # writes map entries in a per-process random order, so two builds of
    # the same input would differ byte for byte.
    return tf.train.Example(
        features=tf.train.Features(feature=feature)
    ).SerializeToString(deterministic=True)


def finetune_user_part(source: tf.train.Feature, user: bytes) -> bytes:
    """Serialised `{source, user}`, shared by all instances of a user."""
    return _serialize(
        {
            di.SOURCE: source,
            di.USER: _Feature(bytes_list=tf.train.BytesList(value=[user])),
        }
    )


def finetune_example(
    user_part: bytes,
    target: int,
    index: int,
    candidates: Sequence[int] | None = None,
) -> bytes:
    """Serialises one fine-tuning instance (`candidates` for valid/test).

    Concatenated serialised protobuf messages parse as their merge, so the
    user's part (`finetune_user_part`) is encoded once per user and only
    the per-instance features are encoded here (40% faster than building
    the whole `tf.train.Example` per instance).
    """
    feature = {
        di.TARGET: int64_feature([target]),
        di.INDEX: int64_feature([index]),
    }
    if candidates is not None:
        feature[di.CANDIDATES] = int64_feature(candidates)
    return user_part + _serialize(feature)


def pretrain_spec(seq_len: int) -> dict:
    return {di.SOURCE: tf.io.FixedLenFeature([seq_len], tf.int64)}


def finetune_spec(seq_len: int, num_candidates: int | None = None) -> dict:
    """Parse spec; `num_candidates` = 1 + num_eval_negatives for eval."""
    spec = {
        di.SOURCE: tf.io.FixedLenFeature([seq_len], tf.int64),
        di.TARGET: tf.io.FixedLenFeature([1], tf.int64),
        di.USER: tf.io.FixedLenFeature([1], tf.string),
        di.INDEX: tf.io.FixedLenFeature([1], tf.int64),
    }
    if num_candidates is not None:
        spec[di.CANDIDATES] = tf.io.FixedLenFeature([num_candidates], tf.int64)
    return spec
