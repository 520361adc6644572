"""The app factory. Everything the app needs is built here, once, and put on
``app.state``; routers reach it through ``dependencies.py``. One error handler serves the
whole tree: every :class:`EmbedOpsError` becomes its ``status_code`` with an OpenAI-style
``{"error": {...}}`` body."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from embedops.config import Settings
from embedops.embedders.base import Embedder
from embedops.errors import EmbedOpsError
from embedops.metrics import Metrics
from embedops.server.auth import BodyLimit, authenticate, error_response
from embedops.server.batching import DynamicBatcher
from embedops.server.routers import collections, documents, embeddings, health, points, search
from embedops.server.service import Service


def create_app(settings: Settings, embedder: Embedder | None = None,
               metrics: Metrics | None = None, *, open_store: bool = False) -> FastAPI:
    """The FastAPI app serving ``settings.model`` (or ``embedder`` when given; it is
    loaded at startup otherwise) and the collections of ``settings.store``. The store is
    opened on first use, or at startup with ``open_store`` (so a restart drains the
    queue at once); while open, this process is the store's one writer."""
    metrics = metrics or Metrics()
    service = Service(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model = embedder or _load(settings)
        batcher = DynamicBatcher(model, settings.server_max_batch_size,
                                 settings.server_max_wait_ms, metrics)
        batcher.start()
        service.attach(batcher)
        app.state.batcher = batcher
        if open_store:
            await run_in_threadpool(service.open)
        try:
            yield
        finally:
            await batcher.stop()
            await service.close()

    app = FastAPI(title="embedops", version=_version(), lifespan=lifespan,
                  description="Embeddings, real-time ingestion and search over HTTP.")
    app.state.settings, app.state.metrics, app.state.service = settings, metrics, service
    for router in (embeddings, health, collections, documents, points, search):
        app.include_router(router.router)
    app.add_exception_handler(EmbedOpsError, _error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
    app.middleware("http")(authenticate())
    app.middleware("http")(_timed(metrics))
    app.add_middleware(BodyLimit, limit=settings.server_max_body_bytes)
    return app


def _load(settings: Settings) -> Embedder:
    from embedops.embedders import load_embedder

    return load_embedder(settings.model, settings.cache_dir, settings.backend,
                         settings.batch_size, settings=settings)


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 for a body or parameter that fails validation. The offending input is not
    echoed back: it may not even be representable as JSON (NaN), and it may be large."""
    detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    message = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in detail)
    return JSONResponse({"error": {"message": message or "invalid request",
                                   "type": "invalid_request", "code": "invalid_request"},
                         "detail": detail}, status_code=422)


async def _error_handler(request: Request, exc: EmbedOpsError) -> JSONResponse:
    return error_response(exc)


def _timed(metrics: Metrics) -> Callable[..., Awaitable[Response]]:
    async def middleware(request: Request,
                         call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.http_requests.labels(route, str(response.status_code)).inc()
        metrics.http_latency.labels(route).observe(time.perf_counter() - started)
        return response

    return middleware


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("embedops")
    except PackageNotFoundError:
        return "0"
