"""The on-disk contract of a prepared dataset directory.

Every builder in `uaf_tf.data.preparation` writes this layout and every
pipeline reads it; nothing else in the project knows file names or feature
keys.

```
<data_dir>/
  dataset.json              DatasetInfo below (machine-readable contract)
  stats.json                human-facing statistics (users, drops, histograms)
  source_vocab.txt          one raw source item id per line; line k is id k
  target_vocab.txt          one raw target item id per line; line k is id k
  pretrain/train-00000-of-0000N.tfrecord   {source}
  pretrain/valid-*.tfrecord                {source}   held-out users
  finetune/train-*.tfrecord                {source, target, user, index}
  finetune/valid-*.tfrecord                {..., candidates}
  finetune/test-*.tfrecord                 {..., candidates}
```

Id 0 is padding and unknown in both vocabularies, so a table with
`num_source_ids = len(source_vocab) + 1` rows covers every id. Sequences are
left-padded with 0 to `seq_len`, oldest item first. `candidates[0]` is the
positive target; `candidates[1:]` are `num_eval_negatives` distinct negatives
drawn once, with the dataset seed, so every method ranks the same lists.
"""

import dataclasses
import json
import os

import tensorflow as tf

FORMAT_VERSION = 1
PAD_ID = 0

DATASET_INFO_FILE = "dataset.json"
STATS_FILE = "stats.json"
SOURCE_VOCAB_FILE = "source_vocab.txt"
TARGET_VOCAB_FILE = "target_vocab.txt"

PRETRAIN_SPLITS = ("train", "valid")
FINETUNE_SPLITS = ("train", "valid", "test")

# === Feature keys (TFRecord and tf.data element keys) ===
SOURCE = "source"  # int64 [seq_len], left-padded source-domain history
TARGET = "target"  # int64 [], positive target item id
USER = "user"  # bytes [], raw user id (for per-user policy reports)
INDEX = "index"  # int64 [], instance number within its split
CANDIDATES = "candidates"  # int64 [1 + num_eval_negatives], positive first
NEGATIVE = "negative"  # in-graph sampled training negative (not stored)
# [n] in-graph sampled UAF-RL reward negatives (not stored)
REWARD_NEGATIVES = "reward_negatives"


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a prepared dataset.

    Attributes:
        seq_len: L, length of every stored source sequence.
        num_source_ids: rows of the source embedding table (vocab + padding).
        num_target_ids: rows of the target embedding table (vocab + padding).
        num_eval_negatives: negatives per stored evaluation candidate list.
        split_files: `"pretrain/train"`-style split name -> list of file
            names relative to the dataset directory.
        split_sizes: split name -> number of examples in it.
        name: free-form dataset name (`movielens-100k`, `synthetic`, ...).
        seed: seed the dataset (splits, candidates) was built with.
    """

    seq_len: int
    num_source_ids: int
    num_target_ids: int
    num_eval_negatives: int
    split_files: dict
    split_sizes: dict
    name: str = ""
    seed: int = 0
    format_version: int = FORMAT_VERSION

    def save(self, data_dir: str) -> None:
        """Writes `dataset.json` atomically (a temporary file renamed over
        it), so a reader never sees half of it."""
        path = os.path.join(data_dir, DATASET_INFO_FILE)
        tmp = f"{path}.tmp-{os.getpid()}"
        with tf.io.gfile.GFile(tmp, "w") as f:
            json.dump(dataclasses.asdict(self), f, indent=2, sort_keys=True)
        tf.io.gfile.rename(tmp, path, overwrite=True)

    @classmethod
    def load(cls, data_dir: str) -> "DatasetInfo":
        path = os.path.join(data_dir, DATASET_INFO_FILE)
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(
                f"{path} not found: `--data_dir` must be a directory made by "
                "launch/prepare_data.py."
            )
        with tf.io.gfile.GFile(path) as f:
            raw = json.load(f)
        if raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: format_version {raw.get('format_version')} is not "
                f"{FORMAT_VERSION}; rebuild it with launch/prepare_data.py."
            )
        return cls(**raw)

    def files(self, data_dir: str, split: str) -> list[str]:
        """Absolute paths of split `"pretrain/train"`, `"finetune/test"`..."""
        if split not in self.split_files:
            raise KeyError(
                f"Split {split!r} not in {sorted(self.split_files)} "
                f"({os.path.join(data_dir, DATASET_INFO_FILE)})."
            )
        return [os.path.join(data_dir, f) for f in self.split_files[split]]
