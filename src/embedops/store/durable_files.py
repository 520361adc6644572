"""Big files written and removed without stalling the fsyncs of other files.

An index checkpoint writes a graph file of hundreds of megabytes beside a SQLite
database that fsyncs its write-ahead log on every commit. Written in one go and then
fsynced, the graph's dirty pages reach the disk in one flush, and on ext4 (ordered data
mode) a commit's fsync that lands meanwhile waits for all of it: on the development
machine, the longest commit beside the checkpoint of a 100,000-point float32 graph
(168 MB) took 71–77 ms that way and 8–12 ms with the file flushed every ``FLUSH_BYTES``
as it is written (``bench/checkpoint_stalls.py``; docs/benchmarks-store.md, "Checkpoint
files flushed in slices").

Removing such a file frees all its blocks in one journal commit, and with online
discard (``mount -o discard``) the next fsync waits for the discards too (13–27 ms
there); cut from the end ``TRUNCATE_BYTES`` at a time, each step commits on its own
(under 5 ms), as RocksDB's rate-limited file deletion does.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from embedops.store.mapped_files import mapped_elsewhere

FLUSH_BYTES = 8 << 20  # written bytes flushed to disk at a time
TRUNCATE_BYTES = 16 << 20  # bytes cut from a removed file at a time
_datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)  # (macOS: no fdatasync)


class WriteCancelled(OSError):
    """The file's writer gave up on it (its owner is closing): the file is abandoned."""


class FlushingFile:
    """A file opened for writing whose data goes to disk every ``flush_bytes`` written
    (``write`` returns once the slice is on disk); ``close`` fsyncs the rest. ``sync``
    flushes a file descriptor's data (``os.fdatasync`` where the system has it);
    ``write`` raises ``WriteCancelled`` once ``cancelled()`` is true."""

    def __init__(self, path: Path, flush_bytes: int | None = None,
                 sync: Callable[[int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> None:
        self.path = path
        self.flush_bytes = flush_bytes or FLUSH_BYTES
        self._sync = sync or _datasync
        self._cancelled = cancelled
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._unflushed = 0

    def write(self, data: bytes | memoryview) -> int:
        """Write all of ``data`` (a file object's ``write``; faiss's writer callback)."""
        if self._cancelled is not None and self._cancelled():
            raise WriteCancelled(f"writing {self.path} was cancelled")
        view = memoryview(data).cast("B")
        while view:
            done = os.write(self._fd, view)
            view = view[done:]
            self._unflushed += done
        if self._unflushed >= self.flush_bytes:
            self._sync(self._fd)
            self._unflushed = 0
        return len(data)

    def close(self) -> None:
        """Flush what is left, with the file's size and times, and close it."""
        if self._fd < 0:
            return
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1

    def abandon(self) -> None:
        """Close without flushing (the write failed; the caller removes the file)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@contextlib.contextmanager
def replacing(path: Path, cancelled: Callable[[], bool] | None = None
              ) -> Iterator[FlushingFile]:
    """A ``FlushingFile`` under a temporary name, fsynced and renamed to ``path`` when the
    block ends without an error (else removed): ``path`` is never seen half-written."""
    tmp = path.with_name(f".{path.name}.tmp")
    out = FlushingFile(tmp, cancelled=cancelled)
    try:
        yield out
        out.close()
    except BaseException:
        out.abandon()
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_npy(path: Path, array: np.ndarray,
              cancelled: Callable[[], bool] | None = None) -> None:
    """``array`` as a NumPy ``.npy`` file at ``path``, atomically and on disk."""
    with replacing(path, cancelled) as out:
        np.save(_AsFile(out), array, allow_pickle=False)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """``data`` as a JSON file at ``path``, atomically and on disk (the folder too)."""
    with replacing(path) as out:
        out.write(json.dumps(data, indent=2, sort_keys=True).encode())
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def remove_gradually(path: Path, step: int | None = None,
                     sync: Callable[[int], None] | None = None) -> int:
    """Remove the file at ``path`` (if there is one), cutting it from the end ``step``
    bytes at a time, each cut committed before the next; returns the number of cuts.
    A file some process maps (``mapped_files``) is unlinked whole, never cut: its blocks
    are freed when the last mapping goes."""
    step, sync = step or TRUNCATE_BYTES, sync or _datasync
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return 0
    cuts = 0
    try:
        size = os.fstat(fd).st_size
        cut = size > step and not mapped_elsewhere(fd)
        while cut and size > step:
            size -= step
            os.ftruncate(fd, size)
            sync(fd)
            cuts += 1
        path.unlink(missing_ok=True)  # (before the lock goes: no mapping of the cut file)
    finally:
        os.close(fd)
    return cuts


class _AsFile:
    """The binary file object ``np.save`` writes to (``write`` alone: never ``tofile``,
    which would bypass the flushing)."""

    def __init__(self, out: FlushingFile) -> None:
        self.write = out.write

