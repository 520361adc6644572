"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from embedops.server.dependencies import READ, MetricsDep, ServiceDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness and the served model")
def healthz(request: Request) -> dict[str, object]:
    """``ok`` once the model is loaded, with the served model's identity. Never needs
    a key."""
    batcher = getattr(request.app.state, "batcher", None)
    if batcher is None:
        return {"status": "starting"}
    return {"status": "ok", "model": batcher.embedder.info.to_dict()}


@router.get("/readyz", summary="Readiness")
def readyz(service: ServiceDep) -> JSONResponse:
    """200 when the model is loaded and, once the store is open, the real-time worker
    runs; 503 (with the error body) otherwise. Never needs a key."""
    if service.ready():
        return JSONResponse({"status": "ready"})
    message = "not ready: the model is loading, or the real-time worker stopped"
    return JSONResponse({"status": "not ready", "error": {
        "message": message, "type": "unavailable", "code": "unavailable"}}, status_code=503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            dependencies=[READ])
async def metrics(m: MetricsDep, service: ServiceDep) -> Response:
    """Prometheus text exposition of every embedops metric of this process: HTTP
    throughput, errors and latency by route, queue depth, indexing lag, index memory."""
    await run_in_threadpool(service.refresh_gauges)
    return Response(m.render(), media_type=m.content_type)
