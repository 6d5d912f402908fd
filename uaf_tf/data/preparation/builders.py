"""One entry point for every dataset builder: `build_dataset(kind, ...)`.

Kinds:
- `"movielens-100k"`, `"movielens-1m"`: fetch the GroupLens release
  (`fetch.py`), build it as `"movielens"`, and write `user_profiles.tsv`.
- `"movielens"`: a GroupLens ratings file (`movielens.py`).
- `"original"`: the original UAF CSV files (`original.py`).
- `"interactions"`: a source and a target log (`interactions.py`).
- `"synthetic"`: planted data (`synthetic.py`).

Every builder writes the directory layout of `dataset_info.py` and returns
the statistics it wrote to `stats.json`.
"""

import os

from uaf_tf.data import dataset_info
from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import fetch
from uaf_tf.data.preparation import staging
from uaf_tf.data.preparation import user_profiles
from uaf_tf.data.preparation.interactions import build_from_interactions
from uaf_tf.data.preparation.movielens import build_from_movielens
from uaf_tf.data.preparation.original import build_from_original
from uaf_tf.data.preparation.synthetic import build_synthetic_dataset
from uaf_tf.data.preparation.write_options import WriteOptions

# Release -> (ratings file, profiles file, profile reader) in its cache.
_MOVIELENS_FILES = {
    "ml-100k": ("u.data", "u.user", user_profiles.read_u_user),
    "ml-1m": ("ratings.dat", "users.dat", user_profiles.read_users_dat),
}


def build_movielens_release(
    release: str,
    out_dir: str,
    options: WriteOptions = WriteOptions(),
    *,
    cache_dir: str | None = None,
    timeout: float = 10.0,
) -> dict:
    """Fetches (or reuses the cached) GroupLens release and builds it.

    The ratings go through `build_from_movielens` (paper sec. 4.1); the
    user profiles are written as `user_profiles.tsv`
    (`user_profiles.py`).

    Args:
        release: `"ml-100k"` or `"ml-1m"` (`fetch.RELEASES`).
        out_dir: dataset directory.
        options: write options; default `name="movielens-100k"` etc.
        cache_dir: download cache (default `~/.cache/uaf_tf`).
        timeout: seconds for the GroupLens request.

    Returns:
        The `stats.json` dictionary, with `user_profiles` (rows written).
    """
    ratings, profiles_file, read_profiles = _MOVIELENS_FILES[release]
    ml_dir = fetch.fetch_release(release, cache_dir, timeout=timeout)
    profiles = read_profiles(os.path.join(ml_dir, profiles_file))
    # The profiles join the dataset before it is renamed into place.
    with staging.staged_directory(out_dir) as data_dir:
        stats = build_from_movielens(
            data_dir,
            os.path.join(ml_dir, ratings),
            options.resolve(name="movielens-" + release.removeprefix("ml-")),
        )
        user_profiles.write_user_profiles(profiles, data_dir)
        stats["user_profiles"] = len(profiles)
        staging.write_json_atomically(
            os.path.join(data_dir, dataset_info.STATS_FILE), stats
        )
    return stats


def build_movielens_100k(
    out_dir: str, options: WriteOptions = WriteOptions(), **kwargs
) -> dict:
    """MovieLens-100K (`build_movielens_release("ml-100k", ...)`)."""
    return build_movielens_release("ml-100k", out_dir, options, **kwargs)


def build_movielens_1m(
    out_dir: str, options: WriteOptions = WriteOptions(), **kwargs
) -> dict:
    """MovieLens-1M (`build_movielens_release("ml-1m", ...)`)."""
    return build_movielens_release("ml-1m", out_dir, options, **kwargs)


BUILDERS = {
    "movielens-100k": build_movielens_100k,
    "movielens-1m": build_movielens_1m,
    "movielens": build_from_movielens,
    "original": build_from_original,
    "interactions": build_from_interactions,
    "synthetic": build_synthetic_dataset,
}


def build_dataset(
    kind: str,
    out_dir: str,
    options: WriteOptions = WriteOptions(),
    **inputs,
) -> dict:
    """Builds dataset `kind` into `out_dir`.

    Args:
        kind: a key of `BUILDERS`.
        out_dir: dataset directory.
        options: the write options every builder shares.
        **inputs: the builder's own arguments (`ratings_file`,
            `pretrain_file`, `num_users`...).
    """
    if kind not in BUILDERS:
        raise bl.OptionError(
            f"`kind` must be one of {sorted(BUILDERS)}. Received: kind={kind!r}"
        )
    return BUILDERS[kind](out_dir, options=options, **inputs)
