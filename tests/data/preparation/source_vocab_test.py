"""Building against another dataset's (a run's) source vocabulary."""

import os

import tensorflow as tf

from uaf_tf.data import dataset_info as di
from uaf_tf.data.preparation import interactions
from uaf_tf.data.preparation.write_options import WriteOptions
from uaf_tf.data.vocab import Vocab


def _log(path, rows) -> str:
    path.write_text("".join(f"{u},{i},{t}\n" for u, i, t in rows))
    return str(path)


def _history(user, items):
    return [(user, item, t) for t, item in enumerate(items)]


def _build(tmp_path, name, sources, targets, **options) -> tuple[str, dict]:
    source_rows = [
        r for u, items in sources.items() for r in _history(u, items)
    ]
    target_rows = [
        r for u, items in targets.items() for r in _history(u, items)
    ]
    out = str(tmp_path / name)
    stats = interactions.build_from_interactions(
        out,
        _log(tmp_path / f"{name}-source.csv", source_rows),
        _log(tmp_path / f"{name}-target.csv", target_rows),
        WriteOptions(seq_len=3, num_eval_negatives=1, **options),
    )
    return out, stats


def _finetune_sources(data_dir: str) -> dict[str, list[int]]:
    """Raw user id -> stored source ids, over every fine-tuning split."""
    info = di.DatasetInfo.load(data_dir)
    sources = {}
    for split in ("finetune/train", "finetune/valid", "finetune/test"):
        for record in tf.data.TFRecordDataset(info.files(data_dir, split)):
            feature = tf.train.Example.FromString(record.numpy()).features
            user = feature.feature[di.USER].bytes_list.value[0].decode()
            ids = list(feature.feature[di.SOURCE].int64_list.value)
            sources[user] = ids
    return sources


def test_dataset_built_against_another_datasets_vocabulary(tmp_path):
    pretrained, _ = _build(
        tmp_path,
        "pretrained",
        {"u1": "abc", "u2": "bc", "u3": "cd", "u4": "a"},
        {"u1": "p", "u2": "q", "u3": "r"},
    )
    # New domain: x (twice), y and z are not in the pretrained vocabulary;
    # w4 has no target, so it is a pretraining user only.
    sources = {"w1": "axy", "w2": "xb", "w3": "z", "w4": "cd"}
    targets = {"w1": "kl", "w2": "k", "w3": "m"}
    new, stats = _build(
        tmp_path, "new", sources, targets, source_vocab=pretrained
    )

    name = di.SOURCE_VOCAB_FILE
    with open(os.path.join(pretrained, name), "rb") as f:
        expected = f.read()
    with open(os.path.join(new, name), "rb") as f:
        assert f.read() == expected
    assert (
        di.DatasetInfo.load(new).num_source_ids
        == di.DatasetInfo.load(pretrained).num_source_ids
        == 5
    )
    assert stats["source_vocab_file"] == os.path.join(pretrained, name)
    # Pretraining: x x y z unknown (w1..w4); fine-tuning: the same four
    # occurrences (w1..w3); three distinct items overall.
    assert stats["unknown_source"] == {
        "pretrain": {"occurrences": 4, "distinct": 3},
        "finetune": {"occurrences": 4, "distinct": 3},
        "distinct": 3,
    }
    assert stats["unknown_source_items"] == 4
    assert stats["finetune_users_with_no_known_source_item"] == 1  # w3
    assert stats["pretrain_users"] == 4  # Unknown items do not drop users.

    vocab = Vocab.load(os.path.join(pretrained, name))
    a, b = vocab.lookup("a"), vocab.lookup("b")
    assert min(a, b) >= 1
    assert _finetune_sources(new) == {
        "w1": [a, 0, 0],
        "w2": [0, 0, b],
        "w3": [0, 0, 0],
    }


def test_vocabulary_counted_from_the_data_by_default(tmp_path):
    _, stats = _build(
        tmp_path, "own", {"u1": "ab", "u2": "b"}, {"u1": "p", "u2": "q"}
    )
    assert stats["source_vocab_file"] is None
    assert stats["unknown_source"]["distinct"] == 0
    assert stats["source_vocab_size"] == 2
