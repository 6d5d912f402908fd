"""Splits: exact 80/5/15 proportions, disjointness, train_fraction subsets."""

import numpy as np
import pytest

from uaf_tf.data import splits


@pytest.mark.parametrize("n", [1, 7, 20, 101, 10_007])
def test_finetune_split_sizes_are_80_5_15_within_one(n):
    codes = splits.finetune_split_codes(n, seed=3)
    counts = np.bincount(codes, minlength=3)
    assert counts.sum() == n
    for code, fraction in ((0, 0.80), (1, 0.05), (2, 0.15)):
        assert abs(counts[code] - fraction * n) <= 1


def test_finetune_codes_are_seeded():
    a = splits.finetune_split_codes(1000, seed=1)
    b = splits.finetune_split_codes(1000, seed=1)
    c = splits.finetune_split_codes(1000, seed=2)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_pretrain_valid_is_five_percent_and_at_least_one_user():
    mask = splits.pretrain_valid_mask(1000, seed=0)
    assert mask.sum() == 50
    assert splits.pretrain_valid_mask(2, seed=0).sum() == 1
    with pytest.raises(ValueError, match="at least 2 users"):
        splits.pretrain_valid_mask(1, seed=0)


def test_shards_are_round_robin_over_a_permutation():
    shards = splits.shard_assignment(1003, 4, seed=0, salt=1)
    assert np.bincount(shards).tolist() == [251, 251, 251, 250]
    # Not contiguous runs: the first 100 examples spread over all shards.
    assert set(shards[:100].tolist()) == {0, 1, 2, 3}


def test_train_fraction_mask_keeps_exact_count_and_nested_subsets():
    n = 2000
    tenth = splits.train_fraction_mask(n, 0.1, seed=5).numpy()
    half = splits.train_fraction_mask(n, 0.5, seed=5).numpy()
    assert (tenth.sum(), half.sum()) == (200, 1000)
    assert not (tenth & ~half).any()  # The 10% subset is inside the 50%.
    other = splits.train_fraction_mask(n, 0.5, seed=6).numpy()
    assert (half != other).any()
    assert splits.train_fraction_mask(n, 1.0, seed=5).numpy().all()


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_train_fraction_must_be_in_unit_interval(fraction):
    with pytest.raises(ValueError, match="train_fraction"):
        splits.train_fraction_mask(10, fraction, seed=0)
