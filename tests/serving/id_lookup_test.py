import tensorflow as tf

from uaf_tf.serving.id_lookup import IdLookup
from uaf_tf.serving.id_lookup import count_vocab_lines
from uaf_tf.serving.id_lookup import read_vocab_head

# Raw ids as they may appear in data files: spaces and non-ASCII included.
VOCAB = ["B00X1", "item 7", "é9", "42"]


def _write_vocab(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("".join(f"{raw}\n" for raw in VOCAB), encoding="utf-8")
    return str(path)


def test_line_k_is_id_k_and_unknown_is_zero(tmp_path):
    lookup = IdLookup(_write_vocab(tmp_path))
    raw = tf.constant([["42", "B00X1", "nope"], ["item 7", "é9", ""]])
    ids = lookup.to_ids(raw)
    assert ids.dtype == tf.int64
    assert ids.numpy().tolist() == [[4, 1, 0], [2, 3, 0]]


def test_to_raw_inverts_to_ids_and_maps_padding_to_empty(tmp_path):
    lookup = IdLookup(_write_vocab(tmp_path))
    ids = tf.constant([0, 1, 2, 3, 4], tf.int32)
    raw = [s.decode("utf-8") for s in lookup.to_raw(ids).numpy()]
    assert raw == [""] + VOCAB
    assert lookup.to_ids(tf.constant(VOCAB)).numpy().tolist() == [1, 2, 3, 4]


def test_vocab_helpers(tmp_path):
    path = _write_vocab(tmp_path)
    assert count_vocab_lines(path) == len(VOCAB)
    assert read_vocab_head(path, 2) == VOCAB[:2]
    assert read_vocab_head(path, 99) == VOCAB
