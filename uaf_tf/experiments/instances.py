"""The per-instance test ranks of a run: `<run_dir>/test_instances.tsv`.

One row per test instance, tab-separated, with a header:

```
index   user    sampled_rank    full_rank
17      u42     3               118
```

`index` is the instance's stored `index` (stable across runs of the same
dataset, so two runs can be paired instance by instance), `user` its user
id, and the ranks are **1-based** (1 = the positive scored first):
`sampled_rank` among the stored 1 + n_neg candidates, `full_rank` among all
target items, both with the pessimistic tie rule of `uaf_tf.metrics`.
"""

import csv
import os

import numpy as np

TEST_INSTANCES_FILE = "test_instances.tsv"
COLUMNS = ("index", "user", "sampled_rank", "full_rank")


def write_test_instances(
    run_dir: str,
    *,
    index,
    user,
    sampled_rank,
    full_rank,
) -> str:
    """Writes `run_dir/test_instances.tsv`, rows sorted by `index`.

    Args:
        run_dir: the run directory.
        index: `[N]` ints, the instances' stored `index`.
        user: `[N]` user ids (str or bytes, as `eval_dataset` yields them).
        sampled_rank: `[N]` ints, **0-based** ranks as returned by
            `metrics.rank_among_candidates` (written as rank + 1).
        full_rank: `[N]` ints, **0-based** ranks as returned by
            `metrics.rank_among_all_items` (written as rank + 1).

    Returns:
        The path written.

    Raises:
        ValueError: the arrays differ in length, a rank is negative or an
            index repeats.
    """
    index = np.asarray(index, np.int64).reshape(-1)
    sampled_rank = np.asarray(sampled_rank, np.int64).reshape(-1)
    full_rank = np.asarray(full_rank, np.int64).reshape(-1)
    users = [
        u.decode() if isinstance(u, bytes) else str(u)
        for u in np.asarray(user).reshape(-1)
    ]
    lengths = {len(index), len(users), len(sampled_rank), len(full_rank)}
    if len(lengths) != 1:
        raise ValueError(
            "`index`, `user`, `sampled_rank` and `full_rank` must have the "
            f"same length. Received: lengths {len(index)}, {len(users)}, "
            f"{len(sampled_rank)}, {len(full_rank)}"
        )
    if len(index) and min(sampled_rank.min(), full_rank.min()) < 0:
        raise ValueError(
            "Ranks must be 0-based and non-negative. Received: min "
            f"sampled_rank={sampled_rank.min()}, full_rank={full_rank.min()}"
        )
    if len(np.unique(index)) != len(index):
        raise ValueError(
            "`index` must identify each instance once. Received: "
            f"{len(index) - len(np.unique(index))} repeated values"
        )
    order = np.argsort(index, kind="stable")
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, TEST_INSTANCES_FILE)
    with open(path + ".tmp", "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        for i in order:
            writer.writerow(
                [index[i], users[i], sampled_rank[i] + 1, full_rank[i] + 1]
            )
    os.replace(path + ".tmp", path)  # Never a half-written file.
    return path


def read_test_instances(run_dir: str) -> dict | None:
    """Reads `run_dir/test_instances.tsv`; None if the run has none.

    Returns:
        `{"index": int64 [N], "user": list of str, "sampled_rank": int64
        [N], "full_rank": int64 [N]}`, ranks 1-based as stored.
    """
    path = os.path.join(run_dir, TEST_INSTANCES_FILE)
    if not os.path.exists(path):
        return None
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows or tuple(rows[0]) != COLUMNS:
        header = "\t".join(COLUMNS)
        raise ValueError(
            f"{path} must start with the header {header!r}. "
            f"Received: {rows[0] if rows else 'an empty file'}"
        )
    body = rows[1:]
    return {
        "index": np.array([int(r[0]) for r in body], np.int64),
        "user": [r[1] for r in body],
        "sampled_rank": np.array([int(r[2]) for r in body], np.int64),
        "full_rank": np.array([int(r[3]) for r in body], np.int64),
    }


def reciprocal_rank_at(ranks, cutoff: int = 5) -> np.ndarray:
    """Per-instance RR@K of 1-based ranks: 1 / rank if rank <= K, else 0."""
    ranks = np.asarray(ranks, np.float64)
    return np.where(ranks <= cutoff, 1.0 / ranks, 0.0)


def hit_at(ranks, cutoff: int = 5) -> np.ndarray:
    """Per-instance HR@K of 1-based ranks: 1 if rank <= K, else 0."""
    return (np.asarray(ranks) <= cutoff).astype(np.float64)
