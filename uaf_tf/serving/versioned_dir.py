"""Atomic publication of `<export_base>/<model_name>/<version>/` for TF Serving.

TF Serving polls `<export_base>/<model_name>/` and loads every child whose
name parses as an integer, possibly while it is being written. So a version
is built in a dot-prefixed sibling (`.tmp-<version>-XXXX`, same filesystem,
never an integer name) and `os.rename`d into place once complete: a watching
server sees the whole version or nothing. The export base must be a local
(POSIX) path; object stores have no atomic directory rename.
"""

import contextlib
import os
import shutil
import tempfile
import time


def timestamp_version() -> int:
    """The default version number: seconds since the epoch."""
    return int(time.time())


def version_dir(export_base: str, model_name: str, version: int) -> str:
    """`<export_base>/<model_name>/<version>`, after validating both parts."""
    if not model_name or os.sep in model_name or model_name.startswith("."):
        raise ValueError(
            "`model_name` must be a non-empty directory name not starting "
            f"with '.'. Received: model_name={model_name!r}"
        )
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(
            "`version` must be a non-negative integer (TF Serving parses the "
            f"directory name as int64). Received: version={version!r}"
        )
    return os.path.join(export_base, model_name, str(version))


@contextlib.contextmanager
def atomic_version_dir(
    export_base: str, model_name: str, version: int, overwrite: bool = False
):
    """Yields a temporary directory that becomes the version dir on success.

    On normal exit the temporary directory is renamed to
    `<export_base>/<model_name>/<version>`; on any exception it is deleted
    and no version directory appears.

    Args:
        export_base: str, local directory holding one folder per model.
        model_name: str, the TF Serving model name.
        version: int, the version number.
        overwrite: bool, replace an existing version (its old contents are
            moved aside first, then deleted); otherwise an existing version
            raises `FileExistsError` before anything is written.

    Yields:
        str, the temporary directory to write the SavedModel into.
    """
    final_dir = version_dir(export_base, model_name, version)
    if os.path.exists(final_dir) and not overwrite:
        raise FileExistsError(
            f"Version directory {final_dir} already exists; choose another "
            "`--version` or pass `--overwrite`."
        )
    model_dir = os.path.dirname(final_dir)
    os.makedirs(model_dir, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_dir)
    # mkdtemp makes 0700; a server running as another user must read it.
    os.chmod(tmp_dir, 0o755)
    try:
        yield tmp_dir
        if os.path.exists(final_dir):
            if not overwrite:
                raise FileExistsError(
                    f"Version directory {final_dir} appeared during the "
                    "export; not overwriting it."
                )
            old_dir = tempfile.mkdtemp(prefix=f".old-{version}-", dir=model_dir)
            os.rename(final_dir, os.path.join(old_dir, "replaced"))
            os.rename(tmp_dir, final_dir)
            shutil.rmtree(old_dir, ignore_errors=True)
        else:
            os.rename(tmp_dir, final_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
