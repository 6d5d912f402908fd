"""Synthetic cross-domain data with a planted, learnable signal.

Every user belongs to one of `num_groups` latent taste groups. Group g owns
the g-th contiguous slice of the source items and of the target items.
- Source sequence: a Markov chain inside the group's source slice (each
  step moves 1-3 items forward, wrapping around), so next-item pretraining
  has signal; each item is replaced by a uniform random source item with
  probability `noise`.
- Targets: uniform in the group's target slice, or with probability
  `noise` uniform over all target items.
So the source sequence reveals the group, which predicts the targets.

Users are generated in fixed chunks of `CHUNK_USERS`, chunk c from
`np.random.default_rng([seed, c])`: any user range can be regenerated
without the others, the CSV writer streams chunk by chunk, and
`planted_arrays` equals what the files hold for the same arguments (raw
item id `"k"` is item k).
"""

import dataclasses
import os
from collections.abc import Iterator

import numpy as np

from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import writer
from uaf_tf.data.preparation.write_options import WriteOptions

CHUNK_USERS = 4096
_MAX_STEP = 3


@dataclasses.dataclass(frozen=True)
class PlantedConfig:
    """Size and noise of the planted data.

    Attributes:
        num_users: users (each has a source sequence and targets).
        num_source_items: source items, ids 1..num_source_items.
        num_target_items: target items, ids 1..num_target_items.
        seq_len: L, maximum source sequence length.
        targets_per_user: target items per user (fine-tuning instances).
        num_groups: latent taste groups (<= both item counts).
        seed: seeds everything.
        min_seq_len: shortest source sequence; lengths are uniform in
            [min_seq_len, seq_len] (default seq_len: all full).
        noise: probability of a random item instead of the group's.
    """

    num_users: int = 2000
    num_source_items: int = 500
    num_target_items: int = 100
    seq_len: int = 20
    targets_per_user: int = 3
    num_groups: int = 10
    seed: int = 0
    min_seq_len: int | None = None
    noise: float = 0.1

    def __post_init__(self):
        for name in ("num_users", "seq_len", "targets_per_user", "num_groups"):
            if getattr(self, name) < 1:
                raise bl.OptionError(
                    f"`{name}` must be >= 1. Received: "
                    f"{name}={getattr(self, name)}"
                )
        if min(self.num_source_items, self.num_target_items) < max(
            self.num_groups, 2
        ):
            raise bl.OptionError(
                "Each group needs its own items: `num_source_items` and "
                "`num_target_items` must be >= max(num_groups, 2). Received: "
                f"num_source_items={self.num_source_items}, "
                f"num_target_items={self.num_target_items}, "
                f"num_groups={self.num_groups}"
            )
        if not 1 <= self.lowest_seq_len <= self.seq_len:
            raise bl.OptionError(
                "`min_seq_len` must be in [1, seq_len]. Received: "
                f"min_seq_len={self.min_seq_len}, seq_len={self.seq_len}"
            )
        if not 0.0 <= self.noise <= 1.0:
            raise bl.OptionError(
                f"`noise` must be in [0, 1]. Received: noise={self.noise}"
            )

    @property
    def lowest_seq_len(self) -> int:
        return self.seq_len if self.min_seq_len is None else self.min_seq_len


@dataclasses.dataclass
class PlantedChunk:
    """One chunk of users.

    Attributes:
        first_user: number of the chunk's first user.
        group: int64 [U], each user's group.
        source: int64 [U, L] item ids in [1, num_source_items],
            left-padded with 0 to L (oldest first).
        lengths: int64 [U], non-padding length of each source row.
        target: int64 [U, targets_per_user] ids in [1, num_target_items].
    """

    first_user: int
    group: np.ndarray
    source: np.ndarray
    lengths: np.ndarray
    target: np.ndarray


def _slice(num_items: int, num_groups: int, group: np.ndarray):
    """Start (0-based) and size of each group's item slice."""
    start = group * num_items // num_groups
    end = (group + 1) * num_items // num_groups
    return start, end - start


def generate_chunk(config: PlantedConfig, chunk: int) -> PlantedChunk:
    """Users `[chunk * CHUNK_USERS, ...)`, from `rng([seed, chunk])`."""
    first = chunk * CHUNK_USERS
    num = min(CHUNK_USERS, config.num_users - first)
    rng = np.random.default_rng([config.seed, chunk])
    length, num_targets = config.seq_len, config.targets_per_user
    group = rng.integers(0, config.num_groups, size=num)

    # === Source: Markov chain in the group's slice, plus noise ===
    start, size = _slice(config.num_source_items, config.num_groups, group)
    first_offset = rng.integers(0, size)
    steps = rng.integers(1, _MAX_STEP + 1, size=(num, length))
    steps[:, 0] = 0
    offsets = (first_offset[:, None] + np.cumsum(steps, axis=1)) % (
        size[:, None]
    )
    source = start[:, None] + offsets + 1
    noisy = rng.random((num, length)) < config.noise
    source[noisy] = rng.integers(
        1, config.num_source_items + 1, size=int(noisy.sum())
    )
    lengths = rng.integers(config.lowest_seq_len, length + 1, size=num)
    source[np.arange(length)[None, :] < (length - lengths)[:, None]] = 0

    # === Targets: the group's target slice, plus noise ===
    start, size = _slice(config.num_target_items, config.num_groups, group)
    target = (
        start[:, None]
        + rng.integers(0, size[:, None], size=(num, num_targets))
        + 1
    )
    noisy = rng.random((num, num_targets)) < config.noise
    target[noisy] = rng.integers(
        1, config.num_target_items + 1, size=int(noisy.sum())
    )
    return PlantedChunk(first, group, source, lengths, target)


