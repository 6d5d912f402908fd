"""Which process runs a cell: so several `reproduce.py` processes can share
one grid.

Two processes given the same `--out_dir` (on one machine, or on machines
sharing the directory through a file system with working `flock`) each take
the next cell nobody holds. A process holds a cell by an exclusive
`fcntl.flock` on `<out_dir>/locks/<cell name, / -> _>.lock` for as long as
the cell runs. The kernel drops the lock when the holder exits, however it
exits (finished, crashed, killed), so a lock is never stale and nobody has to
clean up: the file stays behind, holding the last holder's description.
"""

import fcntl
import json
import os
import socket
import time


def lock_path(out_dir: str, cell_name: str) -> str:
    """`<out_dir>/locks/<cell name, / -> _>.lock`."""
    return os.path.join(out_dir, "locks", cell_name.replace("/", "_") + ".lock")


class CellLock:
    """The lock of one cell of the grid in `out_dir`.

    ```
    lock = CellLock(out_dir, cell.name)
    if lock.acquire():       # False: another process runs the cell
        try: ...run it...
        finally: lock.release()
    ```
    """

    def __init__(self, out_dir: str, cell_name: str):
        self.path = lock_path(out_dir, cell_name)
        self._file = None

    def acquire(self, *, wait: bool = False) -> bool:
        """Takes the lock and writes this process into the file.

        Args:
            wait: block until the holder lets go (instead of returning
                False at once).

        Returns:
            True when this process now holds the cell; False when another
            process holds it (only without `wait`).
        """
        if not self._flock(wait):
            return False
        self._file.seek(0)
        self._file.truncate()
        json.dump(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            },
            self._file,
        )
        self._file.flush()
        return True

    def held_elsewhere(self) -> str | None:
        """`holder()` while another process holds the cell, else None
        (checked by taking the lock for a moment, without writing to it;
        creates nothing when no process ever held it)."""
        if not os.path.exists(self.path):
            return None
        if not self._flock(wait=False):
            return self.holder()
        self.release()
        return None

    def _flock(self, wait: bool) -> bool:
        if self._file is not None:
            raise RuntimeError(f"{self.path} is already held by this object")
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(
                handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
            )
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        """Lets go of the lock (the file stays; a no-op if not held)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def holder(self) -> str:
        """`"pid 123 on host-a since 2026-11-29 03:10:00"`: who wrote the
        file last (the holder, while it is held)."""
        try:
            with open(self.path) as f:
                record = json.load(f)
            return (
                f"pid {record['pid']} on {record['host']} "
                f"since {record['since']}"
            )
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def wait_until_free(self) -> None:
        """Blocks until nobody holds the cell (takes and drops the lock,
        leaving the file's record of its last holder as it was)."""
        self._flock(wait=True)
        self.release()
