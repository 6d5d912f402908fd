"""Original-format build: vocab reuse, seq_len, layout on disk, disjointness."""

import collections
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from uaf_tf.data import dataset_info as di
from uaf_tf.data import examples
from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import original
from uaf_tf.data.preparation.write_options import WriteOptions
from uaf_tf.data.vocab import Vocab

PRETRAIN = "0,0,0,12,7\n0,0,12,5,9\n0,0,0,0,12\n3,4,5,7,12\n"
# Source items 99 and 98 were never seen in pretraining: unknown -> 0.
FINETUNE = "12,7,,t1,t2\n99,5,,t2\n0,3,98,12,,t3,t1,t2\n"


def _files(tmp_path, pretrain=PRETRAIN, finetune=FINETUNE):
    pre, fine = tmp_path / "pre.csv", tmp_path / "fine.csv"
    pre.write_text(pretrain)
    fine.write_text(finetune)
    return str(pre), str(fine)


def read_split(data_dir: str, split: str) -> dict:
    """All examples of a split as numpy arrays (file order)."""
    info = di.DatasetInfo.load(data_dir)
    if split.startswith("pretrain"):
        spec = examples.pretrain_spec(info.seq_len)
    else:
        spec = examples.finetune_spec(
            info.seq_len,
            None if split == "finetune/train" else 1 + info.num_eval_negatives,
        )
    ds = tf.data.TFRecordDataset(info.files(data_dir, split))
    batches = list(
        ds.batch(1 << 20)
        .map(lambda x: tf.io.parse_example(x, spec))
        .as_numpy_iterator()
    )
    if not batches:
        return {}
    return batches[0]


def test_vocab_from_pretraining_reused_with_string_keys(tmp_path):
    pre, fine = _files(tmp_path)
    out = str(tmp_path / "out")
    stats = original.build_from_original(
        out, pre, fine, WriteOptions(num_eval_negatives=1, seed=0)
    )
    source_vocab = Vocab.load(os.path.join(out, di.SOURCE_VOCAB_FILE))
    assert source_vocab.raw_ids == ["12", "7", "5", "9", "3", "4"]
    target_vocab = Vocab.load(os.path.join(out, di.TARGET_VOCAB_FILE))
    assert target_vocab.raw_ids == ["t2", "t1", "t3"]
    assert stats["seq_len"] == 5  # The longest pretraining line.
    assert stats["unknown_source_items"] == 2
    assert stats["finetune_users_with_no_known_source_item"] == 0
    assert stats["finetune_instances"] == 6
    assert stats["seq_len_histogram"] == {
        "pretrain": {"1": 1, "2": 1, "3": 1, "5": 1},
        "finetune": {"2": 2, "3": 1},
    }
    info = di.DatasetInfo.load(out)
    assert (info.num_source_ids, info.num_target_ids) == (7, 4)

    # Every instance once over the three splits; sources left-padded,
    # oldest first, unknown items 0.
    rows = collections.Counter()
    for split in ("train", "valid", "test"):
        data = read_split(out, f"finetune/{split}")
        if not data:
            continue
        assert sorted(data["index"][:, 0]) == list(range(len(data["index"])))
        for src, tgt, user in zip(
            data["source"],
            data["target"][:, 0],
            data["user"][:, 0],
            strict=True,
        ):
            rows[(user.decode(), tuple(src), int(tgt))] += 1
    assert rows == collections.Counter(
        {
            ("1", (0, 0, 0, 1, 2), 2): 1,
            ("1", (0, 0, 0, 1, 2), 1): 1,
            ("2", (0, 0, 0, 0, 3), 1): 1,
            ("3", (0, 0, 5, 0, 1), 3): 1,
            ("3", (0, 0, 5, 0, 1), 2): 1,
            ("3", (0, 0, 5, 0, 1), 1): 1,
        }
    )


