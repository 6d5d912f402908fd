"""User-profile prediction data: (source sequence, profile class) per user.

The profile task (paper sec. 5.5, Table 9) classifies a user from their
source sequence. Its examples come from a prepared dataset directory:

- the source sequence of each fine-tuning user (the `source` feature of
  their `finetune/*` instances, which all hold the same sequence);
- the label, a column of `user_profiles.tsv` (written by
  `data.preparation.user_profiles` for the MovieLens releases): `gender`
  (ML-1M / ML-100K: 2 classes), `age` (the `age_bracket` column; ML-1M: 7
  GroupLens brackets, ML-100K: 8 decades) or `occupation` (21 classes).

Split: by user, not by instance (a user is one example). The fine-tuning
split of the dataset is per target instance (every user is in all three),
so it cannot be reused; the users, sorted by raw id, are permuted with
`np.random.default_rng([seed, 4])` and cut 80/10/10 into train/valid/test.
The seed defaults to the dataset's own, so every method and training seed
sees the same test users.

Class ids index `class_names`, the sorted label values over every user of
the profile file (ages by their lower bound), so the head's size does not
depend on the split. Users with a source sequence but no profile row are
skipped and counted (`ProfileData.num_skipped`).
"""

import dataclasses
import os
import re

import numpy as np
import tensorflow as tf
from absl import logging

from uaf_tf.data import dataset_info as di
from uaf_tf.data import examples
from uaf_tf.data import input_options

# Written by `data.preparation.user_profiles` (same name and header).
PROFILE_FILE = "user_profiles.tsv"
PROFILE_HEADER = ("user", "gender", "age_bracket", "occupation")

GENDER = "gender"
AGE = "age"
OCCUPATION = "occupation"
# `--profile_label` value -> column of the profile file.
LABEL_COLUMNS = {GENDER: "gender", AGE: "age_bracket", OCCUPATION: "occupation"}
LABELS = tuple(LABEL_COLUMNS)

TRAIN, VALID, TEST = "train", "valid", "test"
SPLIT_FRACTIONS = {TRAIN: 0.8, VALID: 0.1, TEST: 0.1}
_SPLIT_SALT = 4  # `splits.py` uses 1-3 for the other seeded streams.
_SPLITS = ("finetune/train", "finetune/valid", "finetune/test")


def _check_label(label: str) -> None:
    if label not in LABEL_COLUMNS:
        raise ValueError(
            f"`label` must be one of {LABELS}. Received: label={label!r}"
        )


def read_profile_labels(data_dir: str, label: str) -> dict[str, str]:
    """Raw user id -> value of `label` (`"M"`, `"25-34"`, ...).

    Raises:
        FileNotFoundError: `data_dir` has no `user_profiles.tsv`.
        ValueError: a bad header or row.
    """
    _check_label(label)
    path = os.path.join(data_dir, PROFILE_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"{path} not found: the profile task needs a dataset prepared "
            "from a MovieLens release (launch/prepare_data.py writes it)."
        )
    column = PROFILE_HEADER.index(LABEL_COLUMNS[label])
    values = {}
    with tf.io.gfile.GFile(path) as f:
        header = tuple(f.readline().rstrip("\n").split("\t"))
        if header != PROFILE_HEADER:
            raise ValueError(
                f"{path}: header must be {PROFILE_HEADER}. Received: {header}"
            )
        for line_number, line in enumerate(f, start=2):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(PROFILE_HEADER):
                raise ValueError(
                    f"{path}:{line_number}: expected {len(PROFILE_HEADER)} "
                    f"tab-separated fields. Received: {line!r}"
                )
            values[fields[0]] = fields[column]
    return values


def class_names(values) -> tuple[str, ...]:
    """The sorted distinct `values`; numeric ones (`"0-17"`, `"56+"`) by
    their leading number."""

    def key(value):
        number = re.match(r"\d+", value)
        return (0, int(number.group()), value) if number else (1, 0, value)

    return tuple(sorted(set(values), key=key))


