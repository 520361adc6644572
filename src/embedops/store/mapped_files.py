"""Checkpoint graph files mapped into memory instead of read, and kept whole while mapped.

Reading a checkpoint's graph copies the whole file into memory before the first search:
1.5-1.8 s for the 1.68 GB graph of 1M float32 vectors on the development machine, most
of it faulting in and zero-filling fresh pages, and 5.7-8.5 s for 10M int8 vectors.
Mapping it (faiss's ``IO_FLAG_MMAP_IFC``) reads only what the first search touches, and
processes that open the same store share one copy of it in the page cache. A mapped
graph's pages come from disk on first touch, one small read each (a search touching a
few thousand cold pages took ~0.1-0.2 s), so a background thread reads the file through
in large sequential blocks (``MappedFile.prefetch``) and searches run at full speed once it is
done.

A mapping must outlive nothing it relies on:

* **The file stays whole.** Cutting a mapped file short (``durable_files.remove_gradually``
  truncates the files it removes, a slice at a time) would kill the mapping process with
  ``SIGBUS`` at its next touch of a page past the cut. A mapping process holds a shared
  ``flock`` on the file for as long as the mapping lives; the remover takes the lock
  exclusive first and, when it cannot, only unlinks the file (its blocks are freed when
  the last mapping goes). Checkpoint files are never rewritten in place: a new
  checkpoint gets new names (``checkpoint_files``).
* **Nothing is written through it.** faiss aborts the process when an insert must grow a
  mapped array, and a clone of a mapped graph maps the same pages. ``HnswGraph`` reads an
  owned copy of the file before any insert (``HnswGraph.owned_copy``).

Mapping needs a local file system (where ``flock`` locks conflict between descriptors;
NFS emulates them with POSIX locks, which a process's own closes release) and Linux's
``/proc/self/fd`` (faiss opens the file by name: the name of the
descriptor holding the lock is the same file even once it is unlinked); elsewhere, and
for graph files smaller than ``MAP_MIN_BYTES``, the graph is read as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

MAP_MIN_BYTES = 64 << 20  # graph files at least this large are mapped, smaller ones read
PREFETCH_BLOCK_BYTES = 16 << 20  # the background read's block


class MappedFile:
    """A graph file opened for mapping: a descriptor holding a shared ``flock`` on it
    (``close`` lets go of both), its size, and the name faiss opens it by."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self._name = f"/proc/self/fd/{fd}"
        self._closed = False
        self._stop = threading.Event()

    @property
    def name(self) -> str:
        """The name faiss opens the file by (RuntimeError once closed: the descriptor's
        number may name another file by then)."""
        if self._closed:
            raise RuntimeError("the mapped graph file is closed")
        return self._name

    def prefetch(self) -> threading.Thread:
        """Start reading the file through in the background (``_read_through``); stops
        at ``close``."""
        thread = threading.Thread(target=_read_through, args=(os.dup(self.fd), self._stop),
                                  daemon=True, name="embedops-graph-prefetch")
        thread.start()
        return thread

    def close(self) -> None:
        """Release the lock and the descriptor (call once the mapping is gone)."""
        self._stop.set()
        if not self._closed:
            self._closed = True
            os.close(self.fd)


class BeingRemoved(OSError):
    """The file is being removed (a newer checkpoint replaced it): read the manifest again."""


def open_for_mapping(path: Path) -> MappedFile | None:
    """``path`` opened and locked shared for mapping, or None when it is better read
    (smaller than ``MAP_MIN_BYTES``, or no ``/proc/self/fd`` here). Raises
    ``BeingRemoved`` when its remover holds the lock exclusive or it was unlinked or
    replaced meanwhile, and ``OSError`` when it cannot be opened."""
    if not Path("/proc/self/fd").is_dir():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        if os.fstat(fd).st_size < MAP_MIN_BYTES:
            os.close(fd)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BeingRemoved(str(path)) from exc
        except OSError:  # (no flock here: no mapping can rely on it; read the file)
            os.close(fd)
            return None
        try:
            held, named = os.fstat(fd), os.stat(path)
        except FileNotFoundError as exc:
            raise BeingRemoved(str(path)) from exc
        if held.st_nlink == 0 or (held.st_dev, held.st_ino) != (named.st_dev, named.st_ino):
            raise BeingRemoved(str(path))
    except OSError:
        os.close(fd)
        raise
    return MappedFile(fd, held.st_size)


def mapped_elsewhere(fd: int) -> bool:
    """Does some process (this one included, through another descriptor) map the file
    open at ``fd``? True when its shared lock is held; otherwise ``fd`` now holds the
    lock exclusive, which keeps new mappings away until it is closed."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # (a file system without flock: no mapping can rely on it either)
        return False
    return False


def _read_through(fd: int, stop: threading.Event) -> None:
    """Read the file open at ``fd`` (closed at the end) from start to end into a scratch
    block, so that the page cache holds it (the read lets go of the interpreter lock)."""
    with contextlib.suppress(OSError):
        try:
            with contextlib.suppress(OSError, AttributeError):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            block = memoryview(bytearray(PREFETCH_BLOCK_BYTES))
            offset = 0
            while not stop.is_set():
                got = os.preadv(fd, [block], offset)
                if got <= 0:
                    return
                offset += got
        finally:
            os.close(fd)
