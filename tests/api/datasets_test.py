"""`uaf_tf.prepare_dataset` / `open_dataset` and their errors."""

import json
import os

import pytest

import uaf_tf


def test_prepare_then_open(tmp_path):
    out_dir = tmp_path / "data"
    data = uaf_tf.prepare_dataset(
        "synthetic",
        out_dir,  # A PathLike works too.
        num_users=120,
        num_source_items=30,
        num_target_items=20,
        seq_len=8,
        num_eval_negatives=5,
        num_shards=1,
    )
    assert data.path == os.fspath(out_dir) == os.fspath(data)
    assert (data.info.seq_len, data.info.num_eval_negatives) == (8, 5)
    assert data.info.name == "synthetic"
    with open(out_dir / "stats.json") as f:
        assert data.stats == json.load(f)
    # 120 users, 3 targets each (the default), every one an instance.
    sizes = data.info.split_sizes
    assert sum(sizes[f"finetune/{s}"] for s in ("train", "valid", "test")) == (
        120 * 3
    )
    assert uaf_tf.open_dataset(str(out_dir)) == data


def test_unknown_kind_and_options_are_named(tmp_path):
    with pytest.raises(ValueError, match="`kind` must be one of"):
        uaf_tf.prepare_dataset("movielens-25m", tmp_path)
    with pytest.raises(TypeError, match=r"unknown: \['num_user', 'sed'\]"):
        uaf_tf.prepare_dataset("synthetic", tmp_path, num_user=5, sed=1)
    # Checked before the download: no network is touched here.
    with pytest.raises(TypeError, match=r"unknown: \['ratings_file'\]"):
        uaf_tf.prepare_dataset("movielens-100k", tmp_path, ratings_file="x")
    with pytest.raises(
        TypeError, match=r"missing: \['finetune_file', 'pretrain_file'\]"
    ):
        uaf_tf.prepare_dataset("original", tmp_path)
    assert os.listdir(tmp_path) == []  # Nothing written.


def test_open_dataset_names_the_missing_file(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=f"{tmp_path} is not a dataset directory: .*dataset.json",
    ):
        uaf_tf.open_dataset(tmp_path)


def test_dataset_kinds_are_the_builders():
    assert set(uaf_tf.DATASET_KINDS) >= {
        "synthetic",
        "movielens-100k",
        "movielens",
        "original",
        "interactions",
    }
