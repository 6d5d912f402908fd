"""tf.train.Example encoding: the per-user prefix trick and padding."""

import numpy as np
import pytest
import tensorflow as tf

from uaf_tf.data import examples


def test_concatenated_parts_equal_one_whole_example():
    source = examples.int64_feature(examples.pad_left([5, 6, 7], 6))
    user_part = examples.finetune_user_part(source, "ü-42".encode())
    record = examples.finetune_example(user_part, 9, 3, [9, 1, 2])
    whole = tf.train.Example(
        features=tf.train.Features(
            feature={
                "source": source,
                "user": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=["ü-42".encode()])
                ),
                "target": examples.int64_feature([9]),
                "index": examples.int64_feature([3]),
                "candidates": examples.int64_feature([9, 1, 2]),
            }
        )
    )
    assert tf.train.Example.FromString(record) == whole
    parsed = tf.io.parse_example(
        [record, whole.SerializeToString()], examples.finetune_spec(6, 3)
    )
    np.testing.assert_array_equal(parsed["source"], [[0, 0, 0, 5, 6, 7]] * 2)
    np.testing.assert_array_equal(parsed["candidates"], [[9, 1, 2]] * 2)
    assert parsed["user"][0, 0].numpy().decode() == "ü-42"


def test_pad_left_keeps_order_and_rejects_overflow():
    assert examples.pad_left([3, 4], 4) == [0, 0, 3, 4]
    assert examples.pad_left([], 2) == [0, 0]
    with pytest.raises(ValueError, match="seq_len=1"):
        examples.pad_left([1, 2], 1)


def test_feature_maps_are_written_in_key_order():
    # Protobuf writes map entries in a per-process random order unless
    # asked not to; key order makes every build byte-reproducible.
    source = examples.int64_feature([1, 2])
    user_part = examples.finetune_user_part(source, b"u")
    record = examples.finetune_example(user_part, 9, 3, [9, 1, 2])
    assert user_part.index(b"source") < user_part.index(b"user")
    instance = record[len(user_part) :]
    keys = [b"candidates", b"index", b"target"]
    assert [instance.index(k) for k in keys] == sorted(
        instance.index(k) for k in keys
    )