def user_sources(data_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """The fine-tuning users and their source sequences.

    Returns:
        `(users, sources)`: bytes `[U]` raw user ids, sorted, and int32
        `[U, L]` left-padded source ids (a user's first stored instance;
        all of a user's instances hold the same sequence).
    """
    info = di.DatasetInfo.load(data_dir)
    spec = {
        key: value
        for key, value in examples.finetune_spec(info.seq_len).items()
        if key in (di.SOURCE, di.USER)
    }
    files = [f for split in _SPLITS for f in info.files(data_dir, split)]
    dataset = (
        tf.data.TFRecordDataset(files)
        .batch(4096)
        .map(lambda records: tf.io.parse_example(records, spec))
    )
    by_user = {}
    for batch in dataset:
        users = batch[di.USER].numpy()[:, 0]
        for user, source in zip(users, batch[di.SOURCE].numpy(), strict=True):
            by_user.setdefault(user, source)
    users = sorted(by_user)
    sources = np.zeros([len(users), info.seq_len], np.int32)
    for row, user in enumerate(users):
        sources[row] = by_user[user]
    return np.array(users, dtype=object), sources


def user_split(num_users: int, seed: int) -> np.ndarray:
    """`"train"` / `"valid"` / `"test"` per user (seeded 80/10/10).

    Valid and test are rounded (at least 1 each when there are 3 users or
    more); train takes the rest.
    """
    if num_users < 3:
        raise ValueError(
            "The profile split needs at least 3 users. "
            f"Received: num_users={num_users}"
        )
    valid = max(1, round(num_users * SPLIT_FRACTIONS[VALID]))
    test = max(1, round(num_users * SPLIT_FRACTIONS[TEST]))
    order = np.random.default_rng([seed, _SPLIT_SALT]).permutation(num_users)
    split = np.full(num_users, TRAIN, dtype=object)
    split[order[num_users - valid - test : num_users - test]] = VALID
    split[order[num_users - test :]] = TEST
    return split


@dataclasses.dataclass(frozen=True)
class ProfileData:
    """The profile task's examples, per split.

    Attributes:
        label: `"gender"`, `"age"` or `"occupation"`.
        class_names: class id -> label value.
        sources: split -> int32 `[U_s, L]` source sequences.
        targets: split -> int32 `[U_s]` class ids.
        users: split -> bytes `[U_s]` raw user ids.
        num_skipped: fine-tuning users without a profile row (skipped).
        seed: the split seed.
    """

    label: str
    class_names: tuple
    sources: dict
    targets: dict
    users: dict
    num_skipped: int
    seed: int

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self, split: str) -> np.ndarray:
        """int `[num_classes]`: users of each class in `split`."""
        return np.bincount(self.targets[split], minlength=self.num_classes)


def load_profile_data(
    data_dir: str, label: str, seed: int | None = None
) -> ProfileData:
    """The profile examples of `data_dir` for `label`, split by user.

    Args:
        data_dir: a prepared dataset directory with `user_profiles.tsv`.
        label: one of `LABELS`.
        seed: the user split's seed; None = the dataset's seed.
    """
    values = read_profile_labels(data_dir, label)
    names = class_names(values.values())
    class_id = {name: index for index, name in enumerate(names)}
    all_users, all_sources = user_sources(data_dir)
    known = np.array(
        [user.decode() in values for user in all_users], dtype=bool
    )
    num_skipped = int(np.count_nonzero(~known))
    if num_skipped:
        logging.warning(
            "Profile task: %d of %d fine-tuning users have no row in %s; "
            "skipped.",
            num_skipped,
            len(all_users),
            PROFILE_FILE,
        )
    users, sources = all_users[known], all_sources[known]
    targets = np.array(
        [class_id[values[user.decode()]] for user in users], np.int32
    )
    if seed is None:
        seed = di.DatasetInfo.load(data_dir).seed
    split = user_split(len(users), seed)
    keys = (TRAIN, VALID, TEST)
    return ProfileData(
        label=label,
        class_names=names,
        sources={s: sources[split == s] for s in keys},
        targets={s: targets[split == s] for s in keys},
        users={s: users[split == s].astype(bytes) for s in keys},
        num_skipped=num_skipped,
        seed=seed,
    )


def profile_dataset(
    data: ProfileData,
    split: str,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Batches `{"source": int32 [B, L], "target": int32 [B] (class id),
    "user": string [B]}` of `split`, the last partial batch kept.

    `shuffle_seed` shuffles the users (training); None keeps their order.
    """
    if batch_size < 1:
        raise ValueError(
            f"`batch_size` must be >= 1. Received: batch_size={batch_size}"
        )
    dataset = tf.data.Dataset.from_tensor_slices(
        {
            di.SOURCE: data.sources[split],
            di.TARGET: data.targets[split],
            di.USER: data.users[split],
        }
    )
    if shuffle_seed is not None:
        dataset = dataset.shuffle(
            len(data.targets[split]),
            seed=shuffle_seed,
            reshuffle_each_iteration=False,
        )
    return input_options.with_input_options(
        dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    )