def test_explicit_seq_len_and_over_long_lines(tmp_path):
    pre, fine = _files(tmp_path, finetune=FINETUNE + "3,4,5,7,12,9,,t1\n")
    with pytest.raises(bl.BadLineError) as info:
        original.build_from_original(
            str(tmp_path / "a"), pre, fine, WriteOptions(num_eval_negatives=1)
        )
    assert (info.value.path, info.value.line_number) == (fine, 4)
    assert info.value.kind == bl.OVER_LONG_SEQUENCE
    stats = original.build_from_original(
        str(tmp_path / "b"),
        pre,
        fine,
        WriteOptions(seq_len=3, skip_bad_lines=True, num_eval_negatives=1),
    )
    assert stats["seq_len"] == 3
    assert stats["bad_lines"] == {
        bl.OVER_LONG_SEQUENCE: {
            "count": 2,
            "examples": [f"{pre}:4", f"{fine}:4"],
        }
    }
    assert stats["pretrain_users"] == 3


def test_layout_matches_dataset_info_contract(tmp_path):
    lines = [
        ",".join(str(1 + (u * 7 + t) % 50) for t in range(6))
        for u in range(400)
    ]
    targets = [
        f"{line},,{1 + u % 9},{1 + (u * 5) % 9}" for u, line in enumerate(lines)
    ]
    pre, fine = _files(
        tmp_path, "\n".join(lines) + "\n", "\n".join(targets) + "\n"
    )
    out = str(tmp_path / "out")
    stats = original.build_from_original(
        out,
        pre,
        fine,
        WriteOptions(num_eval_negatives=4, num_shards=3, seed=1),
    )
    info = di.DatasetInfo.load(out)
    assert sorted(info.split_files) == [
        "finetune/test",
        "finetune/train",
        "finetune/valid",
        "pretrain/train",
        "pretrain/valid",
    ]
    assert info.split_sizes == stats["split_sizes"]
    assert info.split_sizes == {
        "pretrain/train": 380,
        "pretrain/valid": 20,
        "finetune/train": 640,
        "finetune/valid": 40,
        "finetune/test": 120,
    }
    for files in info.split_files.values():
        assert len(files) == 3
        for f in files:
            assert os.path.exists(os.path.join(out, f)), f
    # Pretraining users: train and valid partition the pretraining lines.
    all_lines = collections.Counter(
        tuple(map(int, x.split(","))) for x in lines
    )
    vocab = Vocab.load(os.path.join(out, di.SOURCE_VOCAB_FILE))
    got = collections.Counter()
    for split in ("pretrain/train", "pretrain/valid"):
        for row in read_split(out, split)["source"]:
            got[tuple(int(vocab.raw_id(i)) for i in row)] += 1
    assert got == all_lines
    # Round-robin shards: the first users of the file reach every shard.
    first_users = {str(u) for u in range(1, 41)}
    for f in info.files(out, "finetune/train"):
        users = {
            r["user"][0].decode()
            for r in tf.data.TFRecordDataset(f)
            .map(
                lambda x: tf.io.parse_single_example(
                    x, {"user": tf.io.FixedLenFeature([1], tf.string)}
                )
            )
            .as_numpy_iterator()
        }
        assert users & first_users
    with open(os.path.join(out, di.STATS_FILE)) as f:
        assert json.load(f)["split_sizes"] == info.split_sizes


def test_too_few_target_items_for_eval_negatives(tmp_path):
    pre, fine = _files(tmp_path)
    # 3 target items: at most 2 distinct negatives besides the positive.
    with pytest.raises(ValueError, match="num_eval_negatives=3"):
        original.build_from_original(
            str(tmp_path / "out"), pre, fine, WriteOptions(num_eval_negatives=3)
        )
    assert not os.path.exists(tmp_path / "out" / di.DATASET_INFO_FILE)


def test_rebuild_replaces_old_shards(tmp_path):
    pre, fine = _files(tmp_path)
    out = str(tmp_path / "out")
    original.build_from_original(
        out, pre, fine, WriteOptions(num_eval_negatives=1, num_shards=4)
    )
    original.build_from_original(
        out, pre, fine, WriteOptions(num_eval_negatives=1, num_shards=1)
    )
    names = sorted(os.listdir(os.path.join(out, "pretrain")))
    assert names == [
        "train-00000-of-00001.tfrecord",
        "valid-00000-of-00001.tfrecord",
    ]
    np.testing.assert_equal(
        di.DatasetInfo.load(out).split_sizes["pretrain/train"], 3
    )


