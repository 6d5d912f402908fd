"""Property tests (hypothesis) for every reader of input files.

For arbitrary bytes and for good lines mixed with injected bad ones, every
reader either yields valid records or raises the documented one-line
`BadLineError` (`path:line: kind: reason`) with the file and a real line
number; with skipping, the counts per kind equal the bad lines injected.
"""

import collections
import os
import tempfile

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import interactions
from uaf_tf.data.preparation import original
from uaf_tf.data.preparation import readers
from uaf_tf.data.preparation import user_profiles
from uaf_tf.data.preparation.write_options import WriteOptions

SEQ_LEN = 6
_SETTINGS = settings(max_examples=50, deadline=None)
_COLUMNS = ("user", "item", "timestamp")
_LONG_ID = "x" * (readers.MAX_ID_LENGTH + 1)


def _write(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _read_pretrain(path, tracker):
    return [
        r
        for _, _, r in readers.read_pretrain_file(
            path, bad_lines=tracker, seq_len=SEQ_LEN
        )
    ]


def _read_finetune(path, tracker):
    return [
        (s, t)
        for _, s, t in readers.read_finetune_file(
            path, bad_lines=tracker, seq_len=SEQ_LEN
        )
    ]


def _read_log(path, tracker):
    return list(
        interactions.read_interactions(
            path, columns=_COLUMNS, delimiter=",", bad_lines=tracker
        )
    )


def _valid_id(raw: str, padding_allowed=False) -> bool:
    return (
        bool(raw)
        and raw == raw.strip()
        and len(raw) <= readers.MAX_ID_LENGTH
        and "\x00" not in raw
        and (padding_allowed or raw != readers.PAD_TOKEN)
    )


def _check_records(reader, records) -> None:
    for record in records:
        if reader is _read_pretrain:
            assert 1 <= len(record) <= SEQ_LEN
            assert all(map(_valid_id, record))
        elif reader is _read_finetune:
            source, targets = record
            assert 1 <= len(source) <= SEQ_LEN and targets
            assert all(map(_valid_id, source + targets))
        else:
            user, item, timestamp, rating = record
            assert _valid_id(user, True) and _valid_id(item, True)
            assert timestamp == timestamp and abs(timestamp) != float("inf")
            assert rating is None


_READERS = (_read_pretrain, _read_finetune, _read_log)


@_SETTINGS
@given(data=st.binary(max_size=300), which=st.integers(0, 2))
def test_arbitrary_bytes_parse_or_raise_one_line_error(data, which):
    reader = _READERS[which]
    num_lines = data.count(b"\n") + (not data.endswith(b"\n"))
    with tempfile.TemporaryDirectory() as directory:
        path = _write(directory, "input.csv", data)
        try:
            records = reader(path, bl.BadLines())
        except bl.BadLineError as error:
            assert error.path == path
            assert 1 <= error.line_number <= num_lines
            message = str(error)
            assert "\n" not in message and "\r" not in message
            assert message.startswith(
                f"{path}:{error.line_number}: {error.kind}: "
            )
        else:
            _check_records(reader, records)
        tracker = bl.BadLines(skip=True)
        records = reader(path, tracker)  # Never raises when skipping.
        _check_records(reader, records)
        assert tracker.total <= num_lines


# === Good lines and injected bad lines, per reader ===

_ID = st.text(alphabet="abcXYZ123456789-_", min_size=1, max_size=8).filter(
    lambda s: s != "0"
)
_SPACE = st.sampled_from(["", " ", "\t", "  "])


@st.composite
def _spaced_ids(draw, min_size, max_size):
    ids = draw(st.lists(_ID, min_size=min_size, max_size=max_size))
    return ids, [draw(_SPACE) + i + draw(_SPACE) for i in ids]


@st.composite
def _good_pretrain(draw):
    ids, spaced = draw(_spaced_ids(1, SEQ_LEN))
    padding = ["0"] * draw(st.integers(0, 3))
    return ",".join(padding + spaced).encode(), ids


@st.composite
def _good_finetune(draw):
    source, spaced_source = draw(_spaced_ids(1, SEQ_LEN))
    targets, spaced_targets = draw(_spaced_ids(1, 3))
    line = ",".join(spaced_source) + ",," + ",".join(spaced_targets)
    return line.encode(), (source, targets)


@st.composite
def _good_log(draw):
    (user, item), spaced = draw(_spaced_ids(2, 2))
    timestamp = draw(st.integers(0, 10**9))
    line = f"{spaced[0]},{spaced[1]},{timestamp}"
    return line.encode(), (user, item, float(timestamp), None)


_BAD = {
    _read_pretrain: [
        (bl.BLANK_LINE, b" "),
        (bl.EMPTY_ID, b"1,,2"),
        (bl.EMPTY_SEQUENCE, b"0,0"),
        (bl.MISPLACED_PADDING, b"1,0,2"),
        (bl.OVER_LONG_SEQUENCE, b"1,2,3,4,5,6,7"),
        (bl.OVER_LONG_ID, f"1,{_LONG_ID}".encode()),
        (bl.NOT_UTF8, b"1,caf\xe9"),
        (bl.NOT_UTF8, b"1,\x002"),
    ],
    _read_finetune: [
        (bl.BLANK_LINE, b""),
        (bl.MISSING_SEPARATOR, b"1,2"),
        (bl.EMPTY_SEQUENCE, b",,5"),
        (bl.EMPTY_TARGET, b"1,2,,"),
        (bl.EMPTY_ID, b"1,2,,5,,6"),
        (bl.MISPLACED_PADDING, b"1,2,,0"),
        (bl.OVER_LONG_SEQUENCE, b"1,2,3,4,5,6,7,,8"),
        (bl.OVER_LONG_ID, f"1,,{_LONG_ID}".encode()),
        (bl.NOT_UTF8, b"\xff\xfe1,,2"),
    ],
    _read_log: [
        (bl.BLANK_LINE, b"\t"),
        (bl.WRONG_COLUMN_COUNT, b"a,b"),
        (bl.EMPTY_ID, b" ,b,1"),
        (bl.BAD_TIMESTAMP, b"a,b,nan"),
        (bl.OVER_LONG_ID, f"{_LONG_ID},b,1".encode()),
        (bl.NOT_UTF8, b"a,\xe9,1"),
    ],
}
_GOOD = {
    _read_pretrain: _good_pretrain(),
    _read_finetune: _good_finetune(),
    _read_log: _good_log(),
}


@st.composite
def _mixed_file(draw, reader):
    """`(lines, expected records, injected kinds)` for `reader`."""
    good = draw(st.lists(_GOOD[reader], max_size=8))
    bad = draw(st.lists(st.sampled_from(_BAD[reader]), max_size=6))
    entries = [("good", g) for g in good] + [("bad", b) for b in bad]
    entries = draw(st.permutations(entries))
    lines = [e[1][0] if e[0] == "good" else e[1][1] for e in entries]
    expected = [e[1][1] for e in entries if e[0] == "good"]
    kinds = collections.Counter(e[1][0] for e in entries if e[0] == "bad")
    first_bad = next(
        (i for i, e in enumerate(entries, start=1) if e[0] == "bad"), None
    )
    return lines, expected, kinds, first_bad


def _join(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _expected(reader, expected):
    if reader is _read_finetune:
        return [tuple(e) for e in expected]
    return expected


@_SETTINGS
@given(st.data())
def test_injected_bad_lines_are_counted_exactly(data):
    reader = data.draw(st.sampled_from(_READERS))
    lines, expected, kinds, first_bad = data.draw(_mixed_file(reader))
    with tempfile.TemporaryDirectory() as directory:
        path = _write(directory, "input.csv", _join(lines))
        tracker = bl.BadLines(skip=True)
        records = reader(path, tracker)
        assert records == _expected(reader, expected)
        assert tracker.counts == kinds
        if kinds:
            try:
                reader(path, bl.BadLines())
            except bl.BadLineError as error:
                assert error.line_number == first_bad
            else:
                raise AssertionError("no BadLineError")


@settings(max_examples=8, deadline=None)
@given(st.data())
def test_build_stats_count_the_injected_bad_lines(data):
    pre_lines, _, pre_kinds, _ = data.draw(_mixed_file(_read_pretrain))
    fine_lines, fine_expected, fine_kinds, _ = data.draw(
        _mixed_file(_read_finetune)
    )
    # Enough good data to build: 3 pretraining users, 2 target items.
    pre_lines += [b"1,2,3", b"2,3,4", b"3,4,5"]
    fine_lines += [b"1,2,,t1,t2"]
    with tempfile.TemporaryDirectory() as directory:
        pre = _write(directory, "pre.csv", _join(pre_lines))
        fine = _write(directory, "fine.csv", _join(fine_lines))
        stats = original.build_from_original(
            os.path.join(directory, "out"),
            pre,
            fine,
            WriteOptions(
                seq_len=SEQ_LEN, skip_bad_lines=True, num_eval_negatives=1
            ),
        )
    counts = {k: v["count"] for k, v in stats["bad_lines"].items()}
    assert counts == dict(pre_kinds + fine_kinds)
    assert stats["finetune_instances"] == 2 + sum(
        len(targets) for _, targets in fine_expected
    )


@_SETTINGS
@given(data=st.binary(max_size=200))
def test_profile_readers_parse_or_raise_one_line_error(data):
    with tempfile.TemporaryDirectory() as directory:
        path = _write(directory, "u.user", data)
        for read in (user_profiles.read_u_user, user_profiles.read_users_dat):
            try:
                read(path)
            except bl.BadLineError as error:
                assert error.path == path and error.line_number >= 1
                assert str(error).startswith(
                    f"{path}:{error.line_number}: {bl.BAD_PROFILE}: "
                )
