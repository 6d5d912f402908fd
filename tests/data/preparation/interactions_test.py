"""Two interaction logs -> cross-domain dataset; columns, delimiters, stats."""

import pytest

from uaf_tf.data import pipelines
from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import interactions
from uaf_tf.data.preparation.write_options import WriteOptions


def _log(tmp_path, name, header, rows, delimiter):
    lines = ([header] if header else []) + [delimiter.join(r) for r in rows]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def logs(tmp_path):
    # Columns: timestamp, item, extra, user (order is configurable).
    source = _log(
        tmp_path,
        "source.tsv",
        "ts\titem\tdevice\tuser",
        [
            ("30", "B07", "tv", "alice"),
            ("10", "B01", "tv", "alice"),
            ("20", "B02", "tv", "alice"),
            ("5", "B01", "tv", "bob"),
            ("1", "B09", "tv", "carol"),
        ],
        "\t",
    )
    target = _log(
        tmp_path,
        "target.tsv",
        "ts\titem\tdevice\tuser",
        [
            ("40", "ad-2", "tv", "alice"),
            ("35", "ad-1", "tv", "alice"),
            ("9", "ad-1", "tv", "bob"),
            ("3", "ad-3", "tv", "dave"),
        ],
        "\t",
    )
    return source, target


def test_parse_columns_and_delimiter():
    assert interactions.parse_columns("timestamp,item,_,user") == (
        "timestamp",
        "item",
        "_",
        "user",
    )
    for bad in ("user,item", "user,item,timestamp,user"):
        with pytest.raises(ValueError, match="columns"):
            interactions.parse_columns(bad)
    assert interactions.parse_delimiter("\\t") == "\t"
    assert interactions.parse_delimiter("tab") == "\t"
    assert interactions.parse_delimiter("::") == "::"
    with pytest.raises(ValueError, match="delimiter"):
        interactions.parse_delimiter("")


def test_two_logs_become_users_histories_and_instances(tmp_path, logs):
    source, target = logs
    out = str(tmp_path / "out")
    stats = interactions.build_from_interactions(
        out,
        source,
        target,
        WriteOptions(seq_len=2, num_eval_negatives=1, num_shards=2),
        columns="timestamp,item,device,user",
        delimiter="\t",
        has_header=True,
    )
    assert stats["domains"] == {
        "source_users": 3,
        "target_users": 3,
        "overlapping_users": 2,
        "source_interactions": 5,
        "target_interactions": 4,
        "ignored_interactions": 0,
        "source_histories_truncated_to_seq_len": 1,
    }
    excluded = {k: v["count"] for k, v in stats["excluded_users"].items()}
    assert excluded == {"no_source": 1, "no_target": 1, "neither_domain": 0}
    assert stats["finetune_instances"] == 3
    assert stats["pretrain_users"] == 3

    # Every fine-tuning instance, decoded back to raw ids.
    source_vocab = (tmp_path / "out" / "source_vocab.txt").read_text().split()
    target_vocab = (tmp_path / "out" / "target_vocab.txt").read_text().split()
    seen = []
    for split in ("train", "valid", "test"):
        if split == "train":
            ds = pipelines.finetune_train_dataset(out, 8, seed=0)
        else:
            ds = pipelines.eval_dataset(out, split, 8)
        for batch in ds.as_numpy_iterator():
            for user, src, tgt in zip(
                batch["user"], batch["source"], batch["target"], strict=True
            ):
                raw_src = [source_vocab[i - 1] if i else "0" for i in src]
                seen.append(
                    (user.decode(), tuple(raw_src), target_vocab[tgt - 1])
                )
    # alice: latest 2 of B01(10) B02(20) B07(30); targets by time.
    assert sorted(seen) == [
        ("alice", ("B02", "B07"), "ad-1"),
        ("alice", ("B02", "B07"), "ad-2"),
        ("bob", ("0", "B01"), "ad-1"),
    ]


def test_bad_lines_in_either_log(tmp_path, logs):
    source, target = logs
    with open(target, "a") as f:
        f.write("7\tad-9\ttv\n")  # 3 fields.
    kwargs = dict(
        columns="timestamp,item,device,user",
        delimiter="\t",
        has_header=True,
    )
    options = WriteOptions(num_eval_negatives=1)
    with pytest.raises(bl.BadLineError) as info:
        interactions.build_from_interactions(
            str(tmp_path / "a"), source, target, options, **kwargs
        )
    assert (info.value.path, info.value.line_number) == (target, 6)
    assert info.value.kind == bl.WRONG_COLUMN_COUNT
    stats = interactions.build_from_interactions(
        str(tmp_path / "b"),
        source,
        target,
        WriteOptions(num_eval_negatives=1, skip_bad_lines=True),
        **kwargs,
    )
    assert stats["bad_lines"] == {
        bl.WRONG_COLUMN_COUNT: {"count": 1, "examples": [f"{target}:6"]}
    }