def iter_chunks(config: PlantedConfig) -> Iterator[PlantedChunk]:
    num_chunks = -(-config.num_users // CHUNK_USERS)
    for chunk in range(num_chunks):
        yield generate_chunk(config, chunk)


def planted_arrays(
    num_users: int,
    num_source_items: int,
    num_target_items: int,
    seq_len: int,
    targets_per_user: int,
    num_groups: int,
    seed: int,
    noise: float = 0.1,
) -> dict[str, np.ndarray]:
    """Small in-memory planted data for unit tests; ids are vocabulary ids.

    Returns:
        `{"source": int64 [U, L] in [1, num_source_items] (no padding),
        "target": int64 [U, targets_per_user] in [1, num_target_items],
        "group": int64 [U]}`.

    Example:
    ```python
    data = planted_arrays(64, 100, 20, seq_len=8, targets_per_user=2,
                          num_groups=4, seed=0)
    data["source"].shape  # (64, 8)
    ```
    """
    config = PlantedConfig(
        num_users,
        num_source_items,
        num_target_items,
        seq_len,
        targets_per_user,
        num_groups,
        seed,
        noise=noise,
    )
    chunks = list(iter_chunks(config))
    return {
        "source": np.concatenate([c.source for c in chunks]),
        "target": np.concatenate([c.target for c in chunks]),
        "group": np.concatenate([c.group for c in chunks]),
    }


def write_original_files(
    pretrain_file: str, finetune_file: str, config: PlantedConfig
) -> None:
    """Streams the planted users into the original CSV formats.

    Pretraining lines are left-padded with `"0"` to `seq_len` tokens (the
    original's fixed-length layout); fine-tuning lines carry the same
    source items without padding, `,,`, then the targets. Memory holds one
    chunk of `CHUNK_USERS` users.
    """
    for path in (pretrain_file, finetune_file):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(pretrain_file, "w") as pre, open(finetune_file, "w") as fine:
        for chunk in iter_chunks(config):
            padded = [",".join(map(str, row)) for row in chunk.source.tolist()]
            pre.write("\n".join(padded) + "\n")
            lines = []
            for row, n, targets in zip(
                chunk.source.tolist(),
                chunk.lengths.tolist(),
                chunk.target.tolist(),
                strict=True,
            ):
                lines.append(
                    ",".join(map(str, row[len(row) - n :]))
                    + ",,"
                    + ",".join(map(str, targets))
                )
            fine.write("\n".join(lines) + "\n")


class PlantedStream:
    """Planted users for `writer.write_dataset`, regenerated per pass."""

    def __init__(self, config: PlantedConfig):
        self.config = config
        self.seq_len = config.seq_len

    def _users(self) -> Iterator[tuple[str, list[str], list[str]]]:
        for chunk in iter_chunks(self.config):
            rows = chunk.source.tolist()
            for u, (row, n, targets) in enumerate(
                zip(
                    rows,
                    chunk.lengths.tolist(),
                    chunk.target.tolist(),
                    strict=True,
                )
            ):
                yield (
                    str(chunk.first_user + u),
                    list(map(str, row[len(row) - n :])),
                    list(map(str, targets)),
                )

    def pretrain_sequences(self, bad_lines: bl.BadLines) -> Iterator[list]:
        del bad_lines
        for _, source, _ in self._users():
            yield source

    def finetune_users(self, bad_lines: bl.BadLines):
        del bad_lines
        yield from self._users()

    def stats(self) -> dict:
        return {"synthetic": dataclasses.asdict(self.config)}


def build_synthetic_dataset(
    out_dir: str, options: WriteOptions = WriteOptions(), **planted
) -> dict:
    """Writes a planted dataset directory (no CSV in between).

    Raw ids are the planted item numbers as strings; the saved vocabularies
    map them to frequency-ordered ids like every other builder.

    Args:
        out_dir: dataset directory.
        options: write options; `options.seed` also seeds the planted data
            and `options.seq_len` (default 20) is its L; default
            `name="synthetic"`.
        **planted: the other `PlantedConfig` fields (`num_users`,
            `noise`...), defaults as there.

    Returns:
        The `stats.json` dictionary.
    """
    options = options.resolve(seq_len=20, name="synthetic")
    config = PlantedConfig(
        seed=options.seed, seq_len=options.seq_len, **planted
    )
    return writer.write_dataset(
        out_dir,
        PlantedStream(config),
        options,
        bad_lines=options.new_bad_lines(),
    )
