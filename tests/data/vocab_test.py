"""Vocabularies: frequency order, tie rule, text round trip, unknown -> 0."""

import collections

import pytest

from uaf_tf.data.vocab import Vocab


def test_most_frequent_is_one_and_ties_keep_first_appearance():
    stream = ["c", "b", "a", "b", "a", "d", "a"]
    vocab = Vocab.from_counts(collections.Counter(stream))
    # a: 3, b: 2 (before c and d), c and d: 1 each, c seen first.
    assert vocab.raw_ids == ["a", "b", "c", "d"]
    assert vocab.encode(["a", "b", "c", "d"]) == [1, 2, 3, 4]
    assert (len(vocab), vocab.num_ids) == (4, 5)


def test_unknown_ids_map_to_padding_zero():
    vocab = Vocab(["10", "20"])
    assert vocab.encode(["20", "30", "10", ""]) == [2, 0, 1, 0]
    assert vocab.lookup("999") == 0


def test_keys_are_strings_so_numeric_ids_survive_a_round_trip(tmp_path):
    # The original keyed one stage by int, so "12" never matched 12.
    vocab = Vocab.from_counts(collections.Counter(["12", "7", "12", "007"]))
    path = str(tmp_path / "source_vocab.txt")
    vocab.save(path)
    assert (tmp_path / "source_vocab.txt").read_text() == "12\n7\n007\n"
    loaded = Vocab.load(path)
    assert loaded.raw_ids == ["12", "7", "007"]
    assert loaded.encode(["7", "007", "12", "07"]) == [2, 3, 1, 0]
    assert loaded.raw_id(3) == "007"


def test_line_k_of_the_file_is_id_k(tmp_path):
    path = tmp_path / "target_vocab.txt"
    path.write_text("B0001\nB0002\nx y\n")
    vocab = Vocab.load(str(path))
    for k, line in enumerate(path.read_text().splitlines(), start=1):
        assert vocab.lookup(line) == k


@pytest.mark.parametrize("raw_ids", [["a", "a"], ["a", ""], ["a\nb"]])
def test_invalid_vocabularies_are_rejected(raw_ids):
    with pytest.raises(ValueError, match="Received"):
        Vocab(raw_ids)


def test_raw_id_range_is_checked():
    with pytest.raises(ValueError, match="item_id"):
        Vocab(["a"]).raw_id(0)
