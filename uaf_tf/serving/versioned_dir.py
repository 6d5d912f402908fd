"""Atomic publication of `<export_base>/<model_name>/<version>/` for TF Serving.

TF Serving polls `<export_base>/<model_name>/` and loads every child whose
name parses as an integer, possibly while it is being written. So a version
is built in a dot-prefixed sibling (`.tmp-<version>-XXXX`, same filesystem,
never an integer name) and `os.rename`d into place once complete: a watching
server sees the whole version or nothing. The export base must be a local
(POSIX) path; object stores have no atomic directory rename.

An export that is killed (SIGKILL, power loss) cannot delete its temporary
directory. Every export therefore holds an exclusive `flock` on the model
directory while it writes, and the next export, once it holds the lock,
deletes every `.tmp-*` and `.old-*` child: no live export can own one. The
lock also serialises concurrent exports of one model name. A leftover is
never taken for a version: TF Serving parses a child's whole name as an
integer (`absl::SimpleAtoi`, in `file_system_storage_path_source.cc`), and
a name starting with "." never parses (`parses_as_version`).
"""

import contextlib
import fcntl
import os
import shutil
import tempfile
import time

from absl import logging

# Prefixes of the hidden children an export writes beside the versions.
TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"


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
    created = _first_missing_ancestor(model_dir)
    os.makedirs(model_dir, exist_ok=True)
    try:
        with _model_dir_lock(model_dir):
            clean_stale_dirs(model_dir)
            with _publish(model_dir, final_dir, version, overwrite) as tmp:
                yield tmp
    except BaseException:
        # A failed first export leaves no empty <export_base>/<model>/.
        _remove_empty_dirs(model_dir, created)
        raise


@contextlib.contextmanager
def _publish(model_dir, final_dir, version, overwrite):
    """The temporary directory, renamed to `final_dir` on success."""
    tmp_dir = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{version}-", dir=model_dir)
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
            old_dir = tempfile.mkdtemp(
                prefix=f"{OLD_PREFIX}{version}-", dir=model_dir
            )
            os.rename(final_dir, os.path.join(old_dir, "replaced"))
            os.rename(tmp_dir, final_dir)
            shutil.rmtree(old_dir, ignore_errors=True)
        else:
            os.rename(tmp_dir, final_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


def parses_as_version(name: str) -> bool:
    """Whether TF Serving would load a child named `name` as a version.

    Mirrors `absl::SimpleAtoi` into int64, which TF Serving applies to the
    whole name: ASCII whitespace around it is allowed, then an optional
    sign and one or more decimal digits.
    """
    body = name.strip(" \t\n\v\f\r")
    if body[:1] in ("+", "-"):
        body = body[1:]
    if not body or not all("0" <= c <= "9" for c in body):
        return False
    return -(2**63) <= int(name.strip(" \t\n\v\f\r")) < 2**63


def clean_stale_dirs(model_dir: str) -> list[str]:
    """Deletes the `.tmp-*` and `.old-*` children of `model_dir`.

    Only safe while holding the model directory's lock (as
    `atomic_version_dir` does): then no live export owns one, and each is
    the leftover of a killed export.

    Returns:
        The names deleted, sorted.
    """
    stale = sorted(
        name
        for name in os.listdir(model_dir)
        if name.startswith((TMP_PREFIX, OLD_PREFIX))
    )
    for name in stale:
        shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)
    if stale:
        logging.warning(
            "Deleted %d leftover(s) of killed exports in %s: %s",
            len(stale),
            model_dir,
            ", ".join(stale),
        )
    return stale


@contextlib.contextmanager
def _model_dir_lock(model_dir: str):
    """Holds an exclusive `flock` on `model_dir` (released at exit, and by
    the kernel when the process dies, however it dies)."""
    fd = os.open(model_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logging.info("Waiting for another export of %s...", model_dir)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _first_missing_ancestor(path: str) -> str | None:
    """The top-most directory of `path` that does not exist yet, if any."""
    path = os.path.abspath(path)
    missing = None
    while not os.path.exists(path):
        missing = path
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


def _remove_empty_dirs(model_dir: str, created: str | None) -> None:
    """Removes `model_dir` and its parents up to `created` while empty."""
    if created is None:
        return
    path = os.path.abspath(model_dir)
    while True:
        try:
            os.rmdir(path)  # only succeeds on an empty directory
        except OSError:
            return
        if path == created:
            return
        path = os.path.dirname(path)
