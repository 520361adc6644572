"""The retry policy, pacing, the 429 pause and the circuit breaker, over real HTTP against
the fault-injecting server. Virtual time (``ManualClock``) for most tests, real time for
one."""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import pytest

from embedops.config import load_settings
from embedops.embedders.http_api import ApiEmbedder, build_api_embedder
from embedops.embedders.resilience import (
    BreakerState,
    CircuitOpen,
    ManualClock,
    RateLimited,
    RetryPolicy,
    ServerError,
    TokenBucket,
)
from embedops.embedders.testing import HashEmbedder
from embedops.errors import PermanentEmbedderError, RetryableEmbedderError
from embedops.metrics import Metrics
from tests.server.fault_server import FaultServer

MODEL = "openai-compatible/hash"
TEXTS = ["alpha beta", "gamma delta", "epsilon"]


def make(server: FaultServer, clock: Any = None, metrics: Metrics | None = None,
         **overrides: Any) -> ApiEmbedder:
    knobs: dict[str, Any] = {"api_base": server.url, "api_dimensions": 64,
                             "api_timeout_s": 0.25, "breaker_failure_threshold": 50}
    knobs.update(overrides)
    with server.faults_off():  # the fingerprint probe at construction
        return build_api_embedder(MODEL, load_settings(**knobs), metrics=metrics or Metrics(),
                                  clock=clock, rng=random.Random(7))


def expected(texts: list[str]) -> np.ndarray:
    return HashEmbedder().embed(texts)


def test_policy_caps_are_1_2_4_8_16_and_jitter_is_full() -> None:
    policy = RetryPolicy()
    assert [policy.cap(n) for n in range(1, 7)] == [1, 2, 4, 8, 16, 16]
    rng = random.Random(1)
    draws = np.array([policy.delay(3, rng) for _ in range(4000)])
    assert draws.min() >= 0 and draws.max() <= 4
    assert draws.min() < 0.1 and draws.max() > 3.9  # the whole [0, cap] range is used
    assert abs(draws.mean() - 2.0) < 0.15
    assert policy.delay(1, rng, retry_after=7.5) == 7.5  # Retry-After is a floor


@pytest.mark.parametrize("fault", ["500", "502", "503", "429", "reset", "malformed", "slow"])
def test_transient_faults_are_retried_until_recovery(fault: str) -> None:
    clock = ManualClock()
    with FaultServer(script=[fault, fault], slow_s=0.6) as server:
        embedder = make(server, clock)
        vectors = embedder.embed(TEXTS)
        embedder.close()
    assert len(server.seen) == 3
    assert np.allclose(vectors, expected(TEXTS), atol=1e-6)
    retry_sleeps = [s for s in clock.sleeps if s > 0][-2:]
    assert len(clock.sleeps) >= 2
    assert all(0 <= s <= cap for s, cap in zip(retry_sleeps, (1.0, 2.0), strict=False))


def test_budget_is_five_attempts_then_the_last_error() -> None:
    clock = ManualClock()
    with FaultServer(script=["503"] * 10) as server:
        embedder = make(server, clock)
        with pytest.raises(ServerError, match="gave up after 5 attempt"):
            embedder.embed(TEXTS)
    assert len(server.seen) == 5
    assert len(clock.sleeps) == 4
    for number, slept in enumerate(clock.sleeps, start=1):
        assert 0 <= slept <= RetryPolicy().cap(number)


def test_retry_after_is_honoured_and_pauses_the_whole_endpoint() -> None:
    clock = ManualClock()
    with FaultServer(script=["429:7"]) as server:
        embedder = make(server, clock, retry_max_attempts=1)
        with pytest.raises(RateLimited):
            embedder.embed(TEXTS)
        assert embedder.endpoint.pacer.paused_for() == pytest.approx(7.0)
        before = clock.now()
        embedder.embed(TEXTS)  # a new request waits out the account-wide pause
    assert clock.now() - before == pytest.approx(7.0)
    assert len(server.seen) == 2


def test_retry_after_floor_within_retries() -> None:
    clock = ManualClock()
    with FaultServer(script=["429:3", "429"]) as server:
        make(server, clock).embed(TEXTS)
    assert len(server.seen) == 3
    assert sum(clock.sleeps) >= 3.0
    assert server.seen[1].at >= server.seen[0].at  # order kept; virtual waits


def test_retry_after_beyond_the_maximum_gives_up_at_once() -> None:
    clock = ManualClock()
    with FaultServer(script=["429:3600"]) as server, \
            pytest.raises(RateLimited, match="gave up after 1"):
        make(server, clock, retry_max_retry_after_s=60).embed(TEXTS)
    assert len(server.seen) == 1


@pytest.mark.parametrize("fault", ["wrong_dim", "wrong_count", "nan"])
def test_invalid_answers_are_typed_permanent_errors(fault: str) -> None:
    with FaultServer(script=[fault]) as server, pytest.raises(PermanentEmbedderError) as info:
        make(server, ManualClock()).embed(TEXTS)
    assert not isinstance(info.value, RetryableEmbedderError)
    assert len(server.seen) == 1


