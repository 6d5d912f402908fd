"""The in-graph synthetic stream: shapes, planted rule, Zipf, determinism."""

import math

import numpy as np
import pytest

from uaf_tf.data import synthetic_stream


def _all(dataset):
    return np.concatenate([b["source"].numpy() for b in dataset])


def test_every_user_once_in_batches_with_the_remainder_last():
    dataset = synthetic_stream.pretrain_stream(1000, 50, 6, 64)
    shapes = [b["source"].shape for b in dataset]
    assert len(shapes) == 16  # ceil(1000 / 64)
    assert shapes[:-1] == [(64, 6)] * 15
    assert shapes[-1] == (1000 - 15 * 64, 6)


def test_sequences_are_left_padded_with_ids_in_range():
    ids = _all(
        synthetic_stream.pretrain_stream(
            2000, 30, 10, 256, min_seq_len=4, seed=3
        )
    )
    lengths = np.count_nonzero(ids, axis=1)
    assert lengths.min() == 4 and lengths.max() == 10
    for row, length in zip(ids, lengths, strict=True):
        assert not row[: 10 - length].any()  # Padding on the left only.
        assert row[10 - length :].min() >= 1
    assert ids.max() == 29  # Ids 1 .. V - 1.


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_planted_successor_rule_holds_but_for_the_noise(noise):
    """A fresh draw equals the successor by chance with probability about
    1 / V only, so the successor rate is 1 - noise up to sampling."""
    num_items = 500
    ids = _all(
        synthetic_stream.pretrain_stream(
            4000, num_items, 12, 512, noise=noise, seed=1
        )
    )
    previous, following = ids[:, :-1], ids[:, 1:]
    successor = following == previous % (num_items - 1) + 1
    assert successor.mean() == pytest.approx(1 - noise, abs=0.01)


def test_fresh_items_are_log_uniform_most_frequent_first():
    """`P(k) = log(1 + 1/k) / log V`: id 1 gets log 2 / log V (11.2% for
    V = 500), id 2 log 1.5 / log V (6.5%)."""
    draws = synthetic_stream.log_uniform_items([200_000], 500, [0, 7])
    counts = np.bincount(draws.numpy(), minlength=500)
    assert counts[0] == 0
    for k in (1, 2, 10):
        expected = math.log(1 + 1 / k) / math.log(500)
        assert counts[k] / 200_000 == pytest.approx(expected, rel=0.05)


def test_a_batch_is_a_function_of_seed_and_index_only():
    dataset = synthetic_stream.pretrain_stream(300, 1000, 8, 100, seed=5)
    batches = [b["source"].numpy() for b in dataset]
    np.testing.assert_array_equal(_all(dataset), np.concatenate(batches))
    alone = synthetic_stream.synthetic_batch(2, 100, 1000, 8, seed=5)
    np.testing.assert_array_equal(alone, batches[2])
    other = synthetic_stream.pretrain_stream(300, 1000, 8, 100, seed=6)
    assert (_all(other) != np.concatenate(batches)).mean() > 0.5


def test_a_billion_users_and_items_stream_without_materialising():
    """Nothing proportional to the users or items is built: the first
    batch of 10^9 users over 10^9 items comes at once."""
    dataset = synthetic_stream.pretrain_stream(10**9, 10**9, 20, 32)
    first = next(iter(dataset))["source"].numpy()
    assert first.shape == (32, 20)
    assert first.max() < 10**9
    assert dataset.cardinality().numpy() == 10**9 // 32


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="Received: num_items=1"):
        synthetic_stream.pretrain_stream(10, 1, 5, 2)