def test_inferred_seq_len_is_capped_and_longer_lines_are_bad(tmp_path):
    cap = original.MAX_INFERRED_SEQ_LEN
    over_long = ",".join(str(i) for i in range(1, cap + 2))  # cap + 1
    padded = ",".join(["0"] * (5 * cap) + ["12", "7"])  # 2 items
    pre, fine = _files(tmp_path, pretrain=PRETRAIN + over_long + "\n")
    with pytest.raises(bl.BadLineError) as info:
        original.build_from_original(
            str(tmp_path / "a"), pre, fine, WriteOptions(num_eval_negatives=1)
        )
    assert (info.value.path, info.value.line_number) == (pre, 5)
    assert info.value.kind == bl.OVER_LONG_SEQUENCE
    assert f"{cap + 1} source items, more than seq_len={cap}, the cap" in (
        str(info.value)
    )
    # Skipped, the over-long line sets nothing: L stays the longest good
    # line (5), so nothing is padded to its length.
    stats = original.build_from_original(
        str(tmp_path / "b"),
        pre,
        fine,
        WriteOptions(num_eval_negatives=1, skip_bad_lines=True),
    )
    assert stats["seq_len"] == 5
    assert stats["bad_lines"][bl.OVER_LONG_SEQUENCE]["count"] == 1
    # A line padded far beyond the cap counts as cap tokens long.
    pre, fine = _files(tmp_path, pretrain=PRETRAIN + padded + "\n")
    stats = original.build_from_original(
        str(tmp_path / "c"), pre, fine, WriteOptions(num_eval_negatives=1)
    )
    assert stats["seq_len"] == cap and stats["pretrain_users"] == 5


def test_over_long_finetune_line_names_where_seq_len_came_from(tmp_path):
    pre, fine = _files(tmp_path, finetune=FINETUNE + "1,2,3,4,5,6,,t1\n")
    with pytest.raises(bl.BadLineError) as info:
        original.build_from_original(
            str(tmp_path / "a"), pre, fine, WriteOptions(num_eval_negatives=1)
        )
    assert (info.value.path, info.value.line_number) == (fine, 4)
    assert (
        f"6 source items, more than seq_len=5, the longest line of {pre} "
        "(pass --seq_len to allow longer)."
    ) in str(info.value)


@pytest.mark.parametrize(
    "pretrain, finetune, skip, message",
    [
        ("", FINETUNE, False, "{pre}: no usable line (the file is empty); "),
        ("\n\n", FINETUNE, True, "{pre}: no usable line (2 bad lines "),
        ("1,2\n", "1,,a\n2,,b\n", False, "{pre}: one usable line; "),
        (PRETRAIN, "", False, "{fine}: no usable line (the file is empty); "),
        (PRETRAIN, "x\n1,,\n", True, "{fine}: no usable line (2 bad lines "),
        (PRETRAIN, "1,,a\n2,,a\n", False, "{fine}: 1 distinct target item;"),
    ],
)
def test_empty_or_all_skipped_input_names_the_file(
    tmp_path, pretrain, finetune, skip, message
):
    pre, fine = _files(tmp_path, pretrain, finetune)
    with pytest.raises(bl.EmptyInputError) as info:
        original.build_from_original(
            str(tmp_path / "out"),
            pre,
            fine,
            WriteOptions(num_eval_negatives=0, skip_bad_lines=skip),
        )
    assert str(info.value).startswith(message.format(pre=pre, fine=fine))
    assert not os.path.exists(tmp_path / "out")


def test_wrong_delimiter_in_pretraining_file_names_that_file(tmp_path):
    pre, fine = _files(tmp_path, "0 0 12 7\n5 6 7 8\n", "12,7,,t1\n")
    with pytest.raises(bl.InputFormatError) as info:
        original.build_from_original(
            str(tmp_path / "out"), pre, fine, WriteOptions(num_eval_negatives=0)
        )
    assert str(info.value).startswith(
        f"{pre}: every pretraining line is a single item, so L = 1"
    )
