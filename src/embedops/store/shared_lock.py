"""A readers-writer lock for the in-memory indexes of a store handle.

Searches hold it shared and run side by side; changes to an index (applying a committed
write, a merge slice, a rebuild) hold it exclusive. A waiting exclusive holder stops new
shared holders from entering, so a stream of searches cannot starve the writer (each
exclusive section is short: see ``index_manager``). The exclusive side is reentrant for
the thread that holds it; the shared side is not (a shared holder must not ask again).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType


class SharedLock:
    """Many shared holders or one (reentrant) exclusive holder, writers preferred.

    ``shared()`` and ``exclusive()`` return context managers made once per lock (plain
    classes, not generators: a search takes the shared side once per query, and a
    generator-based context manager and a ``Condition`` around the mutex cost it a few
    µs of interpreter work each time). The uncontended shared side takes the mutex once
    to enter and once to leave.

    ``generation`` moves by one as an exclusive section begins and again as it ends, so
    it is odd while one runs (the exclusive holder may take the shared side inside it)
    and even otherwise. A shared holder that reads the same even value as an earlier
    shared holder knows that no exclusive holder ran between them, so what that one
    learnt of the indexes still holds (``EmbeddedStore``'s direct searches).
    """

    def __init__(self, on_exclusive_end: Callable[[], None] | None = None) -> None:
        """``on_exclusive_end``: called as each exclusive section ends (outside the
        lock's own mutex; shared holders may already be in)."""
        self._on_exclusive_end = on_exclusive_end
        self._mutex = threading.Lock()
        self._cond = threading.Condition(self._mutex)
        self._readers = 0
        self._writer: int | None = None  # thread id of the exclusive holder
        self._depth = 0  # reentrant exclusive acquisitions by that thread
        self._writers_waiting = 0
        self._readers_waiting = 0
        self.generation = 0  # even: no exclusive holder (class docstring)
        self._shared = _SharedSide(self)
        self._exclusive = _Holding(self.acquire_exclusive, self.release_exclusive)

    def shared(self) -> _SharedSide:
        return self._shared

    def exclusive(self) -> _Holding:
        return self._exclusive

    def waiting(self) -> int:
        """Threads blocked taking the shared side or in ``acquire_exclusive`` now (a holder
        that lets go and means to take the lock again at once gives them a turn first)."""
        return self._readers_waiting + self._writers_waiting

    def acquire_exclusive(self) -> None:
        me = threading.get_ident()
        with self._mutex:
            if self._writer == me:
                self._depth += 1
                return
            self._writers_waiting += 1
            try:
                while self._writer is not None or self._readers:
                    self._cond.wait()
            except BaseException:  # gave up waiting: readers it held back may enter
                self._writers_waiting -= 1
                self._cond.notify_all()
                raise
            self._writers_waiting -= 1
            self._writer, self._depth = me, 1
            self.generation += 1

    def release_exclusive(self) -> None:
        with self._mutex:
            self._depth -= 1
            if self._depth:
                return
            self._writer = None
            self.generation += 1
            self._cond.notify_all()
        if self._on_exclusive_end is not None:
            self._on_exclusive_end()


class _SharedSide:
    """``with`` support for the shared side of a ``SharedLock``, the acquire and release
    themselves: the uncontended case (no exclusive holder, none waiting) first, then the
    exclusive holder taking the shared side inside its own, then a wait. One frame each
    way, on a path every search takes."""

    __slots__ = ("_lock",)

    def __init__(self, lock: SharedLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        lock = self._lock
        with lock._mutex:
            if lock._writer is None and not lock._writers_waiting:
                lock._readers += 1
                return
            if lock._writer == threading.get_ident():
                # the exclusive holder already excludes everyone else
                lock._depth += 1
                return
            lock._readers_waiting += 1
            try:
                while lock._writer is not None or lock._writers_waiting:
                    lock._cond.wait()
            finally:
                lock._readers_waiting -= 1
            lock._readers += 1

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        lock = self._lock
        with lock._mutex:
            if lock._writer is not None and lock._writer == threading.get_ident():
                lock._depth -= 1  # (the exclusive holder, inside its own side)
                return
            lock._readers -= 1
            if not lock._readers and lock._writers_waiting:
                lock._cond.notify_all()


class _Holding:
    """``with`` support for one side of a ``SharedLock``: its acquire and release."""

    __slots__ = ("_acquire", "_release")

    def __init__(self, acquire: Callable[[], None], release: Callable[[], None]) -> None:
        self._acquire, self._release = acquire, release

    def __enter__(self) -> None:
        self._acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._release()
