"""A readers-writer lock for the in-memory indexes of a store handle.

Searches hold it shared and run side by side; changes to an index (applying a committed
write, a merge slice, a rebuild) hold it exclusive. A waiting exclusive holder stops new
shared holders from entering, so a stream of searches cannot starve the writer (each
exclusive section is short: see ``index_manager``). The exclusive side is reentrant for
the thread that holds it; the shared side is not (a shared holder must not ask again).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class SharedLock:
    """Many shared holders or one (reentrant) exclusive holder, writers preferred."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None  # thread id of the exclusive holder
        self._depth = 0  # reentrant exclusive acquisitions by that thread
        self._writers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:  # the exclusive holder already excludes everyone else
                self._depth += 1
            else:
                while self._writer is not None or self._writers_waiting:
                    self._cond.wait()
                self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                if self._writer == me:
                    self._depth -= 1
                else:
                    self._readers -= 1
                    if not self._readers:
                        self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
            else:
                self._writers_waiting += 1
                try:
                    while self._writer is not None or self._readers:
                        self._cond.wait()
                finally:
                    self._writers_waiting -= 1
                self._writer, self._depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._writer = None
                    self._cond.notify_all()
