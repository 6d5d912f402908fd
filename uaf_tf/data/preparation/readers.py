"""Streaming readers of the original UAF text files.

Pretraining file: one user per line, comma-separated source item ids, oldest
first, left-padded with the token `"0"` to a fixed length (the original's
layout); lines of varying length are accepted too. Fine-tuning file:
`s1,...,sL,,t1,t2,...`, the source sequence, two commas, then that user's
target items (each target is one fine-tuning instance).

Ids are opaque strings (`"13373"`, `"B00005N7P0"`); `"0"` is padding, never
an item. Whitespace around an id is stripped (`" 17 "` is `"17"`); an id
longer than `MAX_ID_LENGTH` characters is an `over_long_id` bad line.
Leading `"0"` tokens are stripped, so a sequence is returned without
padding. Files are read line by line: memory does not grow with file size.
"""

import re
from collections.abc import Iterator

from absl import logging

from uaf_tf.data.preparation import bad_lines as bl

UTF8_BOM = b"\xef\xbb\xbf"
# Longest accepted id (characters), in every reader: an id is a short key
# (a number, an ASIN), and a longer one (a 5 MB id once reached the
# vocabulary) is an `over_long_id` bad line.
MAX_ID_LENGTH = 256
_HAS_SPACE = re.compile(r"\s").search
PAD_TOKEN = "0"
DELIMITER = ","
TARGET_SEPARATOR = ",,"


def iter_lines(
    path: str,
    progress_every: int = 0,
    bad_lines: bl.BadLines | None = None,
) -> Iterator[tuple[int, str]]:
    """Yields `(line_number, line)` with 1-based numbers and no line end.

    Lines end at `"\\n"` (a `"\\r"` before it is dropped too). A final
    newline does not make an extra (blank) line. A UTF-8 byte order mark at
    the start of the file is dropped. A line that is not UTF-8 text (a
    Latin-1 byte, a UTF-16 file, a binary file: invalid UTF-8 or a NUL
    byte) is a `not_utf8` bad line, reported to `bad_lines` (raised when
    it is `None`) and not yielded.

    Raises:
        InputFileError: `path` cannot be opened or read (missing, a
            directory, no permission).
        BadLineError: a `not_utf8` line, unless `bad_lines` skips it.
    """
    try:
        f = open(path, "rb")
    except OSError as error:
        raise open_error(path, error) from None
    with f:
        line_number = 0
        try:
            for line_number, raw in enumerate(f, start=1):
                if progress_every and line_number % progress_every == 0:
                    logging.info("%s: %d lines read", path, line_number)
                raw = raw.rstrip(b"\r\n")
                if line_number == 1:
                    raw = raw.removeprefix(UTF8_BOM)
                line, reason = decode_line(raw)
                if reason:
                    if bad_lines is None:
                        bad_lines = bl.BadLines()  # Raises.
                    bad_lines.report(
                        path, line_number, bl.NOT_UTF8, reason, line
                    )
                    continue
                yield line_number, line
        except OSError as error:  # e.g. EIO, or a directory on some OSes
            raise open_error(path, error) from None


