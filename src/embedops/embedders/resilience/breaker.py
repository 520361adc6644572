"""A circuit breaker per endpoint.

Closed: calls go through; ``failure_threshold`` consecutive failures (5xx, timeouts,
connection errors) open it. Open: calls fail fast with :class:`CircuitOpen` for
``open_seconds``, so an outage is not made worse and the work is parked (dead-lettered as
retryable) instead of waiting. Then half-open: one probe call goes through; its success
closes the breaker, its failure opens it for another ``open_seconds``. Rate limits (429)
and client errors do not count: they say nothing about the endpoint's health.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import StrEnum

from embedops.embedders.resilience.clock import Clock
from embedops.errors import CircuitOpen


class BreakerState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def gauge(self) -> int:
        """Metric value: 0 closed, 1 half-open, 2 open."""
        return {"closed": 0, "half_open": 1, "open": 2}[self.value]




class CircuitBreaker:
    """Thread-safe breaker; ``on_change(state)`` runs on every state transition."""

    def __init__(self, endpoint: str, clock: Clock, failure_threshold: int = 5,
                 open_seconds: float = 30.0,
                 on_change: Callable[[BreakerState], None] | None = None) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.endpoint = endpoint
        self.clock = clock
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self.on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._lock = threading.Lock()

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._maybe_half_open()
            return self._state

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self.on_change is not None:
                self.on_change(state)

    def _maybe_half_open(self) -> None:
        if (self._state is BreakerState.OPEN
                and self.clock.now() - self._opened_at >= self.open_seconds):
            self._set(BreakerState.HALF_OPEN)
            self._probing = False

    def before_call(self) -> None:
        """Raise :class:`CircuitOpen` unless a call may go now (closed, or the single
        half-open probe)."""
        with self._lock:
            self._maybe_half_open()
            if self._state is BreakerState.CLOSED:
                return
            if self._state is BreakerState.HALF_OPEN and not self._probing:
                self._probing = True
                return
            left = max(self.open_seconds - (self.clock.now() - self._opened_at), 0.0)
            raise CircuitOpen(
                f"circuit breaker for {self.endpoint} is {self._state.value} after "
                f"{self._failures} consecutive failures; next probe in {left:.1f}s")

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._probing = False
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            was_probe = self._state is BreakerState.HALF_OPEN
            self._probing = False
            if was_probe or self._failures >= self.failure_threshold:
                self._opened_at = self.clock.now()
                self._set(BreakerState.OPEN)

    def release_probe(self) -> None:
        """A half-open probe ended without telling health (e.g. a 429): let another go."""
        with self._lock:
            self._probing = False
