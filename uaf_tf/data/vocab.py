"""Frequency-ordered item vocabularies saved as plain text.

Id 0 is padding and unknown; the most frequent raw id gets id 1. Ties keep
the order of first appearance in the counted stream, which is deterministic
for a given input. Keys are raw id *strings* in every stage (the original
keyed pretraining by int and fine-tuning by str, so every fine-tuning item
became unknown).

File format: UTF-8, one raw id per line, line k (1-based) holds id k.
"""

import collections
import itertools
from collections.abc import Iterable
from collections.abc import Sequence

import tensorflow as tf

from uaf_tf.data.dataset_info import PAD_ID


class Vocab:
    """Raw id string <-> integer id, with 0 for padding and unknown.

    Args:
        raw_ids: raw ids in id order; `raw_ids[k - 1]` gets id k.

    Example:
    ```python
    counts = collections.Counter(["b", "a", "b"])
    vocab = Vocab.from_counts(counts)  # "b" -> 1, "a" -> 2
    vocab.encode(["a", "zzz"])  # [2, 0]
    ```
    """

    def __init__(self, raw_ids: Iterable[str]):
        self.raw_ids = list(raw_ids)
        self._index = {raw: i for i, raw in enumerate(self.raw_ids, start=1)}
        if len(self._index) != len(self.raw_ids):
            raise ValueError(
                "Vocabulary ids must be distinct. Received "
                f"{len(self.raw_ids) - len(self._index)} duplicates."
            )
        for raw in self.raw_ids:
            if not raw or "\n" in raw or "\r" in raw:
                raise ValueError(
                    f"Vocabulary ids must be non-empty single-line strings. "
                    f"Received: {raw!r}"
                )

    @classmethod
    def from_counts(cls, counts: collections.Counter) -> "Vocab":
        """Most frequent first; ties in the counter's insertion order."""
        # `sorted` is stable and a Counter keeps first-insertion order.
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        return cls(raw for raw, _ in ranked)

    def __len__(self) -> int:
        return len(self.raw_ids)

    @property
    def num_ids(self) -> int:
        """Embedding rows needed: the vocabulary plus padding id 0."""
        return len(self.raw_ids) + 1

    def lookup(self, raw: str) -> int:
        """Id of `raw`; `PAD_ID` (0) when unknown."""
        return self._index.get(raw, PAD_ID)

    def encode(self, raws: Sequence[str]) -> list[int]:
        return list(map(self._index.get, raws, itertools.repeat(PAD_ID)))

    def raw_id(self, item_id: int) -> str:
        """Raw id string of `item_id` in [1, len]."""
        if not 1 <= item_id <= len(self.raw_ids):
            raise ValueError(
                f"`item_id` must be in [1, {len(self.raw_ids)}]. "
                f"Received: item_id={item_id}"
            )
        return self.raw_ids[item_id - 1]

    def save(self, path: str) -> None:
        with tf.io.gfile.GFile(path, "w") as f:
            f.write("".join(raw + "\n" for raw in self.raw_ids))

    @classmethod
    def load(cls, path: str) -> "Vocab":
        with tf.io.gfile.GFile(path) as f:
            text = f.read()
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # The final newline.
        return cls(lines)
