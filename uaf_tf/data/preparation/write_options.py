"""`WriteOptions`: the options every dataset builder shares.

One frozen object is built once (from the flags in `prepare_data.py`, or
by hand) and passed to any builder, which fills in its own defaults for the
fields left `None` (`resolve`) and hands it to `writer.write_dataset`. A new
write option is one field here and its use in the writer.
"""

import dataclasses
import os

from uaf_tf.data import dataset_info as di
from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation.duplicates import DuplicateLines


@dataclasses.dataclass(frozen=True)
class WriteOptions:
    """How a dataset directory is written, whatever the input.

    The split fractions are fixed by the protocol (`uaf_tf.data.splits`:
    80/5/15 instances, 5% of pretraining users held out).

    Attributes:
        seq_len: L, source items kept per user; `None` lets the builder
            choose (30 for ratings and logs, paper sec. 4.1; 20 for
            synthetic; the longest pretraining line, at most
            `original.MAX_INFERRED_SEQ_LEN`, for original files).
        seed: seeds the splits, shard order, evaluation candidates and
            synthetic data.
        num_shards: TFRecord files per split (fewer for smaller splits).
        num_eval_negatives: distinct negatives stored per valid/test
            instance.
        train_fraction: keep this seeded fraction of `finetune/train`
            (paper sec. 5.4); valid and test are unchanged.
        skip_bad_lines: count and skip malformed lines instead of raising
            on the first one.
        drop_duplicate_lines: drop a line whose record repeats an earlier
            line of the same file; by default such lines are kept and only
            counted (`duplicates.py` says why).
        progress_every: log every this many lines or instances (0: never).
        source_vocab: a `source_vocab.txt`, or a directory holding one (a
            pretraining run or another dataset): source items are looked up
            in it instead of counted, so the dataset fits that run's
            backbone; unknown items map to id 0 and are counted in
            `stats.json`. `None`: build the vocabulary from the data.
        name: dataset name for `dataset.json`; `None`: the builder's.

    Example:
    ```python
    options = WriteOptions(seed=1, num_shards=2)
    options.resolve(seq_len=30, name="movielens").seq_len  # 30
    ```
    """

    seq_len: int | None = None
    seed: int = 0
    num_shards: int = 4
    num_eval_negatives: int = 99
    train_fraction: float = 1.0
    skip_bad_lines: bool = False
    drop_duplicate_lines: bool = False
    progress_every: int = 1_000_000
    source_vocab: str | None = None
    name: str | None = None

    def __post_init__(self):
        if self.seq_len is not None and self.seq_len < 1:
            raise bl.OptionError(
                f"`seq_len` must be >= 1. Received: seq_len={self.seq_len}"
            )
        if self.num_shards < 1:
            raise bl.OptionError(
                "`num_shards` must be >= 1. "
                f"Received: num_shards={self.num_shards}"
            )
        if not 0.0 < self.train_fraction <= 1.0:
            raise bl.OptionError(
                "`train_fraction` must be in (0, 1]. "
                f"Received: train_fraction={self.train_fraction}"
            )
        if self.progress_every < 0:
            raise bl.OptionError(
                "`progress_every` must be >= 0. "
                f"Received: progress_every={self.progress_every}"
            )

    def resolve(self, **defaults) -> "WriteOptions":
        """A copy with `defaults` filling the fields that are `None`."""
        return dataclasses.replace(
            self,
            **{k: v for k, v in defaults.items() if getattr(self, k) is None},
        )

    def new_bad_lines(self) -> bl.BadLines:
        """A bad-line tracker that raises or skips per `skip_bad_lines`."""
        return bl.BadLines(skip=self.skip_bad_lines)

    def new_duplicate_lines(self) -> DuplicateLines:
        """A repeat finder that drops or keeps per `drop_duplicate_lines`."""
        return DuplicateLines(drop=self.drop_duplicate_lines)

    def source_vocab_file(self) -> str | None:
        """The `source_vocab.txt` path `source_vocab` names, or `None`."""
        if self.source_vocab is None:
            return None
        path = self.source_vocab
        if os.path.isdir(path):
            path = os.path.join(path, di.SOURCE_VOCAB_FILE)
        if not os.path.isfile(path):
            raise bl.InputFileError(
                "`source_vocab` must be a source_vocab.txt or a directory "
                "holding one (a pretraining run, a dataset). "
                f"Received: source_vocab={self.source_vocab!r}"
            )
        return path
