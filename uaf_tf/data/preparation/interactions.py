"""Cross-domain dataset from two interaction logs (source and target).

Each log has one interaction per line: `user, item, timestamp[, rating]` in
a configurable column order and delimiter (no quoting). Per user, the
source history is the most recent `seq_len` source interactions in
timestamp order (ties: line order); every target interaction is one
fine-tuning instance, in timestamp order. Users with a source history are
all pretraining users; users in both logs are the fine-tuning users.

Memory: per user, the `seq_len` most recent source items (a bounded heap)
and all target items are kept in dicts, i.e. O(users * seq_len + target
interactions); the logs themselves are streamed.
"""

import codecs
import collections
import heapq
import math
from collections.abc import Iterator
from collections.abc import Sequence

from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import readers
from uaf_tf.data.preparation import writer
from uaf_tf.data.preparation.duplicates import DuplicateLines
from uaf_tf.data.preparation.write_options import WriteOptions

USER, ITEM, TIMESTAMP, RATING = "user", "item", "timestamp", "rating"
_REQUIRED_COLUMNS = (USER, ITEM, TIMESTAMP)

# === Reasons a user is left out (stats.json `excluded_users`) ===
NO_SOURCE = "no_source"  # target interactions only: in no split
NO_TARGET = "no_target"  # source only: pretraining, not fine-tuning
NEITHER_DOMAIN = "neither_domain"  # every interaction filtered out


def parse_columns(columns: str | Sequence[str]) -> tuple[str, ...]:
    """`"user,item,timestamp[,rating]"` -> names; other names are ignored
    columns (e.g. `"user,item,_,timestamp"`)."""
    names = tuple(
        c.strip()
        for c in (columns.split(",") if isinstance(columns, str) else columns)
    )
    missing = [c for c in _REQUIRED_COLUMNS if c not in names]
    known = [c for c in names if c in (*_REQUIRED_COLUMNS, RATING)]
    if missing or len(set(known)) != len(known):
        raise bl.OptionError(
            "`columns` must name each of user, item, timestamp once (and "
            f"optionally rating). Received: columns={columns!r}"
        )
    return names


def parse_delimiter(delimiter: str) -> str:
    """Decodes escapes so `"\\t"` on a command line means a tab."""
    if delimiter.lower() == "tab":
        return "\t"
    decoded = delimiter
    if "\\" in delimiter:
        decoded = codecs.decode(delimiter, "unicode_escape")
    if not decoded or decoded in ("\n", "\r"):
        raise bl.OptionError(
            "`delimiter` must be a non-empty string other than a line end. "
            f"Received: delimiter={delimiter!r}"
        )
    return decoded


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_interactions(
    path: str,
    *,
    columns: Sequence[str],
    delimiter: str,
    bad_lines: bl.BadLines,
    has_header: bool = False,
    progress_every: int = 0,
) -> Iterator[tuple[str, str, float, float | None]]:
    """Streams `(user, item, timestamp, rating or None)` from one log.

    Whitespace around the user and item ids is stripped; an id longer than
    `readers.MAX_ID_LENGTH` is an `over_long_id` bad line.

    Args:
        path: the log file.
        columns: column names from `parse_columns`.
        delimiter: field separator (`","`, `"\\t"`, `"::"`, ...).
        bad_lines: raises on or counts malformed lines.
        has_header: the first line is a header and is skipped.
        progress_every: log every this many lines (0: never).
    """
    for _, record in read_numbered_interactions(
        path,
        columns=columns,
        delimiter=delimiter,
        bad_lines=bad_lines,
        has_header=has_header,
        progress_every=progress_every,
    ):
        yield record


def read_log(
    path: str,
    *,
    duplicates: DuplicateLines,
    bad_lines: bl.BadLines,
    **kwargs,
) -> Iterator[tuple[str, str, float, float | None]]:
    """`read_interactions` with repeated records counted (and dropped if
    `duplicates.drop`); `kwargs` are `read_interactions`'s."""

    def read(tracker):
        return read_numbered_interactions(path, bad_lines=tracker, **kwargs)

    for _, record in duplicates.filter(path, read, bad_lines):
        yield record


