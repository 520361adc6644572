"""Client-side pacing, so bulk jobs stay under a provider's limits instead of bouncing
off them.

- :class:`TokenBucket`: ``rate_per_minute`` units refill continuously up to ``capacity``;
  ``acquire(n)`` waits (on the injected clock) until ``n`` units are there.
- :class:`Pacer`: one per endpoint. A request bucket, a token bucket, and the endpoint-wide
  pause: after a 429 every new request to that endpoint waits until the Retry-After has
  passed, because the limit belongs to the account, not to one request.
"""

from __future__ import annotations

import threading

from embedops.embedders.resilience.clock import Clock


class TokenBucket:
    """A thread-safe token bucket on an injectable clock."""

    def __init__(self, rate_per_minute: float, clock: Clock,
                 capacity: float | None = None) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self.rate = rate_per_minute / 60.0
        self.capacity = capacity if capacity is not None else rate_per_minute / 60.0 * 10
        self.capacity = max(self.capacity, 1.0)
        self.clock = clock
        self._level = self.capacity
        self._stamp = clock.now()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock.now()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self, amount: float = 1.0) -> float:
        """Take ``amount`` units, waiting as needed; returns the seconds waited. An amount
        above the capacity is allowed and waits until a full bucket plus the rest refills
        (the bucket goes negative), so huge requests are slowed, never refused."""
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                need = min(amount, self.capacity)
                if self._level >= need:
                    self._level -= amount
                    return waited
                wait = (need - self._level) / self.rate
            self.clock.sleep(wait)
            waited += wait


class Pacer:
    """Everything that delays a request to one endpoint before it is sent."""

    def __init__(self, clock: Clock, requests_per_minute: float | None = None,
                 tokens_per_minute: float | None = None) -> None:
        self.clock = clock
        self.requests = TokenBucket(requests_per_minute, clock) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, clock) if tokens_per_minute else None
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        """Hold every new request for ``seconds`` from now (a pause only ever extends)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock.now() + seconds)

    def paused_for(self) -> float:
        """Seconds left of the current pause (0 when not paused)."""
        with self._lock:
            return max(self._paused_until - self.clock.now(), 0.0)

    def wait(self, tokens: int) -> float:
        """Block until a request of ``tokens`` estimated tokens may go; returns the
        seconds waited."""
        waited = 0.0
        while (left := self.paused_for()) > 0:
            self.clock.sleep(left)
            waited += left
        if self.requests is not None:
            waited += self.requests.acquire(1)
        if self.tokens is not None:
            waited += self.tokens.acquire(tokens)
        return waited
