"""tf.data pipelines: shapes, in-graph negatives, eval candidates, fractions."""

import collections

import numpy as np
import pytest
import tensorflow as tf

from uaf_tf.data import dataset_info as di
from uaf_tf.data import negatives
from uaf_tf.data import pipelines
from uaf_tf.data.preparation import synthetic
from uaf_tf.data.preparation.write_options import WriteOptions

PLANTED = dict(
    num_users=400,
    num_source_items=60,
    num_target_items=30,
    targets_per_user=3,
    num_groups=3,
    min_seq_len=2,
)


def _options(**kwargs) -> WriteOptions:
    return WriteOptions(seq_len=8, **kwargs)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("synthetic"))
    synthetic.build_synthetic_dataset(
        out, _options(seed=7, num_eval_negatives=9, num_shards=3), **PLANTED
    )
    return out


@pytest.fixture(scope="module")
def tiny_vocab_dir(tmp_path_factory):
    """5 target items: a negative equal to the positive would show."""
    out = str(tmp_path_factory.mktemp("tiny"))
    synthetic.build_synthetic_dataset(
        out,
        WriteOptions(seq_len=4, seed=1, num_eval_negatives=3),
        num_users=300,
        num_source_items=20,
        num_target_items=5,
        targets_per_user=2,
        num_groups=2,
    )
    return out


def _all(ds):
    batches = list(ds.as_numpy_iterator())
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def _instances(data):
    """Multiset of (user, source, target) rows."""
    return collections.Counter(
        (u, tuple(s), t)
        for u, s, t in zip(
            data["user"], data["source"].tolist(), data["target"], strict=True
        )
    )


def test_element_specs(data_dir):
    pre = pipelines.pretrain_dataset(
        data_dir, "train", 16, shuffle=True, seed=0
    )
    assert pre.element_spec == {"source": tf.TensorSpec([None, 8], tf.int32)}
    train = pipelines.finetune_train_dataset(data_dir, 16, seed=0)
    assert train.element_spec == {
        "source": tf.TensorSpec([None, 8], tf.int32),
        "target": tf.TensorSpec([None], tf.int32),
        "negative": tf.TensorSpec([None], tf.int32),
        "user": tf.TensorSpec([None], tf.string),
        "index": tf.TensorSpec([None], tf.int64),
    }
    test = pipelines.eval_dataset(data_dir, "test", 16)
    assert test.element_spec["candidates"] == tf.TensorSpec(
        [None, 10], tf.int32
    )
    assert test.element_spec["index"] == tf.TensorSpec([None], tf.int64)


