"""Builds a directory next to its destination and renames it into place.

A dataset is written into a hidden sibling `.<name>.tmp-<pid>-<random>`;
only when every file is written (and synced) is it renamed to `<name>`. An
existing dataset there stays intact until then: it is renamed aside to
`.<name>.old-<pid>-<random>`, the new one renamed in, and the old one
removed. So a build killed at any point leaves either the old dataset,
the new complete one, or (killed between the two renames) none; never a
directory with a `dataset.json` whose shards are missing or partial.

Leftovers of a killed build (`.<name>.tmp-*`, `.<name>.old-*` whose
process is gone) are removed by the next build into the same place; those
of a build still running are left alone.

`out_dir` is replaced as a whole, so it must be absent, empty, or a
dataset directory (holding `dataset.json`); any other directory is refused
rather than deleted.
"""

import contextlib
import glob
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator

from uaf_tf.data import dataset_info as di
from uaf_tf.data.preparation import bad_lines as bl


def _owner_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # Another user's process.
    return True


def remove_stale(parent: str, name: str) -> list[str]:
    """Removes `.<name>.tmp-*` and `.<name>.old-*` of dead processes in
    `parent`; returns the removed paths."""
    removed = []
    pattern = re.compile(rf"\.{re.escape(name)}\.(tmp|old)-(\d+)-")
    for path in glob.glob(
        os.path.join(glob.escape(parent), f".{glob.escape(name)}.*")
    ):
        match = pattern.match(os.path.basename(path))
        if match and not _owner_alive(int(match.group(2))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def check_replaceable(out_dir: str) -> None:
    """Raises `OptionError` unless `out_dir` is absent, an empty directory
    or a dataset directory."""
    if not os.path.lexists(out_dir):
        return
    if not os.path.isdir(out_dir):
        raise bl.OptionError(
            f"--out_dir={out_dir}: exists and is not a directory."
        )
    entries = os.listdir(out_dir)
    if entries and di.DATASET_INFO_FILE not in entries:
        raise bl.OptionError(
            f"--out_dir={out_dir}: exists and is not a dataset directory "
            f"(no {di.DATASET_INFO_FILE}); it would be replaced as a whole, "
            "so it is left alone. Remove it or choose another --out_dir."
        )


def _sync_tree(root: str) -> None:
    """fsyncs every file and directory under `root` (durable before the
    rename makes them visible)."""
    for directory, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def staged_directory(out_dir: str) -> Iterator[str]:
    """Yields an empty sibling directory of `out_dir`; on success it
    replaces `out_dir`, on an exception it is removed.

    Raises:
        OptionError: `out_dir` exists and is neither empty nor a dataset.
    """
    target = os.path.abspath(out_dir)
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    check_replaceable(target)
    remove_stale(parent, name)
    prefix = f".{name}.tmp-{os.getpid()}-"
    staging = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield staging
        _sync_tree(staging)
        if os.path.lexists(target):
            old = tempfile.mkdtemp(
                prefix=f".{name}.old-{os.getpid()}-", dir=parent
            )
            os.rename(target, os.path.join(old, name))
            os.rename(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_json_atomically(path: str, value) -> None:
    """Writes `path` through a temporary file and `os.replace`: a reader
    sees the old file or the whole new one."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
