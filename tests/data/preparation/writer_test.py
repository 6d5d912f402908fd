"""The two-pass writer: guards against changing inputs and bad options."""

import pytest

from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import writer
from uaf_tf.data.preparation.write_options import WriteOptions


class ListStream:
    """Users from lists; `grow` adds a user on every pass after the first."""

    def __init__(self, users, seq_len=3, grow=False):
        self.users = list(users)
        self.seq_len = seq_len
        self.grow = grow
        self.passes = 0

    def pretrain_sequences(self, bad_lines):
        del bad_lines
        for _, source, _ in self.users:
            yield source

    def finetune_users(self, bad_lines):
        del bad_lines
        self.passes += 1
        yield from self.users
        if self.grow and self.passes > 1:
            yield "late", ["a"], ["x"]

    def stats(self):
        return {"lists": len(self.users)}


USERS = [
    ("u1", ["a", "b"], ["x", "y"]),
    ("u2", ["b"], ["y"]),
    ("u3", ["c", "a", "b"], ["z", "x"]),
]


def _write(tmp_path, stream, **kwargs):
    kwargs.setdefault("num_eval_negatives", 1)
    return writer.write_dataset(
        str(tmp_path / "out"),
        stream,
        WriteOptions(name="lists", seed=0, **kwargs),
        bad_lines=bl.BadLines(),
    )


def test_stats_of_a_small_stream(tmp_path):
    stats = _write(tmp_path, ListStream(USERS))
    assert stats["finetune_instances"] == 5
    assert stats["pretrain_users"] == 3
    assert stats["seq_len_histogram"]["pretrain"] == {"1": 1, "2": 1, "3": 1}
    assert stats["source_vocab_size"] == 3 and stats["num_target_ids"] == 4
    assert stats["unknown_source_items"] == 0
    assert stats["excluded_users"] == {}  # The default.
    assert stats["lists"] == 3  # The stream's own statistics.


def test_input_that_changes_between_passes_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="5 fine-tuning instances counted"):
        _write(tmp_path, ListStream(USERS, grow=True))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_shards": 0}, "num_shards"),
        ({"train_fraction": 0.0}, "train_fraction"),
        ({"num_eval_negatives": -1}, "num_eval_negatives"),
        ({"num_eval_negatives": 3}, "num_eval_negatives=3"),
    ],
)
def test_bad_options(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _write(tmp_path, ListStream(USERS), **kwargs)
