"""What route handlers receive: the objects ``create_app`` put on ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from embedops.config import Settings
from embedops.embedders.base import Embedder
from embedops.metrics import Metrics
from embedops.server.batching import DynamicBatcher


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


def get_batcher(request: Request) -> DynamicBatcher:
    return request.app.state.batcher  # type: ignore[no-any-return]


def get_embedder(request: Request) -> Embedder:
    return request.app.state.batcher.embedder  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
BatcherDep = Annotated[DynamicBatcher, Depends(get_batcher)]
EmbedderDep = Annotated[Embedder, Depends(get_embedder)]
