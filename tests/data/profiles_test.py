"""The profile task's input path: labels, the user split, tf.data."""

import numpy as np
import pytest

from uaf_tf import testing
from uaf_tf.data import dataset_info
from uaf_tf.data import profiles

NUM_SOURCE_ITEMS = 60


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("profiles") / "data")
    testing.build_tiny_dataset_dir(
        out, num_users=120, num_source_items=NUM_SOURCE_ITEMS, num_groups=4
    )
    testing.write_planted_profiles(out, NUM_SOURCE_ITEMS, skip_users=3)
    return out


def test_class_names_sort_brackets_by_their_lower_bound():
    assert profiles.class_names(["56+", "0-17", "18-24", "0-17", "25-34"]) == (
        "0-17",
        "18-24",
        "25-34",
        "56+",
    )
    assert profiles.class_names(["M", "F", "M"]) == ("F", "M")


def test_user_split_is_seeded_80_10_10_and_disjoint():
    split = profiles.user_split(1000, seed=3)
    assert {s: int(np.sum(split == s)) for s in ("train", "valid", "test")} == {
        "train": 800,
        "valid": 100,
        "test": 100,
    }
    np.testing.assert_array_equal(split, profiles.user_split(1000, seed=3))
    assert not np.array_equal(split, profiles.user_split(1000, seed=4))
    # At least one valid and one test user on tiny inputs.
    assert sorted(profiles.user_split(3, seed=0)) == ["test", "train", "valid"]
    with pytest.raises(ValueError, match="Received: num_users=2"):
        profiles.user_split(2, seed=0)


def test_load_profile_data_labels_every_user_but_the_skipped(data_dir):
    planted = profiles.read_profile_labels(data_dir, "gender")
    users, sources = profiles.user_sources(data_dir)
    assert len(users) == 120 and sources.shape == (120, 12)
    data = profiles.load_profile_data(data_dir, "gender")
    assert data.num_skipped == 3
    assert data.class_names == ("F", "M") and data.num_classes == 2
    assert data.seed == dataset_info.DatasetInfo.load(data_dir).seed
    assert {s: len(t) for s, t in data.targets.items()} == {
        "train": 93,
        "valid": 12,
        "test": 12,
    }
    by_user = dict(zip(users, sources, strict=True))
    seen = set()
    for split in ("train", "valid", "test"):
        for user, source, target in zip(
            data.users[split],
            data.sources[split],
            data.targets[split],
            strict=True,
        ):
            assert data.class_names[target] == planted[user.decode()]
            np.testing.assert_array_equal(source, by_user[user])
            seen.add(user)
    assert len(seen) == 117
    np.testing.assert_array_equal(
        data.class_counts("train"), np.bincount(data.targets["train"])
    )


def test_age_label_uses_the_age_bracket_column(data_dir):
    data = profiles.load_profile_data(data_dir, "age", seed=5)
    assert data.class_names == ("0-17", "18-24", "25-34")
    assert data.seed == 5


def test_profile_dataset_keeps_the_remainder_in_order(data_dir):
    data = profiles.load_profile_data(data_dir, "gender")
    batches = list(profiles.profile_dataset(data, "train", 40))
    assert [len(b["target"]) for b in batches] == [40, 40, 13]
    assert set(batches[0]) == {"source", "target", "user"}
    np.testing.assert_array_equal(
        np.concatenate([b["target"].numpy() for b in batches]),
        data.targets["train"],
    )
    shuffled = list(profiles.profile_dataset(data, "train", 93, shuffle_seed=1))
    assert sorted(shuffled[0]["user"].numpy()) == sorted(data.users["train"])


def test_errors_name_what_is_wrong(tmp_path, data_dir):
    with pytest.raises(ValueError, match="Received: label='zip'"):
        profiles.read_profile_labels(data_dir, "zip")
    with pytest.raises(FileNotFoundError, match="user_profiles.tsv"):
        profiles.read_profile_labels(str(tmp_path), "gender")
