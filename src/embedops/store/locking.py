"""The single-writer lock of a store directory (``fcntl.flock`` on ``<store>/LOCK``).

The kernel releases the lock when the holding process dies, so a crashed writer never
leaves a stale lock behind. The file holds the holder's pid for error messages only.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from embedops.errors import StoreLocked


class WriterLock:
    """An exclusive, non-blocking advisory lock; raises ``StoreLocked`` when held elsewhere."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreLocked(
                f"store {self.path.parent} is open for writing by another process "
                f"(pid {holder}); open it read-only or wait for that writer to close"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