def test_oversize_batch_is_split_and_retried() -> None:
    texts = [f"text number {i}" for i in range(8)]
    with FaultServer(script=["413", "413"]) as server:
        vectors = make(server, ManualClock()).embed(texts)
    assert [len(s.items) for s in server.seen] == [8, 4, 2, 2, 4]
    assert np.allclose(vectors, expected(texts), atol=1e-6)


def test_breaker_opens_fails_fast_then_half_open_probe_closes_it() -> None:
    clock, metrics = ManualClock(), Metrics()
    with FaultServer(script=["500"] * 4) as server:
        embedder = make(server, clock, metrics, retry_max_attempts=1,
                        breaker_failure_threshold=3, breaker_open_s=10)
        breaker, name = embedder.endpoint.breaker, embedder.endpoint.name
        for _ in range(3):
            with pytest.raises(ServerError):
                embedder.embed(TEXTS)
        assert breaker.state is BreakerState.OPEN
        assert metrics.value("embedops_api_breaker_state", {"endpoint": name}) == 2
        with pytest.raises(CircuitOpen):
            embedder.embed(TEXTS)
        assert len(server.seen) == 3  # failing fast sent nothing
        clock.advance(10)
        assert breaker.state is BreakerState.HALF_OPEN
        with pytest.raises(ServerError):  # the probe meets the 4th 500: open again
            embedder.embed(TEXTS)
        assert breaker.state is BreakerState.OPEN
        clock.advance(10)
        embedder.embed(TEXTS)  # the probe succeeds
    assert breaker.state is BreakerState.CLOSED
    assert metrics.value("embedops_api_breaker_state", {"endpoint": name}) == 0
    assert len(server.seen) == 5


def test_no_retry_storm_against_a_dead_endpoint() -> None:
    """Many calls against a server that always fails: the breaker bounds the requests."""
    clock = ManualClock()
    with FaultServer(script=["503"] * 1000) as server:
        embedder = make(server, clock, breaker_failure_threshold=5, breaker_open_s=3600)
        for i in range(40):
            with pytest.raises(RetryableEmbedderError):
                embedder.embed([f"doc {i}"])
    assert len(server.seen) == 5


def test_metrics_count_429_5xx_retries_and_tokens_separately() -> None:
    metrics = Metrics()
    with FaultServer(script=["429", "502", "503"]) as server:
        embedder = make(server, ManualClock(), metrics)
        embedder.embed(TEXTS)
    labels = {"endpoint": embedder.endpoint.name}
    assert metrics.value("embedops_api_rate_limited_total", labels) == 1
    assert metrics.value("embedops_api_server_errors_total", labels) == 2
    assert metrics.value("embedops_api_retries_total", labels) == 3
    assert metrics.value("embedops_api_tokens_sent_total", labels) > 0
    # four requests of the embed call, plus the fingerprint probe at construction
    assert metrics.value("embedops_api_request_seconds_count", labels) == 5
    assert b"embedops_api_requests_total" in metrics.render()


def test_token_bucket_paces_requests_on_virtual_time() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate_per_minute=120, clock=clock, capacity=4)
    for _ in range(10):
        bucket.acquire()
    assert clock.now() - 1000.0 == pytest.approx(3.0)  # 6 beyond the burst at 2/s


def test_pacer_keeps_an_endpoint_under_its_request_rate() -> None:
    clock = ManualClock()
    with FaultServer() as server:
        embedder = make(server, clock, pacing_requests_per_minute=60, api_max_batch_items=1,
                        api_max_concurrency=1)
        embedder.embed([f"text {i}" for i in range(25)])
    span = server.seen[-1].at - server.seen[0].at  # real time: virtual waits cost nothing
    assert len(server.seen) == 25
    assert span < 5
    # burst 10, then 1/s; the fingerprint probe at construction took one token too
    assert clock.now() - 1000.0 == pytest.approx(16.0, abs=0.01)


def test_real_time_retry_after_is_waited_for() -> None:
    """Real clock: the retry after ``Retry-After: 1`` arrives at least 1 s later."""
    with FaultServer(script=["429:1"]) as server:
        started = time.monotonic()
        make(server, None, retry_base_delay_s=0.01, retry_max_delay_s=0.05).embed(TEXTS)
        elapsed = time.monotonic() - started
    assert len(server.seen) == 2
    assert server.seen[1].at - server.seen[0].at >= 1.0
    assert elapsed < 3.0


def test_api_keys_never_appear_in_errors() -> None:
    secret = "sk-proj-SECRETsecret1234567890"
    with FaultServer(script=["401"]) as server:
        embedder = make(server, ManualClock(), api_key=secret)
        with pytest.raises(PermanentEmbedderError) as info:
            embedder.embed(TEXTS)
    assert server.seen[0].authorization == f"Bearer {secret}"
    assert secret not in str(info.value) and "SECRET" not in str(info.value)
    assert secret not in repr(embedder.endpoint.config.retry)