def read_numbered_interactions(
    path: str,
    *,
    columns: Sequence[str],
    delimiter: str,
    bad_lines: bl.BadLines,
    has_header: bool = False,
    progress_every: int = 0,
) -> Iterator[tuple[int, tuple[str, str, float, float | None]]]:
    """`read_interactions` as `(line_number, record)` pairs."""
    width = len(columns)
    user_col, item_col = columns.index(USER), columns.index(ITEM)
    time_col = columns.index(TIMESTAMP)
    rating_col = columns.index(RATING) if RATING in columns else None
    for line_number, line in readers.iter_lines(
        path, progress_every, bad_lines
    ):
        if has_header and line_number == 1:
            continue
        if not line.strip():
            bad_lines.report(
                path, line_number, bl.BLANK_LINE, "blank line.", line
            )
            continue
        fields = line.split(delimiter)
        if len(fields) != width:
            bad_lines.report(
                path,
                line_number,
                bl.WRONG_COLUMN_COUNT,
                f"{len(fields)} fields separated by {delimiter!r}, "
                f"expected {width} ({','.join(columns)}).",
                line,
            )
            continue
        user, item = fields[user_col].strip(), fields[item_col].strip()
        if not user or not item:
            bad_lines.report(
                path, line_number, bl.EMPTY_ID, "empty user or item id.", line
            )
            continue
        if reason := readers.over_long_id([user, item]):
            bad_lines.report(path, line_number, bl.OVER_LONG_ID, reason, line)
            continue
        timestamp = _finite(fields[time_col])
        if timestamp is None:
            bad_lines.report(
                path,
                line_number,
                bl.BAD_TIMESTAMP,
                f"timestamp {fields[time_col]!r} is not a finite number.",
                line,
            )
            continue
        rating = None
        if rating_col is not None:
            rating = _finite(fields[rating_col])
            if rating is None:
                bad_lines.report(
                    path,
                    line_number,
                    bl.BAD_RATING,
                    f"rating {fields[rating_col]!r} is not a finite number.",
                    line,
                )
                continue
        yield line_number, (user, item, timestamp, rating)


class CrossDomainHistories:
    """Groups interactions per user: recent source history and targets.

    Add interactions in any order; `finish()` sorts them. Ties in time keep
    the order of the `add_*` calls (i.e. line order).

    Args:
        seq_len: L, source interactions kept per user (the most recent).
    """

    def __init__(self, seq_len: int):
        if seq_len < 1:
            raise bl.OptionError(
                f"`seq_len` must be >= 1. Received: seq_len={seq_len}"
            )
        self.seq_len = seq_len
        self._source = {}  # user -> min-heap of (timestamp, order, item)
        self._targets = collections.defaultdict(list)
        self._source_counts = collections.Counter()
        self._seen = {}  # every user id seen, in first-seen order
        self._order = 0
        self.num_source_interactions = 0
        self.num_target_interactions = 0
        self.num_ignored_interactions = 0

    def see(self, user: str) -> None:
        """Records a user whose interaction went to no domain."""
        self._seen.setdefault(user, None)
        self.num_ignored_interactions += 1

    def add_source(self, user: str, item: str, timestamp: float) -> None:
        self._seen.setdefault(user, None)
        heap = self._source.get(user)
        if heap is None:
            heap = self._source[user] = []
        entry = (timestamp, self._order, item)
        self._order += 1
        if len(heap) < self.seq_len:
            heapq.heappush(heap, entry)
        else:  # Keep the seq_len latest: drop the oldest of heap + entry.
            heapq.heappushpop(heap, entry)
        self._source_counts[user] += 1
        self.num_source_interactions += 1

    def add_target(self, user: str, item: str, timestamp: float) -> None:
        self._seen.setdefault(user, None)
        self._targets[user].append((timestamp, self._order, item))
        self._order += 1
        self.num_target_interactions += 1

    def finish(
        self, duplicates: DuplicateLines | None = None, **inputs
    ) -> "HistoriesStream":
        """Sorts histories; returns the stream `writer.write_dataset` reads.

        Args:
            duplicates: the repeated lines of the logs, for the stats.
            **inputs: input file names etc., recorded in the stats.
        """
        sources = {
            user: [item for _, _, item in sorted(heap)]
            for user, heap in self._source.items()
        }
        targets = {
            user: [item for _, _, item in sorted(entries)]
            for user, entries in self._targets.items()
        }
        overlap = sum(1 for user in targets if user in sources)
        no_domain = sum(
            1 for u in self._seen if u not in sources and u not in targets
        )
        truncated = sum(
            1 for n in self._source_counts.values() if n > self.seq_len
        )
        stats = {
            "inputs": inputs,
            "domains": {
                "source_users": len(sources),
                "target_users": len(targets),
                "overlapping_users": overlap,
                "source_interactions": self.num_source_interactions,
                "target_interactions": self.num_target_interactions,
                "ignored_interactions": self.num_ignored_interactions,
                "source_histories_truncated_to_seq_len": truncated,
            },
            "excluded_users": {
                NO_SOURCE: {
                    "count": len(targets) - overlap,
                    "effect": "no source interaction: left out entirely",
                },
                NO_TARGET: {
                    "count": len(sources) - overlap,
                    "effect": "no target interaction: pretraining only",
                },
                NEITHER_DOMAIN: {
                    "count": no_domain,
                    "effect": "no interaction in either domain: left out",
                },
            },
        }
        if duplicates is not None:
            stats["duplicate_lines"] = duplicates.to_json()
        return HistoriesStream(self.seq_len, sources, targets, stats)


