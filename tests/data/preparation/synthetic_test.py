"""Planted synthetic data: shapes, id ranges, the planted signal, files."""

import numpy as np
import pytest

from uaf_tf.data import pipelines
from uaf_tf.data.preparation import original
from uaf_tf.data.preparation import readers
from uaf_tf.data.preparation import synthetic
from uaf_tf.data.preparation.bad_lines import BadLines
from uaf_tf.data.preparation.write_options import WriteOptions


def _arrays(**overrides):
    kwargs = dict(
        num_users=5000,
        num_source_items=200,
        num_target_items=50,
        seq_len=12,
        targets_per_user=3,
        num_groups=5,
        seed=0,
    )
    kwargs.update(overrides)
    return synthetic.planted_arrays(**kwargs)


def test_planted_arrays_shapes_ranges_and_seeding():
    data = _arrays()
    assert data["source"].shape == (5000, 12)
    assert data["target"].shape == (5000, 3)
    assert data["source"].dtype == np.int64
    assert data["source"].min() >= 1 and data["source"].max() <= 200
    assert data["target"].min() >= 1 and data["target"].max() <= 50
    again = _arrays()
    np.testing.assert_array_equal(data["source"], again["source"])
    other = _arrays(seed=1)
    assert (data["source"] != other["source"]).any()


def test_targets_and_sources_come_mostly_from_the_users_group():
    data = _arrays(noise=0.1)
    group = data["group"]
    # Group g owns source items [40g + 1, 40g + 40], targets [10g + 1, ...].
    source_in_group = (data["source"] - 1) // 40 == group[:, None]
    target_in_group = (data["target"] - 1) // 10 == group[:, None]
    # 90% planted + 10% noise that lands in the group by chance (1/5).
    assert source_in_group.mean() == pytest.approx(0.92, abs=0.01)
    assert target_in_group.mean() == pytest.approx(0.92, abs=0.01)


def test_source_sequences_follow_the_markov_chain():
    data = _arrays(noise=0.0, num_groups=4)
    step = np.diff(data["source"], axis=1) % 50  # Slices of 50 items.
    assert set(np.unique(step).tolist()) == {1, 2, 3}


def test_invalid_sizes_are_rejected():
    with pytest.raises(ValueError, match="num_groups"):
        _arrays(num_target_items=3)
    with pytest.raises(ValueError, match="num_users"):
        _arrays(num_users=0)


def test_original_files_match_planted_arrays(tmp_path):
    config = synthetic.PlantedConfig(
        num_users=5000,
        num_source_items=300,
        num_target_items=40,
        seq_len=6,
        targets_per_user=2,
        num_groups=4,
        seed=3,
        min_seq_len=2,
    )
    pre, fine = str(tmp_path / "pre.csv"), str(tmp_path / "fine.csv")
    synthetic.write_original_files(pre, fine, config)
    lines = (tmp_path / "pre.csv").read_text().splitlines()
    assert len(lines) == 5000
    assert all(len(line.split(",")) == 6 for line in lines)  # Fixed length.
    chunks = list(synthetic.iter_chunks(config))
    source = np.concatenate([c.source for c in chunks])
    target = np.concatenate([c.target for c in chunks])
    rows = list(readers.read_finetune_file(fine, bad_lines=BadLines()))
    assert len(rows) == 5000
    for u in (0, 4095, 4096, 4999):  # Across the chunk boundary.
        _, src, tgt = rows[u]
        assert [int(i) for i in src] == [i for i in source[u] if i]
        assert [int(t) for t in tgt] == target[u].tolist()
    lengths = [len(r[1]) for r in rows]
    assert min(lengths) == 2 and max(lengths) == 6


def test_synthetic_directory_equals_the_original_file_build(tmp_path):
    sizes = dict(
        num_users=300,
        num_source_items=80,
        num_target_items=30,
        seq_len=7,
        targets_per_user=2,
        num_groups=3,
        seed=4,
        min_seq_len=3,
    )
    config = synthetic.PlantedConfig(**sizes)
    planted = {k: v for k, v in sizes.items() if k not in ("seed", "seq_len")}
    direct = synthetic.build_synthetic_dataset(
        str(tmp_path / "direct"),
        WriteOptions(seed=4, seq_len=7, num_eval_negatives=5),
        **planted,
    )
    pre, fine = str(tmp_path / "pre.csv"), str(tmp_path / "fine.csv")
    synthetic.write_original_files(pre, fine, config)
    via_files = original.build_from_original(
        str(tmp_path / "files"),
        pre,
        fine,
        WriteOptions(seed=4, num_eval_negatives=5),
    )
    for key in ("split_sizes", "seq_len", "seq_len_histogram"):
        assert direct[key] == via_files[key]
    for name in ("source_vocab.txt", "target_vocab.txt"):
        assert (tmp_path / "direct" / name).read_text() == (
            tmp_path / "files" / name
        ).read_text()
    # Same instances and candidates; only `user` differs (user number vs.
    # 1-based line number).
    a = next(
        pipelines.eval_dataset(
            str(tmp_path / "direct"), "test", 999
        ).as_numpy_iterator()
    )
    b = next(
        pipelines.eval_dataset(
            str(tmp_path / "files"), "test", 999
        ).as_numpy_iterator()
    )
    for key in ("source", "target", "candidates", "index"):
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(
        a["user"].astype(int) + 1, b["user"].astype(int)
    )
