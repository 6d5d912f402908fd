"""MovieLens ratings -> cross-domain dataset (paper sec. 4.1, as in Conure).

One ratings log is split by rating: per user, the source sequence is the
most recent `seq_len` (30) interactions rated below 4 stars, oldest first;
every interaction rated above 4 (5 on integer scales, 4.5 and 5 on
half-star scales) is one target instance. Ratings of exactly 4 go to
neither domain. Users without a source interaction are excluded and
counted (`interactions.NO_SOURCE`). Ties in time keep line order.

Accepted GroupLens layouts (detected from the first line):
- ML-100K `u.data`: `user<TAB>item<TAB>rating<TAB>timestamp`.
- ML-1M / ML-10M `ratings.dat`: `user::item::rating::timestamp`.
- ML-20M / ML-25M / latest `ratings.csv`: header
  `userId,movieId,rating,timestamp`, then comma-separated rows.
"""

import dataclasses

from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import interactions
from uaf_tf.data.preparation import readers
from uaf_tf.data.preparation import writer
from uaf_tf.data.preparation.duplicates import DuplicateLines
from uaf_tf.data.preparation.write_options import WriteOptions

SOURCE_BELOW = 4.0  # Source domain: rating < 4.
TARGET_ABOVE = 4.0  # Target domain: rating > 4.
CSV_HEADER = "userId,movieId,rating,timestamp"
_COLUMNS = ("user", "item", "rating", "timestamp")


@dataclasses.dataclass(frozen=True)
class Layout:
    """How one GroupLens ratings file is laid out."""

    name: str
    delimiter: str
    has_header: bool
    columns: tuple[str, ...] = _COLUMNS


ML_100K = Layout("u.data", "\t", has_header=False)
ML_1M = Layout("ratings.dat", "::", has_header=False)
ML_CSV = Layout("ratings.csv", ",", has_header=True)


def detect_layout(path: str) -> Layout:
    """Picks the layout from the file's first line.

    Raises:
        InputFileError: `path` cannot be read.
        BadLineError: the first line fits no layout (`unknown_layout`).
    """
    try:
        with open(path, "rb") as f:
            raw = f.readline()
    except OSError as error:
        raise readers.open_error(path, error) from None
    first = raw.removeprefix(readers.UTF8_BOM).rstrip(b"\r\n")
    first = first.decode("utf-8", errors="backslashreplace")
    if first.replace('"', "").strip() == CSV_HEADER:
        return ML_CSV
    if "::" in first:
        return ML_1M
    if "\t" in first:
        return ML_100K
    raise bl.BadLineError(
        path,
        1,
        bl.UNKNOWN_LAYOUT,
        "not a GroupLens ratings file. Expected a first line like "
        "'1\\t2\\t5\\t881250949' (u.data), '1::2::5::978300760' "
        f"(ratings.dat) or the header '{CSV_HEADER}' (ratings.csv).",
        first,
    )


def group_ratings(
    ratings_file: str,
    *,
    seq_len: int,
    bad_lines: bl.BadLines,
    progress_every: int = 0,
    duplicates: DuplicateLines | None = None,
) -> interactions.HistoriesStream:
    """Streams the ratings into per-user source histories and targets."""
    layout = detect_layout(ratings_file)
    histories = interactions.CrossDomainHistories(seq_len)
    duplicates = duplicates or DuplicateLines()
    for user, item, timestamp, rating in interactions.read_log(
        ratings_file,
        duplicates=duplicates,
        columns=layout.columns,
        delimiter=layout.delimiter,
        bad_lines=bad_lines,
        has_header=layout.has_header,
        progress_every=progress_every,
    ):
        if rating < SOURCE_BELOW:
            histories.add_source(user, item, timestamp)
        elif rating > TARGET_ABOVE:
            histories.add_target(user, item, timestamp)
        else:
            histories.see(user)
    return histories.finish(
        duplicates, ratings_file=ratings_file, layout=layout.name
    )


def build_from_movielens(
    out_dir: str,
    ratings_file: str,
    options: WriteOptions = WriteOptions(),
) -> dict:
    """Builds a dataset directory from a GroupLens ratings file.

    Args:
        out_dir: dataset directory.
        ratings_file: `u.data`, `ratings.dat` or `ratings.csv`.
        options: write options; defaults `seq_len=30`, `name="movielens"`.

    Returns:
        The `stats.json` dictionary.

    Raises:
        BadLineError: on a malformed line unless `options.skip_bad_lines`.
    """
    options = options.resolve(seq_len=30, name="movielens")
    bad_lines = options.new_bad_lines()
    stream = group_ratings(
        ratings_file,
        seq_len=options.seq_len,
        bad_lines=bad_lines,
        progress_every=options.progress_every,
        duplicates=options.new_duplicate_lines(),
    )
    return writer.write_dataset(out_dir, stream, options, bad_lines=bad_lines)
