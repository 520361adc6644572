"""The boundary around a store handle's methods, as decorator factories.

``serialised`` is for handles that run one call at a time on one connection (the
embedded store, pgvector): it takes the handle's ``_lock``, refuses a closed handle and
turns the driver's errors into the project's. ``writes`` refuses a write on a read-only
handle before the call reaches the engine.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from embedops.errors import ReadOnlyStore, StoreError

P = ParamSpec("P")
R = TypeVar("R")
Decorator = Callable[[Callable[P, R]], Callable[P, R]]


class _Serialised(Protocol):
    _lock: threading.Lock | threading.RLock
    _conn: Any


class _Writable(Protocol):
    read_only: bool
    where: str


def serialised(error: type[Exception] | tuple[type[Exception], ...],
               translate: Callable[[Any], StoreError]) -> Decorator[P, R]:
    """A decorator for the methods of a handle with a ``_lock`` and a ``_conn``: calls
    run one at a time, a closed handle (``_conn`` is None) raises ``StoreError``, and an
    ``error`` raised inside becomes ``translate(error)``."""

    def guard(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            store: _Serialised = args[0]  # type: ignore[assignment]
            with store._lock:
                if store._conn is None:
                    raise StoreError("store handle is closed")
                try:
                    return method(*args, **kwargs)
                except error as exc:
                    raise translate(exc) from exc

        return wrapper

    return guard


def check_writable(read_only: bool, where: object, operation: str) -> None:
    """Refuse ``operation`` on a read-only handle of the store at ``where``."""
    if read_only:
        raise ReadOnlyStore(f"store {where} is open read-only; {operation} needs a "
                            "read-write handle")


def writes(guard: Decorator[P, R]) -> Decorator[P, R]:
    """A decorator for the write methods of a handle with ``read_only`` and ``where``:
    refused on a read-only handle, otherwise run under ``guard``."""

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            store: _Writable = args[0]  # type: ignore[assignment]
            check_writable(store.read_only, store.where, method.__name__)
            return method(*args, **kwargs)

        return guard(wrapper)

    return decorate