def decode_line(raw: bytes) -> tuple[str, str]:
    """`(text, "")` for a UTF-8 line without NUL bytes, else
    `(text with escapes, reason)`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return raw.decode("utf-8", "backslashreplace"), (
            f"byte 0x{raw[error.start]:02x} at byte {error.start + 1} is "
            "not UTF-8 (a Latin-1 or UTF-16 file? Convert it with "
            "`iconv -t utf-8`)."
        )
    if "\x00" in text:
        return text, (
            f"NUL byte at byte {raw.index(0) + 1}: not UTF-8 text (a "
            "UTF-16 or binary file?)."
        )
    return text, ""


def open_error(path: str, error: OSError) -> bl.InputFileError:
    """`InputFileError` `path: cannot read: <reason>` for an `OSError`."""
    reason = error.strerror or str(error)
    return bl.InputFileError(f"{path}: cannot read: {reason}.")


def split_ids(text: str, delimiter: str = DELIMITER) -> list[str]:
    """`text.split(delimiter)`, whitespace stripped around each id."""
    tokens = text.split(delimiter)
    if _HAS_SPACE(text):
        return [t.strip() for t in tokens]
    return tokens


def over_long_id(ids: list[str]) -> str | None:
    """The reason an id of `ids` is too long, or `None`."""
    if ids and max(map(len, ids)) > MAX_ID_LENGTH:
        longest = max(map(len, ids))
        return (
            f"an id of {longest} characters, more than MAX_ID_LENGTH="
            f"{MAX_ID_LENGTH}."
        )
    return None


def source_items(tokens: list[str]) -> tuple[list[str], str | None, str]:
    """Strips left padding; returns `(items, bad_kind or None, reason)`."""
    if "" in tokens:
        return [], bl.EMPTY_ID, "an item id is empty."
    if reason := over_long_id(tokens):
        return [], bl.OVER_LONG_ID, reason
    start = 0
    while start < len(tokens) and tokens[start] == PAD_TOKEN:
        start += 1
    items = tokens[start:]
    if not items:
        return [], bl.EMPTY_SEQUENCE, "no source item besides padding."
    if PAD_TOKEN in items:
        return (
            [],
            bl.MISPLACED_PADDING,
            (
                f"padding token {PAD_TOKEN!r} after a real item (sequences are "
                "left-padded)."
            ),
        )
    return items, None, ""


def _over_long(
    items: list[str], seq_len: int | None, note: str = ""
) -> str | None:
    if seq_len is not None and len(items) > seq_len:
        return f"{len(items)} source items, more than seq_len={seq_len}{note}."
    return None


def read_pretrain_file(
    path: str,
    *,
    bad_lines: bl.BadLines,
    seq_len: int | None = None,
    progress_every: int = 0,
    seq_len_note: str = "",
) -> Iterator[tuple[int, int, list[str]]]:
    """Streams a pretraining file.

    Args:
        path: the pretraining CSV.
        bad_lines: raises on or counts malformed lines.
        seq_len: maximum number of (non-padding) items; `None` for no limit.
            A longer line is an `over_long_sequence` bad line.
        progress_every: log progress every this many lines (0: never).
        seq_len_note: appended to the `over_long_sequence` reason (where
            `seq_len` came from).

    Yields:
        `(line_number, num_tokens, items)`: `num_tokens` counts padding too
        (the line's length), `items` are the raw ids without padding.
    """
    for line_number, line in iter_lines(path, progress_every, bad_lines):
        if not line.strip():
            bad_lines.report(
                path, line_number, bl.BLANK_LINE, "blank line.", line
            )
            continue
        tokens = split_ids(line)
        items, kind, reason = source_items(tokens)
        if kind is None and (
            reason := _over_long(items, seq_len, seq_len_note)
        ):
            kind = bl.OVER_LONG_SEQUENCE
        if kind is not None:
            bad_lines.report(path, line_number, kind, reason, line)
            continue
        yield line_number, len(tokens), items


def parse_finetune_line(
    line: str, seq_len: int | None, seq_len_note: str = ""
) -> tuple[list[str], list[str], str | None, str]:
    """Splits `s1,...,,t1,...`; returns `(source, targets, kind, reason)`.

    `kind` is `None` for a good line, else a `bad_lines` kind.
    """
    if not line.strip():
        return [], [], bl.BLANK_LINE, "blank line."
    cut = line.find(TARGET_SEPARATOR)
    if cut < 0:
        return (
            [],
            [],
            bl.MISSING_SEPARATOR,
            (f"no {TARGET_SEPARATOR!r} between source and target items."),
        )
    source_part, target_part = line[:cut], line[cut + 2 :]
    if not source_part:
        return [], [], bl.EMPTY_SEQUENCE, "no source item."
    source, kind, reason = source_items(split_ids(source_part))
    if kind is not None:
        return [], [], kind, reason
    if reason := _over_long(source, seq_len, seq_len_note):
        return [], [], bl.OVER_LONG_SEQUENCE, reason
    if not target_part:
        return (
            [],
            [],
            bl.EMPTY_TARGET,
            (f"no target item after {TARGET_SEPARATOR!r}."),
        )
    targets = split_ids(target_part)
    if "" in targets:
        return [], [], bl.EMPTY_ID, "a target item id is empty."
    if reason := over_long_id(targets):
        return [], [], bl.OVER_LONG_ID, reason
    if PAD_TOKEN in targets:
        return (
            [],
            [],
            bl.MISPLACED_PADDING,
            (f"padding token {PAD_TOKEN!r} among the target items."),
        )
    return source, targets, None, ""


def read_finetune_file(
    path: str,
    *,
    bad_lines: bl.BadLines,
    seq_len: int | None = None,
    progress_every: int = 0,
    seq_len_note: str = "",
) -> Iterator[tuple[int, list[str], list[str]]]:
    """Streams a fine-tuning file.

    Args:
        path: the fine-tuning CSV.
        bad_lines: raises on or counts malformed lines.
        seq_len: a source with more items than this is an
            `over_long_sequence` bad line; `None` for no limit.
        progress_every: log progress every this many lines (0: never).
        seq_len_note: appended to the `over_long_sequence` reason.

    Yields:
        `(line_number, source_items, target_items)`, raw ids, no padding.
    """
    for line_number, line in iter_lines(path, progress_every, bad_lines):
        source, targets, kind, reason = parse_finetune_line(
            line, seq_len, seq_len_note
        )
        if kind is not None:
            bad_lines.report(path, line_number, kind, reason, line)
            continue
        yield line_number, source, targets
