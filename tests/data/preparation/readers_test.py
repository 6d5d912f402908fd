"""Original-format readers: padding, varying lengths, every bad-line kind."""

import pytest

from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import readers


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _pretrain(path, seq_len=None, skip=False):
    tracker = bl.BadLines(skip=skip)
    rows = list(
        readers.read_pretrain_file(path, bad_lines=tracker, seq_len=seq_len)
    )
    return rows, tracker


def _finetune(path, seq_len=None, skip=False):
    tracker = bl.BadLines(skip=skip)
    rows = list(
        readers.read_finetune_file(path, bad_lines=tracker, seq_len=seq_len)
    )
    return rows, tracker


def test_pretrain_strips_left_padding_and_accepts_varying_lengths(tmp_path):
    path = _write(tmp_path, "pre.csv", "0,0,12,7\n5,6,7,8\n0,3\nB00X,a-b\n")
    rows, tracker = _pretrain(path)
    assert rows == [
        (1, 4, ["12", "7"]),
        (2, 4, ["5", "6", "7", "8"]),
        (3, 2, ["3"]),
        (4, 2, ["B00X", "a-b"]),
    ]
    assert tracker.total == 0


def test_crlf_line_ends_are_not_part_of_ids(tmp_path):
    path = tmp_path / "pre.csv"
    path.write_bytes(b"0,1,2\r\n3,4,5\r\n")
    rows, _ = _pretrain(str(path))
    assert [r[2] for r in rows] == [["1", "2"], ["3", "4", "5"]]


def test_finetune_line_is_split_at_double_comma(tmp_path):
    path = _write(
        tmp_path,
        "ft.csv",
        "13373,18120,76920,,1845,1846,1844\n0,0,9,,7\n",
    )
    rows, _ = _finetune(path, seq_len=3)
    assert rows == [
        (1, ["13373", "18120", "76920"], ["1845", "1846", "1844"]),
        (2, ["9"], ["7"]),
    ]


@pytest.mark.parametrize(
    "line, kind",
    [
        ("", bl.BLANK_LINE),
        ("   ", bl.BLANK_LINE),
        ("1,,2", bl.EMPTY_ID),
        ("0,0,0", bl.EMPTY_SEQUENCE),
        ("1,0,2", bl.MISPLACED_PADDING),
        ("1,2,3,4", bl.OVER_LONG_SEQUENCE),
    ],
)
def test_bad_pretrain_line_raises_with_file_line_and_kind(tmp_path, line, kind):
    path = _write(tmp_path, "pre.csv", f"1,2\n{line}\n3\n")
    with pytest.raises(bl.BadLineError) as info:
        _pretrain(path, seq_len=3)
    error = info.value
    assert (error.path, error.line_number, error.kind) == (path, 2, kind)
    assert f"{path}:2" in str(error) and kind in str(error)


@pytest.mark.parametrize(
    "line, kind",
    [
        ("", bl.BLANK_LINE),
        ("1,2,3", bl.MISSING_SEPARATOR),
        (",,5", bl.EMPTY_SEQUENCE),
        ("0,0,,5", bl.EMPTY_SEQUENCE),
        ("1,2,,", bl.EMPTY_TARGET),
        ("1,2,,5,,6", bl.EMPTY_ID),
        ("1,,2,,5", bl.EMPTY_ID),
        ("1,2,,5,0", bl.MISPLACED_PADDING),
        ("1,2,3,4,,5", bl.OVER_LONG_SEQUENCE),
    ],
)
def test_bad_finetune_line_raises_with_file_line_and_kind(tmp_path, line, kind):
    path = _write(tmp_path, "ft.csv", f"1,2,,3\n{line}\n")
    with pytest.raises(bl.BadLineError) as info:
        _finetune(path, seq_len=3)
    assert (info.value.line_number, info.value.kind) == (2, kind)
    assert isinstance(info.value, ValueError)


