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
    assert _children(tmp_path / "m") == []


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