def test_pretrain_reads_every_sequence_and_drops_remainder(data_dir):
    info = di.DatasetInfo.load(data_dir)
    n = info.split_sizes["pretrain/train"]
    plain = _all(
        pipelines.pretrain_dataset(data_dir, "train", 64, shuffle=False, seed=0)
    )["source"]
    shuffled = _all(
        pipelines.pretrain_dataset(data_dir, "train", 64, shuffle=True, seed=3)
    )["source"]
    assert len(plain) == n == 380
    assert sorted(map(tuple, plain.tolist())) == sorted(
        map(tuple, shuffled.tolist())
    )
    assert (plain != shuffled).any()
    # Left-padded: once a row has an item, no padding follows.
    started = np.maximum.accumulate(plain > 0, axis=1)
    assert ((plain > 0) == started).all()
    dropped = pipelines.pretrain_dataset(
        data_dir, "train", 64, shuffle=False, seed=0, drop_remainder=True
    )
    assert sum(b["source"].shape[0] for b in dropped) == 64 * (n // 64)
    repeated = pipelines.pretrain_dataset(
        data_dir, "valid", 7, shuffle=True, seed=0, repeat=True
    )
    assert len(list(repeated.take(10))) == 10  # 20 users, 3 batches/epoch.


def test_negatives_never_positive_or_padding_with_tiny_vocab(tiny_vocab_dir):
    info = di.DatasetInfo.load(tiny_vocab_dir)
    assert info.num_target_ids == 6
    ds = pipelines.finetune_train_dataset(
        tiny_vocab_dir, 32, seed=0, repeat=True
    )
    pairs = collections.Counter()
    for batch in ds.take(300).as_numpy_iterator():
        neg, pos = batch["negative"], batch["target"]
        assert (neg != pos).all()
        assert neg.min() >= 1 and neg.max() < info.num_target_ids
        pairs.update(zip(pos.tolist(), neg.tolist(), strict=True))
    # Uniform over the 4 other items for every positive.
    for pos in range(1, 6):
        counts = [pairs[(pos, neg)] for neg in range(1, 6) if neg != pos]
        assert min(counts) > 0.7 * np.mean(counts)


def test_negatives_are_seeded_and_redrawn_every_epoch(data_dir):
    def epoch(ds):
        data = _all(ds)
        return dict(zip(data["index"], data["negative"], strict=True))

    ds = pipelines.finetune_train_dataset(data_dir, 50, seed=11)
    first, second = epoch(ds), epoch(ds)
    assert len(first) == 960
    changed = np.mean([first[i] != second[i] for i in first])
    assert changed > 0.8
    again = epoch(pipelines.finetune_train_dataset(data_dir, 50, seed=11))
    assert again == first


def test_reward_negatives_are_seeded_and_leave_the_rest_unchanged(
    tiny_vocab_dir,
):
    def epoch(**kwargs):
        ds = pipelines.finetune_train_dataset(
            tiny_vocab_dir, 32, seed=3, **kwargs
        )
        return list(ds.as_numpy_iterator())

    plain, with_rl = epoch(), epoch(num_reward_negatives=99)
    assert di.REWARD_NEGATIVES not in plain[0]
    assert len(plain) == len(with_rl)
    for a, b in zip(plain, with_rl, strict=True):
        # Same instances, order and training negatives with or without them.
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
        rewards = b[di.REWARD_NEGATIVES]
        assert rewards.shape == (len(b["target"]), 99)
        assert rewards.dtype == np.int32
        assert (rewards != b["target"][:, None]).all()
        assert rewards.min() >= 1 and rewards.max() < 6
    # A function of the seed: an exact resume sees the same negatives.
    again = epoch(num_reward_negatives=99)
    for a, b in zip(with_rl, again, strict=True):
        np.testing.assert_array_equal(
            a[di.REWARD_NEGATIVES], b[di.REWARD_NEGATIVES]
        )
    with pytest.raises(ValueError, match="num_reward_negatives"):
        epoch(num_reward_negatives=-1)


def test_sample_negatives_with_generator_and_stateless_seed():
    positives = tf.constant([1, 2, 3, 4, 5] * 40, tf.int32)
    for seed_or_generator in (
        tf.random.Generator.from_seed(0),
        tf.constant([3, 4], tf.int64),
        7,
    ):
        neg = negatives.sample_negatives(positives, 6, 99, seed_or_generator)
        assert neg.shape == (200, 99) and neg.dtype == tf.int32
        neg = neg.numpy()
        assert (neg != positives.numpy()[:, None]).all()
        assert neg.min() >= 1 and neg.max() <= 5
    with pytest.raises(ValueError, match="num_target_ids"):
        negatives.sample_negatives(positives, 2, 1, (0, 0))


def test_sample_negatives_inside_a_tf_function():
    gen = tf.random.Generator.from_seed(5)

    @tf.function
    def draw(pos):
        return negatives.sample_negatives(pos, 1000, 99, gen)

    pos = tf.range(1, 1000, dtype=tf.int32)
    a, b = draw(pos).numpy(), draw(pos).numpy()
    assert (a != b).any()
    assert (a != pos.numpy()[:, None]).all() and a.max() < 1000


def test_eval_order_partial_batch_and_candidates(data_dir):
    info = di.DatasetInfo.load(data_dir)
    ds = pipelines.eval_dataset(data_dir, "test", 32)
    sizes = [b["target"].shape[0] for b in ds.as_numpy_iterator()]
    assert sum(sizes) == info.split_sizes["finetune/test"] == 180
    assert sizes[-1] == 180 % 32
    a, b = _all(ds), _all(pipelines.eval_dataset(data_dir, "test", 7))
    np.testing.assert_array_equal(a["index"], b["index"])
    assert sorted(a["index"]) == list(range(180))
    cands = a["candidates"]
    np.testing.assert_array_equal(cands[:, 0], a["target"])
    assert all(len(set(row)) == len(row) for row in cands.tolist())
    assert cands.min() >= 1 and cands.max() < info.num_target_ids


def test_candidates_depend_only_on_the_seed(tmp_path, data_dir):
    same = str(tmp_path / "same")
    other = str(tmp_path / "other")
    synthetic.build_synthetic_dataset(
        same, _options(seed=7, num_eval_negatives=9, num_shards=1), **PLANTED
    )
    synthetic.build_synthetic_dataset(
        other, _options(seed=8, num_eval_negatives=9, num_shards=3), **PLANTED
    )
    for split in ("valid", "test"):
        ref = _all(pipelines.eval_dataset(data_dir, split, 64))
        by_index = dict(
            zip(ref["index"], ref["candidates"].tolist(), strict=True)
        )
        got = _all(pipelines.eval_dataset(same, split, 64))
        for index, row in zip(
            got["index"], got["candidates"].tolist(), strict=True
        ):
            assert by_index[index] == row
    ref = _all(pipelines.eval_dataset(data_dir, "test", 64))
    got = _all(pipelines.eval_dataset(other, "test", 64))
    assert {tuple(r[1:]) for r in ref["candidates"].tolist()}.isdisjoint(
        {tuple(r[1:]) for r in got["candidates"].tolist()}
    )


def test_train_fraction_subsamples_train_only(data_dir, tmp_path):
    full = _all(pipelines.finetune_train_dataset(data_dir, 128, seed=0))
    assert len(full["index"]) == 960
    tenth = _all(
        pipelines.finetune_train_dataset(
            data_dir, 128, seed=0, train_fraction=0.1
        )
    )
    half = _all(
        pipelines.finetune_train_dataset(
            data_dir, 128, seed=5, train_fraction=0.5
        )
    )
    assert (len(tenth["index"]), len(half["index"])) == (96, 480)
    assert set(tenth["index"]) <= set(half["index"])  # Seed-independent.
    # Written at build time with the same dataset seed: the same subset.
    written = str(tmp_path / "written")
    stats = synthetic.build_synthetic_dataset(
        written,
        _options(seed=7, num_eval_negatives=9, train_fraction=0.5),
        **PLANTED,
    )
    assert stats["split_sizes"]["finetune/train"] == 480
    assert stats["finetune_train_before_fraction"] == 960
    assert stats["split_sizes"]["finetune/test"] == 180
    on_disk = _all(pipelines.finetune_train_dataset(written, 128, seed=0))
    assert sorted(on_disk["index"]) == list(range(480))
    assert _instances(on_disk) == _instances(half)


def test_bad_arguments(data_dir):
    with pytest.raises(ValueError, match="split"):
        pipelines.eval_dataset(data_dir, "train", 8)
    with pytest.raises(ValueError, match="batch_size"):
        pipelines.finetune_train_dataset(data_dir, 0, seed=0)
    with pytest.raises(KeyError, match="pretrain/test"):
        pipelines.pretrain_dataset(data_dir, "test", 8, shuffle=False, seed=0)
    with pytest.raises(FileNotFoundError, match="prepare_data"):
        pipelines.eval_dataset(data_dir + "/nowhere", "test", 8)
