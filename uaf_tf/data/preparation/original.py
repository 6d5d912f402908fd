"""Dataset from the original UAF pretraining and fine-tuning CSV files.

The pretraining file gives the pretraining users and the source vocabulary;
the fine-tuning file gives the target vocabulary and the instances, its
source items looked up in the pretraining vocabulary (unknown -> 0). Each
fine-tuning line is one user, recorded under its 1-based line number as the
`user` feature (the files carry no user id).

`seq_len` (L) is the given value, else the longest pretraining line counted
in tokens (padding included: the original files pad every line to the
dataset's L, 50 or 100 in the paper's ColdRec data), capped at
`MAX_INFERRED_SEQ_LEN`. Over-long lines are handled alike in both files: a
line with more than L source items (padding not counted) is an
`over_long_sequence` bad line, never truncated; without `seq_len`, L is not
known before the pretraining pass ends, so there the limit is the cap.
Pass `seq_len` to keep longer sequences.
"""

from collections.abc import Iterator

from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import readers
from uaf_tf.data.preparation import writer
from uaf_tf.data.preparation.duplicates import DuplicateLines
from uaf_tf.data.preparation.write_options import WriteOptions

# Largest L taken from the pretraining file when `seq_len` is not given: a
# pretraining line with more source items is an `over_long_sequence` bad
# line, so one stray line can no longer pad every user to its length. The
# paper's original-format data uses L = 50 and 100 (sec. 4.1).
MAX_INFERRED_SEQ_LEN = 200


class OriginalFilesStream:
    """Streams the two files for `writer.write_dataset`; reads each twice.

    Args:
        pretrain_file: pretraining CSV.
        finetune_file: fine-tuning CSV.
        seq_len: L, or `None` for the longest pretraining line, at most
            `MAX_INFERRED_SEQ_LEN`.
        progress_every: log every this many lines (0: never).
    """

    def __init__(
        self,
        pretrain_file: str,
        finetune_file: str,
        *,
        seq_len: int | None = None,
        progress_every: int = 0,
        duplicates: DuplicateLines | None = None,
    ):
        if seq_len is not None and seq_len < 1:
            raise bl.OptionError(
                f"`seq_len` must be >= 1. Received: seq_len={seq_len}"
            )
        self.pretrain_file = pretrain_file
        self.finetune_file = finetune_file
        self.seq_len = seq_len
        self.progress_every = progress_every
        self._inferred = seq_len is None
        self.duplicates = duplicates or DuplicateLines()
        self.input_files = {
            "pretrain": pretrain_file,
            "finetune": finetune_file,
        }

    def _seq_len_note(self) -> str:
        if not self._inferred:
            return ""
        return (
            f", the longest line of {self.pretrain_file} (pass --seq_len "
            "to allow longer)"
        )

    def pretrain_sequences(self, bad_lines: bl.BadLines) -> Iterator[list]:
        longest = 0
        if self._inferred:
            limit = MAX_INFERRED_SEQ_LEN
            note = (
                ", the cap on L taken from the longest line "
                "(MAX_INFERRED_SEQ_LEN; pass --seq_len to allow longer)"
            )
        else:
            limit, note = self.seq_len, ""

        def read(tracker):
            for number, num_tokens, items in readers.read_pretrain_file(
                self.pretrain_file,
                bad_lines=tracker,
                seq_len=limit,
                progress_every=self.progress_every,
                seq_len_note=note,
            ):
                yield number, (num_tokens, items)

        for _, (num_tokens, items) in self.duplicates.filter(
            self.pretrain_file,
            read,
            bad_lines,
            key=lambda record: record[1],
            stage="pretrain",
        ):
            # Padding beyond the cap is dropped, never stored.
            longest = max(longest, min(num_tokens, limit))
            yield items
        if self._inferred and longest:
            if longest == 1:
                raise bl.InputFormatError(
                    f"{self.pretrain_file}: every pretraining line is a "
                    "single item, so L = 1 and nothing is left to predict. "
                    f"Is the file separated by {readers.DELIMITER!r}? "
                    "(Pass --seq_len to use it anyway.)"
                )
            self.seq_len = longest

    def finetune_users(
        self, bad_lines: bl.BadLines
    ) -> Iterator[tuple[str, list[str], list[str]]]:
        def read(tracker):
            for number, source, targets in readers.read_finetune_file(
                self.finetune_file,
                bad_lines=tracker,
                seq_len=self.seq_len,
                progress_every=self.progress_every,
                seq_len_note=self._seq_len_note(),
            ):
                yield number, (source, targets)

        for line_number, (source, targets) in self.duplicates.filter(
            self.finetune_file, read, bad_lines, stage="finetune"
        ):
            yield str(line_number), source, targets

    def stats(self) -> dict:
        return {
            "inputs": {
                "pretrain_file": self.pretrain_file,
                "finetune_file": self.finetune_file,
            },
            "duplicate_lines": self.duplicates.to_json(),
        }


def build_from_original(
    out_dir: str,
    pretrain_file: str,
    finetune_file: str,
    options: WriteOptions = WriteOptions(),
) -> dict:
    """Builds a dataset directory from the original CSV files.

    Args:
        out_dir: dataset directory.
        pretrain_file: pretraining CSV.
        finetune_file: fine-tuning CSV.
        options: write options; `seq_len=None` (default) takes the longest
            pretraining line, at most `MAX_INFERRED_SEQ_LEN` (see the
            module docstring); default `name="original"`.

    Returns:
        The `stats.json` dictionary.

    Raises:
        BadLineError: on a malformed line unless `options.skip_bad_lines`.
    """
    options = options.resolve(name="original")
    stream = OriginalFilesStream(
        pretrain_file,
        finetune_file,
        seq_len=options.seq_len,
        progress_every=options.progress_every,
        duplicates=options.new_duplicate_lines(),
    )
    return writer.write_dataset(
        out_dir, stream, options, bad_lines=options.new_bad_lines()
    )
