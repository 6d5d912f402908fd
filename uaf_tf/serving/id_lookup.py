"""Raw item id strings <-> integer ids, from a vocabulary file asset."""

import tensorflow as tf


class IdLookup(tf.Module):
    """Maps raw item ids to integer ids and back, inside the graph.

    Reads a vocabulary file in the `uaf_tf.data.dataset_info` format: one
    raw id per line, line k (1-based) is integer id k, and id 0 is padding
    and unknown. Both directions are `tf.lookup.StaticHashTable`s
    initialised from the file, so a SavedModel that tracks this module copies
    the file into its `assets/` and re-initialises the tables from there at
    load time (TF Serving does the same); the original file is no longer
    needed after export.

    Args:
        vocab_path: str, path of the vocabulary file.
        name: str, module name.

    Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "target_vocab.txt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("item_a\\nitem_b\\n")
    >>> lookup = IdLookup(path)
    >>> lookup.to_ids(tf.constant(["item_b", "never_seen"])).numpy()
    array([2, 0])
    >>> lookup.to_raw(tf.constant([1, 0])).numpy()
    array([b'item_a', b''], dtype=object)
    """

    def __init__(self, vocab_path: str, name: str | None = None):
        super().__init__(name=name)
        if not tf.io.gfile.exists(vocab_path):
            raise FileNotFoundError(f"Vocabulary file {vocab_path} not found.")
        self.vocab_path = vocab_path
        whole_line = tf.lookup.TextFileIndex.WHOLE_LINE
        line_number = tf.lookup.TextFileIndex.LINE_NUMBER
        # Line numbers are 0-based: a raw id on line number n has id n + 1.
        self._line_of_raw = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                vocab_path, tf.string, whole_line, tf.int64, line_number
            ),
            default_value=-1,
        )
        self._raw_of_line = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                vocab_path, tf.int64, line_number, tf.string, whole_line
            ),
            default_value="",
        )

    def to_ids(self, raw_ids):
        """Raw id strings -> int64 ids of the same shape (0 = unknown)."""
        return self._line_of_raw.lookup(raw_ids) + 1

    def to_raw(self, ids):
        """Integer ids -> raw id strings of the same shape ("" for id 0)."""
        return self._raw_of_line.lookup(tf.cast(ids, tf.int64) - 1)


def count_vocab_lines(vocab_path: str) -> int:
    """Number of raw ids in a vocabulary file (ids 1..n)."""
    with tf.io.gfile.GFile(vocab_path) as f:
        return sum(1 for _ in f)


def read_vocab_head(vocab_path: str, n: int) -> list[str]:
    """The first `n` raw ids of a vocabulary file (ids 1..n), in order."""
    head = []
    with tf.io.gfile.GFile(vocab_path) as f:
        for line in f:
            if len(head) == n:
                break
            head.append(line.rstrip("\n"))
    return head