class HistoriesStream:
    """In-memory users for `writer.write_dataset` (see `finish`)."""

    def __init__(self, seq_len, sources, targets, stats):
        self.seq_len = seq_len
        self._sources = sources
        self._targets = targets
        self._stats = stats
        inputs = stats["inputs"]
        ratings = inputs.get("ratings_file")
        self.input_files = {
            "pretrain": inputs.get("source_log", ratings),
            "finetune": inputs.get("target_log", ratings),
        }

    def pretrain_sequences(self, bad_lines: bl.BadLines) -> Iterator[list]:
        del bad_lines  # The logs were validated while grouping.
        yield from self._sources.values()

    def finetune_users(
        self, bad_lines: bl.BadLines
    ) -> Iterator[tuple[str, list[str], list[str]]]:
        del bad_lines
        for user, source in self._sources.items():
            targets = self._targets.get(user)
            if targets:
                yield user, source, targets

    def stats(self) -> dict:
        return self._stats


def build_from_interactions(
    out_dir: str,
    source_log: str,
    target_log: str,
    options: WriteOptions = WriteOptions(),
    *,
    columns: str | Sequence[str] = "user,item,timestamp",
    delimiter: str = ",",
    has_header: bool = False,
) -> dict:
    """Builds a dataset directory from a source and a target log.

    Both logs share `columns`, `delimiter` and `has_header`; a rating
    column, if named, is validated and otherwise unused.

    Args:
        out_dir: dataset directory.
        source_log: source-domain log.
        target_log: target-domain log.
        options: write options; defaults `seq_len=30`,
            `name="interactions"`.
        columns: column names, see `parse_columns`.
        delimiter: field separator.
        has_header: skip the first line of each log.

    Returns:
        The `stats.json` dictionary.

    Raises:
        BadLineError: on a malformed line unless `options.skip_bad_lines`.
    """
    options = options.resolve(seq_len=30, name="interactions")
    names = parse_columns(columns)
    bad_lines = options.new_bad_lines()
    duplicates = options.new_duplicate_lines()
    histories = CrossDomainHistories(options.seq_len)
    for path, add in (
        (source_log, histories.add_source),
        (target_log, histories.add_target),
    ):
        for user, item, timestamp, _ in read_log(
            path,
            duplicates=duplicates,
            columns=names,
            delimiter=delimiter,
            bad_lines=bad_lines,
            has_header=has_header,
            progress_every=options.progress_every,
        ):
            add(user, item, timestamp)
    stream = histories.finish(
        duplicates, source_log=source_log, target_log=target_log
    )
    return writer.write_dataset(out_dir, stream, options, bad_lines=bad_lines)
