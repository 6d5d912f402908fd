"""build_dataset: the MovieLens releases from a (fake) verified cache."""

import dataclasses
import hashlib
import json
import os

import pytest

from uaf_tf.data.preparation import builders
from uaf_tf.data.preparation import fetch
from uaf_tf.data.preparation import user_profiles
from uaf_tf.data.preparation.write_options import WriteOptions

# user::item::rating::timestamp. User 1: source 10, 11, 12 (< 4; the two
# latest kept with seq_len=2), 13 is a 4 (neither domain), targets 21
# (t=0) and 20 (t=4). User 2: source 10, target 22. User 3: target only
# (excluded). User 4: source only (pretraining only).
RATINGS_DAT = (
    "1::10::3::1\n1::11::2::2\n1::12::1::3\n1::13::4::3\n1::20::5::4\n"
    "1::21::5::0\n2::10::1::5\n2::22::5::6\n3::30::5::1\n4::11::3::2\n"
)
USERS_DAT = (
    "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n"
    "4::F::45::7::02460\n"
)


@pytest.fixture
def ml_1m_cache(tmp_path, monkeypatch):
    """A cache that `fetch` accepts without the network."""
    cache = tmp_path / "cache"
    ml_dir = cache / "ml-1m"
    ml_dir.mkdir(parents=True)
    files = {"ratings.dat": RATINGS_DAT, "users.dat": USERS_DAT}
    for name, text in files.items():
        (ml_dir / name).write_text(text)
    (ml_dir / fetch.FETCH_RECORD).write_text("{}")
    release = dataclasses.replace(
        fetch.RELEASES["ml-1m"],
        files={
            k: hashlib.sha256(v.encode()).hexdigest() for k, v in files.items()
        },
    )
    monkeypatch.setitem(fetch.RELEASES, "ml-1m", release)
    return str(cache)


def test_movielens_1m_rule_stats_and_profiles(tmp_path, ml_1m_cache):
    out = str(tmp_path / "out")
    stats = builders.build_dataset(
        "movielens-1m",
        out,
        WriteOptions(seq_len=2, num_eval_negatives=1),
        cache_dir=ml_1m_cache,
    )
    assert stats["name"] == "movielens-1m"
    assert (stats["pretrain_users"], stats["finetune_users"]) == (3, 2)
    assert stats["finetune_instances"] == 3  # 20, 21 (user 1), 22 (user 2)
    assert stats["target_vocab_size"] == 3
    assert stats["seq_len_histogram"]["pretrain"] == {"1": 2, "2": 1}
    assert stats["domains"]["ignored_interactions"] == 1  # The 4-star.
    assert stats["domains"]["source_histories_truncated_to_seq_len"] == 1
    excluded = {k: v["count"] for k, v in stats["excluded_users"].items()}
    assert excluded == {"no_source": 1, "no_target": 1, "neither_domain": 0}
    with open(os.path.join(out, "source_vocab.txt")) as f:
        assert sorted(f.read().split()) == ["10", "11", "12"]

    assert stats["user_profiles"] == 4
    with open(os.path.join(out, "stats.json")) as f:
        assert json.load(f)["user_profiles"] == 4
    profiles = user_profiles.read_user_profiles(out)
    assert profiles["1"] == ("F", "0-17", "K-12 student")
    assert profiles["2"] == ("M", "56+", "self-employed")
    assert profiles["4"] == ("F", "45-49", "executive/managerial")


def test_users_dat_with_unknown_codes_is_an_error(tmp_path):
    path = tmp_path / "users.dat"
    path.write_text("1::F::1::10::48067\n2::M::57::16::70072\n")
    with pytest.raises(ValueError, match=r"users.dat:2"):
        user_profiles.read_users_dat(str(path))


@pytest.mark.large
def test_real_movielens_1m_matches_the_issue_statistics(tmp_path):
    # Issue 8, sec. 1 (computed independently of this code).
    stats = builders.build_dataset("movielens-1m", str(tmp_path / "ml1m"))
    assert stats["pretrain_users"] == 6030
    assert stats["finetune_users"] == 6004
    assert stats["finetune_instances"] == 226_115
    assert stats["target_vocab_size"] == 3231
    assert stats["user_profiles"] == 6040
