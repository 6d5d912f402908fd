"""Duplicate lines: a good line whose record equals an earlier one's.

A record is what a reader makes of a line, after whitespace around ids is
stripped: a pretraining sequence, a fine-tuning `(source, targets)` pair,
an interaction `(user, item, timestamp, rating)`. So `" 17 ,3"` duplicates
`"17,3"`, and `"1,2,5"` duplicates `"1,2,5.0"` in a log (same timestamp).
Only records within one file are compared; bad lines are never duplicates.

Duplicates are always counted (`stats.json` `duplicate_lines`) and kept
by default: a line of the original files is a user without an id, and two
users with the same short history are legitimately identical lines (a
user's last L items often coincide when L is small), so dropping them would
remove users and change the instance counts of published data.
`drop=True` (`--drop_duplicate_lines`) drops every repeat, e.g. for logs
with replayed rows, where a duplicate would put the same instance in train
and test.

Memory: a pre-pass keeps a 16-byte BLAKE2b digest per record and finds the
repeats with one sort (`np.unique`), so a 25M-line log takes 400 MB for
that sort, not one Python object per line.
"""

import hashlib
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence

import numpy as np

from uaf_tf.data.preparation import bad_lines as bl

_DIGEST_BYTES = 16


def record_digest(fields: Sequence) -> bytes:
    """16-byte digest of a record's fields (strings, numbers or lists);
    `repr` keeps the field boundaries unambiguous."""
    return hashlib.blake2b(
        repr(tuple(fields)).encode("utf-8", "backslashreplace"),
        digest_size=_DIGEST_BYTES,
    ).digest()


class DuplicateLines:
    """Finds, counts and (optionally) drops repeated records per file.

    Call `filter(path, read, bad_lines)` for each pass over a file: the
    first call reads the file once more first to find the repeats (a
    pre-pass that reports the bad lines to `bad_lines`; the pass after it
    then ignores them). The passes must yield the same records in the same
    order.

    Args:
        drop: drop every record equal to an earlier one of the same file
            (default: keep it, only count it).
        max_examples: how many `path:line` locations to keep.
    """

    def __init__(self, drop: bool = False, max_examples: int = 5):
        self.drop = drop
        self.max_examples = max_examples
        self.counts = {}  # path -> number of repeats
        self.examples = []
        self._repeat = {}  # (stage, path) -> bool [num records]
        self._reported = set()  # (stage, path) whose examples are kept

    def _scan(self, slot: tuple, records: Iterable[tuple[int, Sequence]], key):
        digests = bytearray()
        for _, fields in records:
            digests += record_digest(key(fields))
        keys = np.frombuffer(bytes(digests), dtype=f"V{_DIGEST_BYTES}")
        repeat = np.ones(len(keys), dtype=bool)
        if len(keys):
            # return_index sorts stably: the first of equal keys is kept.
            _, first = np.unique(keys, return_index=True)
            repeat[first] = False
        self._repeat[slot] = repeat
        path = slot[1]
        self.counts[path] = self.counts.get(path, 0) + int(repeat.sum())

    def filter(
        self,
        path: str,
        read,
        bad_lines: bl.BadLines,
        key=tuple,
        stage: str = "",
    ) -> Iterator[tuple[int, Sequence]]:
        """Yields `read(bad_lines)`'s `(line_number, record)` pairs, repeats
        dropped when `drop`.

        Args:
            path: the file (the key of its repeats).
            read: `read(bad_lines)` returns an iterator of `(line_number,
                record fields)`, one per good line, from a fresh read.
            bad_lines: the tracker of this pass.
            key: the part of a record that is compared (default: all).
            stage: tells apart two readings of one file as different
                inputs (the same file given as both original files).
        """
        slot = (stage, path)
        if slot not in self._repeat:
            self._scan(slot, read(bad_lines), key)
            bad_lines = bl.IgnoreBadLines()  # Reported by the scan.
        repeat = self._repeat[slot]
        report = slot not in self._reported
        self._reported.add(slot)
        for index, (line_number, fields) in enumerate(read(bad_lines)):
            if index < len(repeat) and repeat[index]:
                if report and len(self.examples) < self.max_examples:
                    self.examples.append(f"{path}:{line_number}")
                if self.drop:
                    continue
            yield line_number, fields

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict:
        """`{"count", "action": "kept"|"dropped", "per_file", "examples"}`."""
        return {
            "count": self.total,
            "action": "dropped" if self.drop else "kept",
            "per_file": dict(self.counts),
            "examples": list(self.examples),
        }
