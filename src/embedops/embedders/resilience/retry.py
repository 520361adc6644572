"""The retry policy, in one place.

Exponential backoff with full jitter: before retry ``n`` (1-based) the caller sleeps a
uniform random time in ``[0, min(max_delay, base_delay * 2**(n-1))]`` — by default caps of
1, 2, 4, 8, 16 s — and at most ``max_attempts`` attempts are made in all (default 5). A
server's ``Retry-After`` is a floor: the wait is never shorter than what it asked for. A
``Retry-After`` longer than ``max_retry_after`` ends the retries at once (waiting an hour
inside one batch helps nobody; the work goes to the dead-letter queue and can be retried).
Only :class:`RetryableEmbedderError` is retried; anything else propagates on the first try.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from embedops.embedders.resilience.clock import Clock
from embedops.errors import RetryableEmbedderError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. Immutable; share one per endpoint."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 16.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")

    def cap(self, retry: int) -> float:
        """Upper bound of the jittered delay before retry ``retry`` (1-based)."""
        return min(self.max_delay, self.base_delay * 2 ** (retry - 1))

    def delay(self, retry: int, rng: random.Random,
              retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``retry``: full jitter, floored by Retry-After."""
        jittered = rng.uniform(0.0, self.cap(retry))
        return max(jittered, retry_after or 0.0)


def retry_after_of(error: BaseException) -> float | None:
    """The server's requested wait carried by ``error``, if any."""
    value = getattr(error, "retry_after", None)
    return float(value) if value is not None else None


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    clock: Clock,
    rng: random.Random | None = None,
    on_retry: Callable[[int, float, RetryableEmbedderError], None] | None = None,
) -> T:
    """Call ``fn`` until it succeeds, retrying :class:`RetryableEmbedderError` per
    ``policy``. Raises the last error (its message names the attempts) when the budget
    is spent. ``on_retry(retry_number, delay, error)`` runs before each sleep."""
    rng = rng or random.Random()
    attempt = 1
    while True:
        try:
            return fn()
        except RetryableEmbedderError as error:
            wait = retry_after_of(error)
            if attempt >= policy.max_attempts or (
                    wait is not None and wait > policy.max_retry_after):
                error.message = f"{error.message} (gave up after {attempt} attempt(s))"
                error.args = (error.message,)
                raise
            delay = policy.delay(attempt, rng, wait)
            if on_retry is not None:
                on_retry(attempt, delay, error)
            clock.sleep(delay)
            attempt += 1
