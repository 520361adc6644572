"""What route handlers receive: the objects ``create_app`` put on ``app.state``, and the
scope checks of API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from embedops.config import Settings
from embedops.embedders.base import Embedder
from embedops.metrics import Metrics
from embedops.server.auth import require
from embedops.server.batching import DynamicBatcher
from embedops.server.service import Service


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


def get_batcher(request: Request) -> DynamicBatcher:
    return request.app.state.batcher  # type: ignore[no-any-return]


def get_embedder(request: Request) -> Embedder:
    return request.app.state.batcher.embedder  # type: ignore[no-any-return]


def get_service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
BatcherDep = Annotated[DynamicBatcher, Depends(get_batcher)]
EmbedderDep = Annotated[Embedder, Depends(get_embedder)]
ServiceDep = Annotated[Service, Depends(get_service)]

READ = Depends(require("read"))
WRITE = Depends(require("write"))
ADMIN = Depends(require("admin"))
EMBED = Depends(require("embed"))
