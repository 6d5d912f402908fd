"""Malformed input lines: one error type and one tracker that raises or counts.

Every reader reports a bad line through `BadLines.report`. With
`skip=False` (the default) the first bad line raises `BadLineError` naming
the file, the 1-based line number and the reason; with `skip=True` the line
is skipped and counted per kind, keeping the first few locations for
`stats.json`. Nothing is dropped silently.

The errors of bad input (`BadLineError`, `InputFileError`,
`EmptyInputError`, `InputChangedError`, `OptionError`) are
`uaf_tf.errors.UserError`s: a command prints them as one line
(`file:line: kind: reason`) and exits with status 2. Each also subclasses
the built-in error it used to be (`ValueError`, `OSError`, ...), so callers
catching those keep working.
"""

import collections
import os

from uaf_tf import errors

# === Kinds of bad lines (the `kind` attribute and the stats keys) ===
NOT_UTF8 = "not_utf8"  # invalid UTF-8 or a NUL byte (UTF-16, binary)
BLANK_LINE = "blank_line"
EMPTY_ID = "empty_id"
OVER_LONG_ID = "over_long_id"  # an id longer than readers.MAX_ID_LENGTH
MISSING_SEPARATOR = "missing_separator"  # finetune line without ",,"
EMPTY_SEQUENCE = "empty_sequence"  # no non-padding source item
EMPTY_TARGET = "empty_target"  # nothing after ",,"
OVER_LONG_SEQUENCE = "over_long_sequence"  # more than seq_len items
MISPLACED_PADDING = "misplaced_padding"  # "0" after a real item
WRONG_COLUMN_COUNT = "wrong_column_count"
BAD_RATING = "bad_rating"
BAD_TIMESTAMP = "bad_timestamp"
UNKNOWN_LAYOUT = "unknown_layout"  # a ratings file of no GroupLens layout
BAD_PROFILE = "bad_profile"  # a GroupLens u.user / users.dat line

_MAX_SHOWN_CHARS = 120


class BadLineError(errors.UserError, ValueError):
    """A malformed input line: `path:line: kind: reason Received: '...'`.

    Attributes:
        path: the file the line is in.
        line_number: 1-based line number.
        kind: one of the kind constants of this module (`"empty_id"`, ...).
    """

    def __init__(
        self, path: str, line_number: int, kind: str, reason: str, line: str
    ):
        self.path = path
        self.line_number = line_number
        self.kind = kind
        shown = (
            line
            if len(line) <= _MAX_SHOWN_CHARS
            else (line[:_MAX_SHOWN_CHARS] + "...")
        )
        super().__init__(
            f"{path}:{line_number}: {kind}: {reason} "
            f"Received: {shown!r}. Fix the file or pass "
            "`--skip_bad_lines` to skip and count such lines."
        )


class InputFileError(errors.UserError, FileNotFoundError):
    """An input file that cannot be opened or read (missing, a directory,
    no permission); the message names the path."""


class EmptyInputError(errors.UserError, ValueError):
    """An input with too few usable lines to build a dataset from (an empty
    file, or every line skipped as bad); the message names the file."""


class InputFormatError(errors.UserError, ValueError):
    """An input whose lines parse but cannot be the documented layout (e.g.
    a pretraining file whose every line is one item: a wrong delimiter)."""


class InputChangedError(errors.UserError, RuntimeError):
    """An input file changed between the two passes of a build."""


class OptionError(errors.UserError, ValueError):
    """A build option (flag) out of range or not fitting the data; the
    message names the option and the received value."""


class BadLines:
    """Raises on the first bad line, or counts bad lines per kind.

    Args:
        skip: count and skip bad lines instead of raising.
        max_examples: how many `path:line` locations to keep per kind.
    """

    def __init__(self, skip: bool = False, max_examples: int = 5):
        self.skip = skip
        self.max_examples = max_examples
        self.counts = collections.Counter()
        self.per_path = collections.Counter()
        self.examples = collections.defaultdict(list)

    def report(
        self, path: str, line_number: int, kind: str, reason: str, line: str
    ) -> None:
        """Raises `BadLineError`, or records the line when skipping."""
        if not self.skip:
            raise BadLineError(path, line_number, kind, reason, line)
        self.counts[kind] += 1
        self.per_path[path] += 1
        if len(self.examples[kind]) < self.max_examples:
            self.examples[kind].append(f"{path}:{line_number}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def skipped_in(self, path: str) -> str:
        """Why `path` gave no record, for error messages: empty, every line
        skipped as bad, or no line usable for this purpose."""
        n = self.per_path.get(path, 0)
        if n:
            return f"no usable line ({n} bad lines skipped)"
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            return "no usable line (the file is empty)"
        return "no usable line"

    def to_json(self) -> dict:
        """`{kind: {"count": n, "examples": ["path:line", ...]}}`."""
        return {
            kind: {"count": n, "examples": list(self.examples[kind])}
            for kind, n in sorted(self.counts.items())
        }


class IgnoreBadLines(BadLines):
    """Skips bad lines without counting: for a second pass over a file whose
    bad lines the first pass already raised on or counted."""

    def __init__(self):
        super().__init__(skip=True, max_examples=0)

    def report(self, path, line_number, kind, reason, line) -> None:
        del path, line_number, kind, reason, line
