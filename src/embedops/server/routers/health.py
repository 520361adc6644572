"""Liveness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from embedops.server.dependencies import MetricsDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness and the served model")
def healthz(request: Request) -> dict[str, object]:
    """``ok`` once the model is loaded, with the served model's identity."""
    batcher = getattr(request.app.state, "batcher", None)
    if batcher is None:
        return {"status": "starting"}
    return {"status": "ok", "model": batcher.embedder.info.to_dict()}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(m: MetricsDep) -> Response:
    """Prometheus text exposition of every embedops metric of this process."""
    return Response(m.render(), media_type=m.content_type)
