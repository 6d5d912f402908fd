import os

import pytest

from uaf_tf.serving import versioned_dir


def _write_complete(path):
    with open(os.path.join(path, "saved_model.pb"), "w") as f:
        f.write("model")


def _children(model_dir):
    return sorted(os.listdir(model_dir))


def test_publishes_by_rename_from_hidden_sibling(tmp_path):
    base = str(tmp_path)
    with versioned_dir.atomic_version_dir(base, "m", 7) as tmp_dir:
        _write_complete(tmp_dir)
        name = os.path.basename(tmp_dir)
        # Same parent (same filesystem, rename is atomic), never an int name
        # TF Serving would try to load.
        assert os.path.dirname(tmp_dir) == os.path.join(base, "m")
        assert name.startswith(".")
        with pytest.raises(ValueError):
            int(name)
        assert _children(os.path.join(base, "m")) == [name]
        assert os.stat(tmp_dir).st_mode & 0o755 == 0o755
    assert _children(os.path.join(base, "m")) == ["7"]
    assert _children(os.path.join(base, "m", "7")) == ["saved_model.pb"]


def test_failure_leaves_no_version_and_no_temp_dir(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with versioned_dir.atomic_version_dir(str(tmp_path), "m", 7) as tmp_dir:
            _write_complete(tmp_dir)
            raise RuntimeError("boom")
    assert _children(tmp_path) == []  # nor the model dir it had to create


def test_refuses_existing_version_unless_overwrite(tmp_path):
    base = str(tmp_path)
    with versioned_dir.atomic_version_dir(base, "m", 1) as tmp_dir:
        _write_complete(tmp_dir)
    with pytest.raises(FileExistsError, match="--overwrite"):
        with versioned_dir.atomic_version_dir(base, "m", 1):
            pytest.fail("must refuse before yielding")
    with versioned_dir.atomic_version_dir(base, "m", 1, overwrite=True) as d:
        with open(os.path.join(d, "new.txt"), "w") as f:
            f.write("new")
    assert _children(tmp_path / "m") == ["1"]
    assert _children(tmp_path / "m" / "1") == ["new.txt"]


def test_version_that_appears_meanwhile_is_not_replaced(tmp_path):
    with pytest.raises(FileExistsError, match="appeared"):
        with versioned_dir.atomic_version_dir(str(tmp_path), "m", 3) as d:
            os.makedirs(tmp_path / "m" / "3")
            _write_complete(d)
    assert _children(tmp_path / "m") == ["3"]
    assert _children(tmp_path / "m" / "3") == []


@pytest.mark.parametrize(
    "model_name, version",
    [("m", -1), ("m", 1.5), ("m", "3"), ("m", True), ("", 1), (".m", 1)],
)
def test_rejects_bad_names(tmp_path, model_name, version):
    with pytest.raises(ValueError):
        versioned_dir.version_dir(str(tmp_path), model_name, version)


def test_timestamp_version_is_int():
    assert isinstance(versioned_dir.timestamp_version(), int)


# === Leftovers of killed exports (issue 12 item 6) ===


@pytest.mark.parametrize(
    "name, expected",
    [
        ("7", True),
        ("0", True),
        (" 7\n", True),  # SimpleAtoi allows surrounding whitespace
        ("+7", True),
        ("-7", True),
        ("9223372036854775807", True),
        ("9223372036854775808", False),  # over int64
        ("007a", False),
        ("", False),
        ("+", False),
        (".tmp-7-abc", False),
        (".old-7-abc", False),
        ("7.tmp", False),
    ],
)
def test_parses_as_version_mirrors_tf_serving(name, expected):
    assert versioned_dir.parses_as_version(name) is expected


def test_next_export_deletes_leftovers_of_killed_exports(tmp_path):
    model_dir = tmp_path / "m"
    # What killed exports leave: a half-written temporary version and the
    # moved-aside old version of an interrupted overwrite.
    (model_dir / ".tmp-5-x1y2" / "variables").mkdir(parents=True)
    (model_dir / ".old-3-z9" / "replaced").mkdir(parents=True)
    (model_dir / "3").mkdir()
    _write_complete(str(model_dir / "3"))
    for name in _children(model_dir):
        assert versioned_dir.parses_as_version(name) is (name == "3")
    with versioned_dir.atomic_version_dir(str(tmp_path), "m", 5) as tmp_dir:
        # Cleaned before the new temporary directory is made.
        assert _children(model_dir) == [os.path.basename(tmp_dir), "3"]
        _write_complete(tmp_dir)
    assert _children(model_dir) == ["3", "5"]


def test_clean_stale_dirs_returns_what_it_deleted(tmp_path):
    for name in (".tmp-1-a", ".old-2-b", "4", ".hidden", "notes.txt"):
        (tmp_path / name).mkdir()
    assert versioned_dir.clean_stale_dirs(str(tmp_path)) == [
        ".old-2-b",
        ".tmp-1-a",
    ]
    assert _children(tmp_path) == [".hidden", "4", "notes.txt"]


def test_a_second_export_waits_for_the_first(tmp_path):
    """Concurrent exports of one model are serialised by the lock, so the
    second never deletes the first one's live temporary directory."""
    import threading

    events = []
    first_inside = threading.Event()
    release_first = threading.Event()

    def first():
        with versioned_dir.atomic_version_dir(str(tmp_path), "m", 1) as d:
            events.append("first in")
            first_inside.set()
            release_first.wait(timeout=30)
            _write_complete(d)
            events.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    assert first_inside.wait(timeout=30)

    def second():
        with versioned_dir.atomic_version_dir(str(tmp_path), "m", 2) as d:
            events.append("second in")
            _write_complete(d)

    second_thread = threading.Thread(target=second)
    second_thread.start()
    second_thread.join(timeout=0.5)
    assert second_thread.is_alive()  # blocked on the lock
    release_first.set()
    thread.join(timeout=30)
    second_thread.join(timeout=30)
    assert events == ["first in", "first out", "second in"]
    assert _children(tmp_path / "m") == ["1", "2"]


def test_failed_first_export_leaves_no_empty_directories(tmp_path):
    base = tmp_path / "exports"
    with pytest.raises(RuntimeError):
        with versioned_dir.atomic_version_dir(str(base), "m", 1):
            raise RuntimeError("boom")
    assert not base.exists()
    # An existing export base (and model dir) is left in place.
    (base / "m").mkdir(parents=True)
    with pytest.raises(RuntimeError):
        with versioned_dir.atomic_version_dir(str(base), "m", 1):
            raise RuntimeError("boom")
    assert _children(base) == ["m"]
