"""Resilience for remote embedders, one idea per module.

- ``clock``: the time source every policy reads (injectable for tests).
- ``classify``: translate httpx exceptions and HTTP statuses into the embedops error tree.
- ``retry``: exponential backoff with full jitter, honouring ``Retry-After``.
- ``pacing``: token buckets (requests/min, tokens/min) and the endpoint-wide 429 pause.
- ``breaker``: the per-endpoint circuit breaker.
- ``split``: split a batch the API rejects as too large, and try the halves.
"""

from embedops.embedders.resilience.breaker import BreakerState, CircuitBreaker, CircuitOpen
from embedops.embedders.resilience.classify import (
    BatchTooLarge,
    RateLimited,
    ServerError,
    classify_response,
    map_transport_errors,
    parse_retry_after,
    redact,
)
from embedops.embedders.resilience.clock import Clock, ManualClock, SystemClock
from embedops.embedders.resilience.pacing import Pacer, TokenBucket
from embedops.embedders.resilience.retry import RetryPolicy, call_with_retry
from embedops.embedders.resilience.split import embed_splitting

__all__ = [
    "BatchTooLarge",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "Clock",
    "ManualClock",
    "Pacer",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "SystemClock",
    "TokenBucket",
    "call_with_retry",
    "classify_response",
    "embed_splitting",
    "map_transport_errors",
    "parse_retry_after",
    "redact",
]
