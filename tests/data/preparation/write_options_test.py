"""WriteOptions: validation, builder defaults, the source-vocabulary path."""

import dataclasses
import inspect

import pytest

from uaf_tf.data.preparation import builders
from uaf_tf.data.preparation.write_options import WriteOptions


def test_resolve_fills_only_unset_fields():
    options = WriteOptions(seed=3, name="mine")
    resolved = options.resolve(seq_len=30, name="movielens")
    assert (resolved.seq_len, resolved.name, resolved.seed) == (30, "mine", 3)
    assert WriteOptions(seq_len=5).resolve(seq_len=30).seq_len == 5
    assert options.seq_len is None  # Frozen: resolve returns a copy.
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.seed = 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"seq_len": 0}, "seq_len=0"),
        ({"num_shards": 0}, "num_shards=0"),
        ({"train_fraction": 1.5}, "train_fraction=1.5"),
        ({"progress_every": -1}, "progress_every=-1"),
    ],
)
def test_bad_values_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WriteOptions(**kwargs)


def test_bad_lines_follow_skip_bad_lines():
    assert WriteOptions(skip_bad_lines=True).new_bad_lines().skip
    assert not WriteOptions().new_bad_lines().skip


def test_source_vocab_file_accepts_a_file_or_a_directory(tmp_path):
    vocab = tmp_path / "source_vocab.txt"
    vocab.write_text("a\n")
    assert WriteOptions().source_vocab_file() is None
    for given in (str(vocab), str(tmp_path)):
        assert WriteOptions(source_vocab=given).source_vocab_file() == str(
            vocab
        )
    with pytest.raises(FileNotFoundError, match="source_vocab="):
        WriteOptions(source_vocab=str(tmp_path / "nope")).source_vocab_file()


def test_every_builder_takes_the_options_object():
    # One object for all five: a new option never changes a signature.
    for kind, build in builders.BUILDERS.items():
        params = inspect.signature(build).parameters
        assert params["options"].default == WriteOptions(), kind
        assert "seed" not in params and "num_shards" not in params, kind
