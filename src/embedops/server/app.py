"""The app factory. Everything the app needs is built here, once, and put on
``app.state``; routers reach it through ``dependencies.py``. One error handler serves the
whole tree: every :class:`EmbedOpsError` becomes its ``status_code`` with an
``{"error": {...}}`` body, and so do request-shape errors, Starlette's own and
unexpected ones (see ``server/errors.py``). Collection and alias names in paths are
checked once, here, for every route."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from embedops.config import Settings
from embedops.embedders.base import Embedder
from embedops.metrics import Metrics
from embedops.server import docs_page, errors, openapi
from embedops.server.auth import BodyLimit, authenticate
from embedops.server.batching import DynamicBatcher
from embedops.server.dashboard_pages import DashboardPages
from embedops.server.routers import (
    collections,
    dashboard,
    documents,
    embeddings,
    health,
    migrations,
    points,
    schema,
    search,
)
from embedops.server.service import Service
from embedops.server.timing import ServerTiming
from embedops.store.names import check_name


def create_app(settings: Settings, embedder: Embedder | None = None,
               metrics: Metrics | None = None, *, open_store: bool = False) -> FastAPI:
    """The FastAPI app serving ``settings.model`` (or ``embedder`` when given; it is
    loaded at startup otherwise) and the collections of ``settings.store``. The store is
    opened on first use, or at startup with ``open_store`` (so a restart drains the
    queue at once); while open, this process is the store's one writer."""
    metrics = metrics or Metrics()
    settings = serving_settings(settings)
    service = Service(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model = embedder or load_served(settings)
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
                  description="Embeddings, real-time ingestion and search over HTTP.",
                  dependencies=[Depends(check_path_names)], docs_url=None, redoc_url=None)
    docs_page.install(app)
    app.state.settings, app.state.metrics, app.state.service = settings, metrics, service
    routers = [m.router for m in (embeddings, health, collections, documents, points, search,
                                  migrations, schema, dashboard)]
    for router in routers:
        app.include_router(router)
    errors.install(app)
    openapi.install(app, routers)
    # Outermost last: metrics see the final status, the body limit's 413 included.
    app.add_middleware(BodyLimit, limit=settings.server_max_body_bytes)
    app.middleware("http")(authenticate())
    app.add_middleware(DashboardPages)  # the /ui page and its assets carry the sign-in form
    app.middleware("http")(_timed(metrics))
    app.add_middleware(ServerTiming)  # outermost: its `total` covers every layer
    return app


def check_path_names(request: Request) -> None:
    """A dependency of every route: ``{collection}`` and ``{alias}`` in the path follow
    the naming rule (``store/names.py``), else 422 ``invalid_name``."""
    for param in ("collection", "alias"):
        value = request.path_params.get(param)
        if value is not None:
            check_name(value, param)


def serving_settings(settings: Settings) -> Settings:
    """``settings`` with the serving process's defaults: ONNX Runtime threads that
    sleep when idle (spinning ones starve the HTTP loop and the writer of CPU) unless
    ``onnx_spinning`` says otherwise. Load the served model with these."""
    if settings.onnx_spinning is None:
        return settings.model_copy(update={"onnx_spinning": False})
    return settings


def load_served(settings: Settings) -> Embedder:
    """The served model, loaded as the serving process runs it (``serving_settings``)."""
    from embedops.embedders.routing import served_embedder

    return served_embedder(serving_settings(settings))



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
