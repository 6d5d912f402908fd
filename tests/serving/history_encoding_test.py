import numpy as np
import pytest
import tensorflow as tf

from uaf_tf.serving.history_encoding import encode_history

SEQ_LEN = 4
# Stand-in for IdLookup.to_ids: "iN" -> N, anything else -> 0 (unknown).
KEYS = [f"i{n}" for n in range(1, 10)]
TABLE = tf.lookup.StaticHashTable(
    tf.lookup.KeyValueTensorInitializer(
        tf.constant(KEYS), tf.range(1, 10, dtype=tf.int64)
    ),
    default_value=0,
)


def _expected(row):
    """Reference: drop "", keep the last L, map, left-pad with 0."""
    kept = [item for item in row if item != ""][-SEQ_LEN:]
    ids = [int(item[1:]) if item in KEYS else 0 for item in kept]
    return [0] * (SEQ_LEN - len(ids)) + ids


ROWS = [
    ["i1", "i2", "i3", "i4", "i5", "i6"],  # longer than L: keeps i3..i6
    ["i7", "", "i8", "", "", ""],  # "" dropped anywhere, then left-padded
    ["", "", "", "", "", ""],  # empty history: all padding
    ["zz", "i2", "??", "", "", ""],  # unknown ids -> 0, kept in place
]


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf_function"])
def test_rows_match_reference(graph):
    fn = lambda x: encode_history(x, TABLE.lookup, SEQ_LEN)  # noqa: E731
    if graph:
        fn = tf.function(fn, autograph=False)
    out = fn(tf.constant(ROWS))
    assert out.dtype == tf.int32
    assert out.numpy().tolist() == [_expected(row) for row in ROWS]
    assert out.numpy().tolist()[0] == [3, 4, 5, 6]
    assert out.numpy().tolist()[1] == [0, 0, 7, 8]
    assert out.numpy().tolist()[3] == [0, 0, 2, 0]


@pytest.mark.parametrize("shape", [(3, 0), (0, 5), (0, 0)])
def test_degenerate_shapes(shape):
    out = encode_history(
        tf.zeros(shape, tf.string), TABLE.lookup, SEQ_LEN
    ).numpy()
    assert out.shape == (shape[0], SEQ_LEN)
    assert not out.any()


def test_random_rows_match_reference():
    rng = np.random.default_rng(0)
    pool = np.array(KEYS + ["", "", "unknown"], dtype=object)
    rows = rng.choice(pool, size=(64, 9)).tolist()
    out = encode_history(tf.constant(rows), TABLE.lookup, SEQ_LEN)
    assert out.numpy().tolist() == [_expected(row) for row in rows]


def test_rejects_non_string_input():
    with pytest.raises(TypeError, match="string tensor"):
        encode_history(tf.constant([[1, 2]], tf.int64), TABLE.lookup, SEQ_LEN)


def test_rejects_bad_seq_len():
    with pytest.raises(ValueError, match="seq_len"):
        encode_history(tf.constant([["i1"]]), TABLE.lookup, 0)
