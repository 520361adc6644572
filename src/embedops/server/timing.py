"""Where a request spent its time: the ``Server-Timing`` response header.

Every response carries ``Server-Timing`` (W3C Server Timing: ``name;dur=MILLISECONDS``)
with the stages its handler timed and ``total``, the time from the request reaching the
service to its response starting. A text search, for instance, reports

    auth;dur=0.3, catalog;dur=0.4, embed-queue;dur=4.9, embed-lock;dur=0.0,
    embed;dur=11.8, search-wait;dur=0.2, search;dur=1.6, total;dur=21.0

A stage in a worker thread is reported twice: ``NAME`` (time running in the thread) and
``NAME-wait`` (time until a thread of the pool took it up). ``total`` minus the stages
is the time spent in the HTTP loop itself (parsing, middleware, serialising the answer,
waiting for the loop); a client's latency minus ``total`` is the time before the
service saw the request (connect, the accept queue, the client). ``bench/load.py``
reads the header to attribute the slowest requests of a run to their stages.

Stages are kept per request in a context variable, which the worker threads of
``run_in_threadpool`` inherit: a stage recorded anywhere below a request lands in that
request's header, and nowhere when no request is being served.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

P = ParamSpec("P")
R = TypeVar("R")

_STAGES: ContextVar[list[tuple[str, float]] | None] = ContextVar("embedops_stages",
                                                                  default=None)


def record(name: str, seconds: float) -> None:
    """Add ``seconds`` to stage ``name`` of the request being served (if any)."""
    stages = _STAGES.get()
    if stages is not None:
        stages.append((name, seconds))


async def in_thread(name: str, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``run_in_threadpool(fn, ...)`` timed as stage ``name`` (running) and
    ``name-wait`` (waiting for a worker thread)."""
    queued = time.perf_counter()
    began: list[float] = []

    def timed() -> R:
        began.append(time.perf_counter())
        try:
            return fn(*args, **kwargs)
        finally:
            record(name, time.perf_counter() - began[0])

    try:
        return await run_in_threadpool(timed)
    finally:
        if began:
            record(f"{name}-wait", began[0] - queued)


def header_value(stages: list[tuple[str, float]], total: float) -> str:
    """``name;dur=ms, ...`` with repeated stages summed, in first-seen order, and
    ``total`` last."""
    sums: dict[str, float] = {}
    for name, seconds in stages:
        sums[name] = sums.get(name, 0.0) + seconds
    parts = [f"{name};dur={seconds * 1000:.1f}" for name, seconds in sums.items()]
    return ", ".join([*parts, f"total;dur={total * 1000:.1f}"])


def parse(value: str) -> dict[str, float]:
    """A ``Server-Timing`` header back into ``{name: milliseconds}`` (clients, benches)."""
    out: dict[str, float] = {}
    for part in value.split(","):
        name, _, params = part.strip().partition(";")
        for param in params.split(";"):
            key, _, number = param.strip().partition("=")
            if key == "dur" and name:
                try:
                    out[name] = out.get(name, 0.0) + float(number)
                except ValueError:
                    continue
    return out


class ServerTiming:
    """ASGI middleware (outermost): collects the request's stages and adds the header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        stages: list[tuple[str, float]] = []
        token = _STAGES.set(stages)
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = header_value(stages, time.perf_counter() - started)
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"server-timing", value.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            _STAGES.reset(token)
