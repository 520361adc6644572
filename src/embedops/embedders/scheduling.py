"""Sharing one model between requests that wait for an answer and background writes.

Models and tokenizers are not re-entrant, and on a small CPU a second concurrent forward
pass only slows both down, so a serving process runs one model call at a time. The
:class:`ModelLock` decides who goes next: a caller holding a request open (a search
query, ``/v1/embeddings``) goes before the real-time writer. The writer takes the lock
for one forward pass at a time (``ingest/targets.py``), so a query waits behind at most
one pass of a write, however large the document.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Literal

Priority = Literal["interactive", "background"]
WaitObserver = Callable[[Priority, float], None]


class ModelLock:
    """A mutex with two priorities. ``interactive`` holders are served before
    ``background`` ones that are waiting at the same moment; among equals, whoever the
    operating system wakes first wins.

    A background waiter is never starved: once it has waited ``max_defer_s`` it goes
    before interactive waiters that arrive later (one hold), so writes still progress
    while queries saturate the model. ``on_wait(priority, seconds)``, when set, sees how
    long each acquisition waited (for metrics)."""

    def __init__(self, max_defer_s: float = 1.0, on_wait: WaitObserver | None = None) -> None:
        self.max_defer_s = max_defer_s
        self.on_wait = on_wait
        self._cond = threading.Condition(threading.Lock())
        self._held = False
        self._interactive_waiting = 0
        self._background_since: list[float] = []  # arrival times of background waiters

    @contextmanager
    def hold(self, priority: Priority) -> Iterator[None]:
        """Hold the lock for one model call; blocks until it is this caller's turn."""
        self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    def interactive(self) -> AbstractContextManager[None]:
        """``hold("interactive")``: for a caller that holds a request open."""
        return self.hold("interactive")

    def background(self) -> AbstractContextManager[None]:
        """``hold("background")``: for writes nobody is waiting on synchronously."""
        return self.hold("background")

    def _acquire(self, priority: Priority) -> None:
        arrived = time.monotonic()
        with self._cond:
            if priority == "interactive":
                self._interactive_waiting += 1
                try:
                    while self._held or self._background_overdue():
                        self._cond.wait()
                finally:
                    self._interactive_waiting -= 1
            else:
                self._background_since.append(arrived)
                try:
                    # No timeout needed: while this waits, either the lock is held (its
                    # release wakes everyone) or an interactive waiter is about to take it.
                    while self._held or (self._interactive_waiting and
                                         time.monotonic() - arrived < self.max_defer_s):
                        self._cond.wait()
                finally:
                    self._background_since.remove(arrived)
            self._held = True
        if self.on_wait is not None:
            self.on_wait(priority, time.monotonic() - arrived)

    def _background_overdue(self) -> bool:
        now = time.monotonic()
        return any(now - since >= self.max_defer_s for since in self._background_since)

    def _release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()
