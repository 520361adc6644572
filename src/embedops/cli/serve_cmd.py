"""`embedops serve`: the self-hosted, OpenAI-compatible embedding server."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from embedops.cli.context import BackendOption, ModelOption, console, handle_errors, settings_from
from embedops.errors import ConfigError

LOOPBACK_NAMES = ("localhost",)


def check_loopback(host: str) -> None:
    """Refuse any host that is not a loopback address: the server has no auth yet."""
    if host.lower() in LOOPBACK_NAMES:
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"refusing to bind to {host}: the server has no authentication yet, so it "
            "only listens on a loopback address (127.0.0.1, ::1, localhost). Put an "
            "authenticating reverse proxy in front of it to serve other machines.")


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback only).")] = (
        "127.0.0.1"),
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    model: ModelOption = None,
    backend: BackendOption = None,
    max_batch_size: Annotated[int | None, typer.Option(
        "--max-batch-size", help="Texts per dynamic batch (default 64).")] = None,
    max_wait_ms: Annotated[float | None, typer.Option(
        "--max-wait-ms", help="How long a batch waits for more requests (default 5).")] = None,
) -> None:
    """Serve POST /v1/embeddings (OpenAI-compatible), /healthz and /metrics."""
    import uvicorn

    from embedops.embedders import load_embedder
    from embedops.server import create_app

    with handle_errors():
        check_loopback(host)
        settings = settings_from(ctx, model=model, backend=backend,
                                 server_max_batch_size=max_batch_size,
                                 server_max_wait_ms=max_wait_ms)
        embedder = load_embedder(settings.model, settings.cache_dir, settings.backend,
                                 settings.batch_size, settings=settings)
        app = create_app(settings, embedder)
    console.print(f"serving [bold]{settings.model}[/bold] on http://{host}:{port}/v1 "
                  f"(docs at /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