def test_skip_mode_counts_each_kind_with_line_numbers(tmp_path):
    text = "1,2,,3\n\n1,2,3\n4,,5\n1,2,,\n\n1,2,3\n7,,8\n"
    path = _write(tmp_path, "ft.csv", text)
    rows, tracker = _finetune(path, skip=True)
    assert [r[0] for r in rows] == [1, 4, 8]
    assert tracker.to_json() == {
        bl.BLANK_LINE: {
            "count": 2,
            "examples": [f"{path}:2", f"{path}:6"],
        },
        bl.EMPTY_TARGET: {"count": 1, "examples": [f"{path}:5"]},
        bl.MISSING_SEPARATOR: {
            "count": 2,
            "examples": [f"{path}:3", f"{path}:7"],
        },
    }
    # "4,,5" is a good line: source ["4"], target ["5"].
    assert tracker.total == 5


def test_final_newline_is_not_a_blank_line(tmp_path):
    with_newline = _write(tmp_path, "a.csv", "1,2\n3,4\n")
    without = _write(tmp_path, "b.csv", "1,2\n3,4")
    for path in (with_newline, without):
        rows, tracker = _pretrain(path)
        assert len(rows) == 2 and tracker.total == 0
    doubled = _write(tmp_path, "c.csv", "1,2\n3,4\n\n")
    with pytest.raises(bl.BadLineError) as info:
        _pretrain(doubled)
    assert (info.value.line_number, info.value.kind) == (3, bl.BLANK_LINE)


def test_examples_are_capped_but_counts_are_not(tmp_path):
    path = _write(tmp_path, "pre.csv", "\n" * 9 + "1\n")
    tracker = bl.BadLines(skip=True, max_examples=3)
    rows = list(readers.read_pretrain_file(path, bad_lines=tracker))
    assert len(rows) == 1
    assert tracker.counts[bl.BLANK_LINE] == 9
    assert tracker.examples[bl.BLANK_LINE] == [
        f"{path}:1",
        f"{path}:2",
        f"{path}:3",
    ]


@pytest.mark.parametrize(
    "raw, column, shown",
    [
        (b"1,caf\xe9\n", "byte 0xe9 at byte 6", r"'1,caf\\xe9'"),  # Latin-1
        (b"\xff\xfe1\x00,\x002\x00\n", "byte 0xff at byte 1", r"'\\xff\\xfe1"),
        (b"1,2\x00\x01\n", "NUL byte at byte 4", r"'1,2\x00\x01'"),  # binary
    ],
)
def test_non_utf8_line_is_a_bad_line_with_file_and_line(
    tmp_path, raw, column, shown
):
    path = tmp_path / "pre.csv"
    path.write_bytes(b"1,2\n" + raw + b"3,4\n")
    with pytest.raises(bl.BadLineError) as info:
        _pretrain(str(path))
    error = info.value
    assert (error.line_number, error.kind) == (2, bl.NOT_UTF8)
    message = str(error)
    assert message.startswith(f"{path}:2: not_utf8: {column}")
    assert shown in message
    rows, tracker = _pretrain(str(path), skip=True)
    assert [r[2] for r in rows] == [["1", "2"], ["3", "4"]]
    assert tracker.to_json() == {
        bl.NOT_UTF8: {"count": 1, "examples": [f"{path}:2"]}
    }


def test_utf16_and_binary_files_skip_every_line(tmp_path):
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text("1,2\n3,4\n5,6\n", encoding="utf-16")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    # UTF-16-LE splits at b"\\n" into 3 lines plus the lone NUL byte that
    # ends the last "\\n\\0"; 4 copies of bytes 0..255 hold 4 b"\\n".
    for path, lines in ((utf16, 4), (binary, 5)):
        rows, tracker = _finetune(str(path), skip=True)
        assert rows == []
        assert tracker.counts == {bl.NOT_UTF8: lines}


def test_utf8_byte_order_mark_is_dropped_at_the_start_only(tmp_path):
    path = tmp_path / "pre.csv"
    path.write_bytes(b"\xef\xbb\xbf0,1,2\n3,\xef\xbb\xbf4\n")
    rows, tracker = _pretrain(str(path), skip=True)
    # Line 1: "0" is padding, not "\ufeff0" (was misplaced_padding).
    assert [r[2] for r in rows] == [["1", "2"], ["3", "\ufeff4"]]
    assert tracker.total == 0
