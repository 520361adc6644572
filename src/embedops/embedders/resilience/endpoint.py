"""One remote endpoint with every resilience policy applied to each request.

Per attempt, in order: the circuit breaker may refuse (fail fast); the pacer waits for
the endpoint-wide 429 pause and the request/token buckets; the request is sent on a pooled
httpx client; the status is classified; the body is parsed. Around the attempts, the retry
policy decides whether and when to try again. Everything is counted in :class:`Metrics`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from embedops.embedders.resilience.breaker import BreakerState, CircuitBreaker
from embedops.embedders.resilience.classify import (
    RateLimited,
    ServerError,
    classify_response,
    map_transport_errors,
)
from embedops.embedders.resilience.clock import Clock, SystemClock
from embedops.embedders.resilience.pacing import Pacer
from embedops.embedders.resilience.retry import RetryPolicy, call_with_retry
from embedops.errors import EmbedderError, MalformedResponse, RetryableEmbedderError
from embedops.metrics import Metrics


class SecretHeaders(dict[str, str]):
    """Request headers that may carry credentials: their values never show in a repr,
    a log line or an error message."""

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: '***'" for k in self) + "}"

    __str__ = __repr__


class Secrets(tuple[str, ...]):
    """The strings to redact from error messages; never shown themselves."""

    def __repr__(self) -> str:
        return f"Secrets({len(self)} redacted)"

    __str__ = __repr__


@dataclass(frozen=True)
class EndpointConfig:
    """Connection and resilience settings of one endpoint. ``headers`` are kept as
    :class:`SecretHeaders` (values redacted in every repr)."""

    base_url: str
    headers: dict[str, str]
    timeout_s: float = 30.0
    max_concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    breaker_failures: int = 5
    breaker_open_s: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", SecretHeaders(self.headers))


class ResilientEndpoint:
    """POST JSON to one endpoint with retries, pacing, breaker and metrics. Thread-safe;
    ``close()`` releases the connection pool."""

    def __init__(self, config: EndpointConfig, metrics: Metrics | None = None,
                 clock: Clock | None = None, rng: random.Random | None = None,
                 secrets: tuple[str, ...] = ()) -> None:
        self.config = config
        self.name = config.base_url.rstrip("/")
        self.metrics = metrics or Metrics()
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.secrets = Secrets(secrets)
        limits = httpx.Limits(max_connections=config.max_concurrency,
                              max_keepalive_connections=config.max_concurrency)
        self.client = httpx.Client(base_url=config.base_url, headers=config.headers,
                                   timeout=config.timeout_s, limits=limits)
        self.pacer = Pacer(self.clock, config.requests_per_minute, config.tokens_per_minute)
        self.breaker = CircuitBreaker(self.name, self.clock, config.breaker_failures,
                                      config.breaker_open_s, on_change=self._breaker_changed)
        self.metrics.api_breaker_state.labels(self.name).set(0)

    def _breaker_changed(self, state: BreakerState) -> None:
        self.metrics.api_breaker_state.labels(self.name).set(state.gauge)

    def post_json(self, path: str, body: dict[str, Any], tokens: int,
                  parse: Callable[[Any], Any] = lambda x: x) -> Any:
        """POST ``body`` and return ``parse(decoded JSON)``, retrying per the policy.
        ``parse`` validates the answer and may raise an :class:`EmbedderError`."""

        def on_retry(number: int, delay: float, error: RetryableEmbedderError) -> None:
            self.metrics.api_retries.labels(self.name).inc()

        return call_with_retry(lambda: self._attempt(path, body, tokens, parse),
                               self.config.retry, self.clock, self.rng, on_retry)

    def _attempt(self, path: str, body: dict[str, Any], tokens: int,
                 parse: Callable[[Any], Any]) -> Any:
        self.breaker.before_call()
        try:
            self.pacer.wait(tokens)
            payload = self._send(path, body, tokens)
            result = parse(payload)
        except RateLimited as exc:
            self.pacer.pause(exc.retry_after if exc.retry_after is not None
                             else self.config.retry.base_delay)
            self.breaker.release_probe()
            raise
        except ServerError:
            self.breaker.record_failure()
            raise
        except EmbedderError:
            self.breaker.release_probe()
            raise
        self.breaker.record_success()
        return result

    def _send(self, path: str, body: dict[str, Any], tokens: int) -> Any:
        m, name = self.metrics, self.name
        started = time.perf_counter()
        outcome = "error"
        try:
            with map_transport_errors(self.name, self.secrets):
                response = self.client.post(path, json=body)
            m.api_tokens.labels(name).inc(tokens)
            outcome = str(response.status_code)
            if response.status_code == 429:
                m.api_rate_limited.labels(name).inc()
            elif response.status_code >= 500:
                m.api_server_errors.labels(name).inc()
            classify_response(response, self.name, self.secrets)
            return _decode(response, self.name)
        finally:
            m.api_requests.labels(name, outcome).inc()
            m.api_latency.labels(name).observe(time.perf_counter() - started)

    def close(self) -> None:
        self.client.close()


def _decode(response: httpx.Response, endpoint: str) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"{endpoint} sent a body that is not JSON: {exc}") from None
